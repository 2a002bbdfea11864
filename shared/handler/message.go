package handler

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/shared/notify"
)

// Default handles the $default route: every message a client sends. Its
// answer's body goes back to the client as one message (the route has a
// $default route response), so a reply costs no Management API call.
type Default struct {
	log *slog.Logger
}

// NewDefault returns the $default handler.
func NewDefault(log *slog.Logger) *Default { return &Default{log: log} }

// pong is the reply to {"action":"ping"}. Clients ping to keep the
// connection alive: API Gateway's 10-minute idle timeout is reset only by
// data messages, not by protocol-level pings.
const pong = `{"type":"pong"}`

// Handle implements the $default Lambda. A message it does not understand is
// answered with an error event and the connection stays open.
func (h *Default) Handle(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	reply := func(body string) (events.APIGatewayProxyResponse, error) {
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: body}, nil
	}
	connID := req.RequestContext.ConnectionID
	action, err := ParseAction(req.Body, req.IsBase64Encoded)
	if err != nil {
		h.log.InfoContext(ctx, "bad client message", "connectionId", connID, "reason", notify.ErrorMessage(err))
		return reply(ErrorJSON(err))
	}
	switch action {
	case "ping":
		return reply(pong)
	default:
		err := notify.Errorf(notify.CodeInvalid, "unknown action %q (supported: ping)", action)
		h.log.InfoContext(ctx, "bad client message", "connectionId", connID, "reason", notify.ErrorMessage(err))
		return reply(ErrorJSON(err))
	}
}

// maxActionLength bounds the action name echoed back in an error message.
const maxActionLength = 64

// ParseAction returns the action of a client message, a JSON object with a
// string "action" field.
func ParseAction(body string, binary bool) (string, error) {
	if binary {
		return "", notify.Errorf(notify.CodeInvalid, "binary messages are not supported; send JSON text")
	}
	var msg struct {
		Action *string `json:"action"`
	}
	if err := json.Unmarshal([]byte(body), &msg); err != nil {
		return "", notify.Errorf(notify.CodeInvalid, "message must be a JSON object like {\"action\":\"ping\"}")
	}
	if msg.Action == nil {
		return "", notify.Errorf(notify.CodeInvalid, "message has no \"action\" field")
	}
	if len(*msg.Action) > maxActionLength {
		return "", notify.Errorf(notify.CodeInvalid, "action is longer than %d bytes", maxActionLength)
	}
	return *msg.Action, nil
}
