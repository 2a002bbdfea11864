// Package handler turns Lambda events into Notifier calls and Notifier results
// into Lambda responses, one type per function. The Lambda mains and the local
// mode both call these, so a request takes the same path in the cloud and on a
// developer's machine.
package handler

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
)

// statusOf is the one table from error codes to HTTP statuses.
var statusOf = map[notify.Code]int{
	notify.CodeInvalid:      http.StatusBadRequest,
	notify.CodeUnauthorized: http.StatusUnauthorized,
	notify.CodeForbidden:    http.StatusForbidden,
	notify.CodeConflict:     http.StatusConflict,
	notify.CodeRateLimited:  http.StatusTooManyRequests,
	notify.CodeInternal:     http.StatusInternalServerError,
	notify.CodeUnregistered: http.StatusGone,
}

// Status returns the HTTP status for err: its code's status, or 500 for an
// error without a code.
func Status(err error) int {
	if s, ok := statusOf[notify.ErrorCode(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ErrorJSON encodes err as the error event a client may see (with no jobId:
// it belongs to no job); internal errors become a generic message.
func ErrorJSON(err error) string {
	b, _ := json.Marshal(event.Error{Type: event.TypeError, Error: notify.ErrorMessage(err), Code: string(notify.ErrorCode(err))})
	return string(b)
}

// errorResponse answers a refused request, logging what the client does not see.
func errorResponse(ctx context.Context, log *slog.Logger, err error, attrs ...any) events.APIGatewayProxyResponse {
	status := Status(err)
	if status >= 500 {
		log.ErrorContext(ctx, "request failed", append(attrs, "err", err)...)
	} else {
		log.InfoContext(ctx, "request refused", append(attrs, "status", status, "reason", notify.ErrorMessage(err))...)
	}
	return events.APIGatewayProxyResponse{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       ErrorJSON(err),
	}
}
