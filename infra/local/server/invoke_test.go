package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/infra/local/server"
	"github.com/wsnotify/wsnotify/shared/store"
	"github.com/wsnotify/wsnotify/shared/store/memory"
)

// listFailingStore is the memory store with a broken ListConnections, so
// that publishing fails inside a function.
type listFailingStore struct{ *memory.Store }

func (listFailingStore) ListConnections(context.Context, string, time.Time) ([]store.Connection, error) {
	return nil, errors.New("table unavailable")
}

func TestTheInvokeAPIAnswersAsLambdaDoes(t *testing.T) {
	t.Parallel()
	h := start(t, twoOwners())
	broken := start(t, server.Config{Store: listFailingStore{memory.New()}})
	s3Event := []byte(`{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"uploads/acct_A/x.pdf","size":1}}}]}`)

	tests := []struct {
		name                 string
		h                    *harness
		function, payload    string
		header               http.Header
		status               int
		errorType, funcError string
		bodyHas              []string
	}{
		{name: "an unknown function is a ResourceNotFoundException", h: h, function: "NopeFunction", payload: `{}`,
			status: http.StatusNotFound, errorType: "ResourceNotFoundException", bodyHas: []string{"Message"}},
		{name: "a body that is not JSON is an InvalidRequestContentException", h: h, function: "JobEventsFunction", payload: `{"Records":`,
			status: http.StatusBadRequest, errorType: "InvalidRequestContentException"},
		{name: "an event of the wrong shape is the function's unhandled error", h: h, function: "JobEventsFunction", payload: `{"Records":"none"}`,
			status: http.StatusOK, funcError: "Unhandled", bodyHas: []string{"errorMessage", "errorType"}},
		{name: "a failing handler is the function's unhandled error", h: broken, function: "S3UploadFunction", payload: string(s3Event),
			status: http.StatusOK, funcError: "Unhandled", bodyHas: []string{"errorMessage", "errorType"}},
		{name: "a function ARN names the function", h: h, function: "arn:aws:lambda:eu-west-1:123456789012:function:JobEventsFunction:live", payload: `{"Records":[]}`,
			status: http.StatusOK, bodyHas: []string{"batchItemFailures"}},
		{name: "an empty body is an empty event", h: h, function: "JobEventsFunction", payload: ``,
			status: http.StatusOK, bodyHas: []string{"batchItemFailures"}},
		{name: "an asynchronous invocation is accepted", h: h, function: "JobEventsFunction", payload: `{"Records":[]}`,
			header: http.Header{"X-Amz-Invocation-Type": {"Event"}}, status: http.StatusAccepted},
		{name: "a dry run runs nothing", h: h, function: "JobEventsFunction", payload: `{"Records":"none"}`,
			header: http.Header{"X-Amz-Invocation-Type": {"DryRun"}}, status: http.StatusNoContent},
		{name: "a route function may not be invoked: only the WebSocket endpoint runs it", h: h, function: "DefaultFunction",
			payload: `{"requestContext":{"routeKey":"$default","connectionId":"x"},"body":"{\"action\":\"ping\"}"}`,
			status:  http.StatusForbidden, errorType: "AccessDeniedException", bodyHas: []string{"lambda:InvokeFunction"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := tt.h.invoke(t, tt.function, []byte(tt.payload), tt.header)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status ||
				resp.Header.Get("x-amzn-ErrorType") != tt.errorType ||
				resp.Header.Get("X-Amz-Function-Error") != tt.funcError {
				t.Fatalf("got %d, x-amzn-ErrorType %q, X-Amz-Function-Error %q: %s",
					resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), resp.Header.Get("X-Amz-Function-Error"), body)
			}
			if len(body) > 0 && !json.Valid(body) {
				t.Fatalf("body is not JSON: %s", body)
			}
			for _, want := range tt.bodyHas {
				if !json.Valid(body) || !strings.Contains(string(body), want) {
					t.Errorf("body %s lacks %s", body, want)
				}
			}
		})
	}
}
