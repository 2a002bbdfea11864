package handler

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/text"
)

// Resumer replays what a connection missed: the Notifier.
type Resumer interface {
	Resume(ctx context.Context, req notify.ResumeRequest) (notify.ResumeResult, error)
}

// Default handles the $default route: every message a client sends. Its
// answer's body goes back to the client as one message (the route has a
// $default route response), so a reply costs no Management API call. A
// resume is the exception: its events, and the resumed message that ends
// them, go out through the pusher, in order with the live stream.
type Default struct {
	log     *slog.Logger
	resumer Resumer // nil: resume is refused
	closer  Closer  // nil: a connection sending junk is never closed
	bad     *badMessages
}

// Closer closes a connection after sending it a last message: the Notifier.
type Closer interface {
	CloseConnection(ctx context.Context, connectionID string, msg []byte) error
}

// NewDefault returns the $default handler; r serves resume requests and,
// if it is a Closer too (the Notifier), closes connections that send too
// many bad messages.
func NewDefault(log *slog.Logger, r Resumer) *Default {
	d := &Default{log: log, resumer: r, bad: newBadMessages(time.Now)}
	d.closer, _ = r.(Closer)
	return d
}

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
	refuse := func(err error) (events.APIGatewayProxyResponse, error) {
		v := h.bad.note(connID)
		if v.log {
			attrs := []any{"connectionId", connID, "reason", notify.ErrorMessage(err)}
			if v.suppressed > 0 {
				attrs = append(attrs, "notLogged", v.suppressed)
			}
			h.log.InfoContext(ctx, "bad client message", attrs...)
		}
		if v.close && h.closer != nil {
			return h.closeJunk(ctx, connID, v.total)
		}
		return reply(ErrorJSON(err))
	}
	msg, err := ParseMessage(req.Body, req.IsBase64Encoded)
	if err != nil {
		return refuse(err)
	}
	switch msg.Action {
	case "ping":
		return reply(pong)
	case "resume":
		if h.resumer == nil {
			return refuse(notify.Errorf(notify.CodeInvalid, "resume is not available here"))
		}
		r := notify.ResumeRequest{ConnectionID: connID, Current: msg.Since == nil}
		if msg.Since != nil {
			r.Since = *msg.Since
		}
		if _, err := h.resumer.Resume(ctx, r); err != nil {
			switch notify.ErrorCode(err) {
			case notify.CodeInvalid:
				return refuse(err)
			case notify.CodeUnregistered:
				return h.closeUnregistered(ctx, connID, err)
			}
			h.log.ErrorContext(ctx, "resume failed", "connectionId", connID, "err", err)
			return reply(ErrorJSON(err))
		}
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil // all went out through the pusher
	default:
		return refuse(notify.Errorf(notify.CodeInvalid, "unknown action %q (supported: ping, resume)", msg.Action))
	}
}

// closeJunk closes a connection that sent MaxBadMessages bad messages,
// telling it why first.
func (h *Default) closeJunk(ctx context.Context, connID string, total int) (events.APIGatewayProxyResponse, error) {
	msg, _ := json.Marshal(event.Error{Type: event.TypeError, Code: CodeTooManyBadMessages,
		Error: fmt.Sprintf("%d messages the server could not understand: the connection is closed", total)})
	h.log.InfoContext(ctx, "closing a connection that sent too many bad messages", "connectionId", connID, "badMessages", total)
	if err := h.closer.CloseConnection(ctx, connID, msg); err != nil {
		h.log.ErrorContext(ctx, "close failed", "connectionId", connID, "err", err)
	}
	return events.APIGatewayProxyResponse{StatusCode: 200}, nil
}

// closeUnregistered closes a connection that has no record (its record was
// removed after a push to it was answered 410): nothing published reaches
// it, so its client is told why and closed, and reconnects with a record.
func (h *Default) closeUnregistered(ctx context.Context, connID string, err error) (events.APIGatewayProxyResponse, error) {
	h.log.InfoContext(ctx, "closing a connection that has no record", "connectionId", connID)
	if h.closer == nil {
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: ErrorJSON(err)}, nil
	}
	if err := h.closer.CloseConnection(ctx, connID, []byte(ErrorJSON(err))); err != nil {
		h.log.ErrorContext(ctx, "close failed", "connectionId", connID, "err", err)
	}
	return events.APIGatewayProxyResponse{StatusCode: 200}, nil
}

// maxActionLength bounds the action name echoed back in an error message.
const maxActionLength = 64

// Message is a client message: {"action":"ping"} or
// {"action":"resume","since":N} (since left out: the current state).
type Message struct {
	Action string
	Since  *int64
}

// ParseMessage decodes a client message, a JSON object with a string
// "action" field. A resume is read strictly: "since", when present, must be
// a whole number >= 0, and no other field is allowed.
func ParseMessage(body string, binary bool) (Message, error) {
	if binary {
		return Message{}, notify.Errorf(notify.CodeInvalid, "binary messages are not supported; send JSON text")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &fields); err != nil || fields == nil {
		return Message{}, notify.Errorf(notify.CodeInvalid, "message must be a JSON object like {\"action\":\"ping\"}")
	}
	raw, ok := fields["action"]
	if !ok {
		return Message{}, notify.Errorf(notify.CodeInvalid, "message has no \"action\" field")
	}
	// json.Unmarshal leaves a string alone for null: only a JSON string is
	// an action, whatever other JSON type (null included) is sent.
	var msg Message
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &msg.Action) != nil {
		return Message{}, notify.Errorf(notify.CodeInvalid, "\"action\" must be a string")
	}
	if len(msg.Action) > maxActionLength {
		return Message{}, notify.Errorf(notify.CodeInvalid, "action is longer than %d bytes", maxActionLength)
	}
	if msg.Action != "resume" {
		return msg, nil
	}
	for name := range fields {
		if name != "action" && name != "since" {
			return Message{}, notify.Errorf(notify.CodeInvalid, "resume takes only \"since\", not %q", clipName(name))
		}
	}
	if raw, ok := fields["since"]; ok {
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || n < 0 {
			return Message{}, notify.Errorf(notify.CodeInvalid, "since must be a whole number >= 0 (the last seq received), got %s", clipName(string(raw)))
		}
		msg.Since = &n
	}
	return msg, nil
}

// clipName bounds a client-chosen name echoed in an error message.
func clipName(s string) string { return text.Clip(s, maxActionLength) }
