// Package publishapi is the HTTP publish API, held once for both places
// that serve it: POST /v1/publish publishes one message or a batch to an
// owner's connections and answers what each did; GET
// /v1/owners/{ownerId}/connections lists an owner's connected clients
// (presence). Local mode serves it on its control plane (net/http,
// ServePublish and ServeConnections); in the cloud an API Gateway HTTP API
// with IAM authorization calls PublishFunction (HandleLambda). Both go
// through API, so the contract, its limits and its refusals are the same.
//
// docs/openapi.yaml describes the contract; the tests hold every answer
// they receive to its schemas.
package publishapi

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
)

// Limits of one request.
const (
	// MaxBodyBytes bounds a publish request's body (256 KB): a batch of
	// 100 small events fits many times over.
	MaxBodyBytes = 256 * 1024
	// MaxMessages bounds a batch.
	MaxMessages = 100
	// MaxIdempotencyKeyLength bounds an idempotency key.
	MaxIdempotencyKeyLength = 128
)

// The codes of the refusals, each with its HTTP status.
const (
	CodeInvalidJSON         = "INVALID_JSON"         // 400: the body is not the JSON the API takes
	CodeInvalidMessage      = "INVALID_MESSAGE"      // 400: a message's ownerId, clientId or idempotencyKey
	CodeInvalidEvent        = "INVALID_EVENT"        // 400: a message's event breaks shared/event's rules
	CodeTooManyMessages     = "TOO_MANY_MESSAGES"    // 400: more than MaxMessages, or none
	CodeBodyTooLarge        = "BODY_TOO_LARGE"       // 413: more than MaxBodyBytes
	CodeIdempotencyConflict = "IDEMPOTENCY_CONFLICT" // 409: a key already names another message
	CodeInvalidOwner        = "INVALID_OWNER"        // 400: the path's ownerId
	CodeNotFound            = "NOT_FOUND"            // 404: no such route
	CodeForbidden           = "FORBIDDEN"            // 403: local mode's control plane refused the request
	CodeInternal            = "INTERNAL"             // 500: the store failed; retry with the same keys
)

// API serves the publish API over one Notifier.
type API struct {
	n   *notify.Notifier
	log *slog.Logger
	now func() time.Time
}

// New returns the API over n. log receives owners, ids and failures, never
// a request's body.
func New(n *notify.Notifier, log *slog.Logger) *API {
	return &API{n: n, log: log, now: time.Now}
}

// Response is one answer of the API: its status and JSON body.
type Response struct {
	Status int
	Body   []byte
}

// Result is what one message did, in the order of the request.
type Result struct {
	// ID is the event's id (derived from the idempotency key when there is one).
	ID string `json:"id"`
	// Seq is the event's number among its owner's owner-wide events; absent
	// for an event to one client.
	Seq int64 `json:"seq,omitempty"`
	// Delivered is how many connections got the event.
	Delivered int `json:"delivered"`
	// Duplicate says the idempotency key's event was published before: this
	// is its first id and seq, and it was not pushed again.
	Duplicate bool `json:"duplicate,omitempty"`
	// Failed is how many connections the event did not reach though they
	// looked live: their push failed after its retries, or the hand-off of
	// a large owner's fan-out did. The event is kept: those clients get it
	// when they resume. Absent when none.
	Failed int `json:"failed,omitempty"`
}

// Refusal is the body of every answer other than 200. Results lists the
// messages published before a failure stopped the batch.
type Refusal struct {
	Code    string   `json:"code"`
	Error   string   `json:"error"`
	Results []Result `json:"results,omitempty"`
}

// message is one validated message of a request.
type message struct {
	env event.Envelope
	key string // the idempotency key, "" for none
	id  string // the event id: derived from the key, "" for a fresh one
}

// keyPattern is what an idempotency key may hold: a UUID, a job id and
// step, a hash in hex or base64url fit.
var keyPattern = regexp.MustCompile(`^[A-Za-z0-9._:@/+=-]{1,128}$`)

// Publish answers POST /v1/publish for body.
func (a *API) Publish(ctx context.Context, body []byte) Response {
	if len(body) > MaxBodyBytes {
		return refuse(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "the body is %d bytes, over the %d-byte limit", len(body), MaxBodyBytes)
	}
	msgs, batch, refusal := parse(body)
	if refusal != nil {
		return *refusal
	}
	ctx = notify.WithPath(ctx, notify.PathAPI) // its publishes are counted as the API's
	total := len(msgs)
	if !batch {
		total = -1
	}
	results := make([]Result, 0, len(msgs))
	for i, m := range msgs {
		var res notify.Result
		var err error
		if m.id != "" {
			res, err = a.n.PublishOnce(ctx, m.env.OwnerID, m.env.ClientID, m.id, m.env.Event)
		} else {
			res, err = a.n.Publish(ctx, m.env.OwnerID, m.env.ClientID, "", m.env.Event)
		}
		if err != nil {
			return a.failed(ctx, i, total, m, results, err)
		}
		r := Result{ID: res.ID, Seq: res.Seq, Delivered: res.Delivered, Duplicate: res.Duplicate, Failed: res.Failed}
		results = append(results, r)
	}
	return answer(http.StatusOK, struct {
		Results []Result `json:"results"`
	}{results})
}

// failed answers a batch stopped at message i by err, with the results of
// the messages published before it.
func (a *API) failed(ctx context.Context, i, total int, m message, results []Result, err error) Response {
	at := where(i, total)
	done := fmt.Sprintf("%d of %d messages published before it", i, max(total, 1))
	switch {
	case errors.Is(err, notify.ErrIDConflict):
		return refuseWith(http.StatusConflict, CodeIdempotencyConflict, results,
			"%sidempotencyKey %q was used for a different message (%s)", at, m.key, done)
	case notify.ErrorCode(err) == notify.CodeInvalid:
		// Validation ran before anything was published; this is the
		// Notifier's own guard (an event over the message size).
		return refuseWith(http.StatusBadRequest, CodeInvalidEvent, results, "%sevent: %s (%s)", at, notify.ErrorMessage(err), done)
	}
	a.log.ErrorContext(ctx, "publish API: publish failed", "owner", m.env.OwnerID, "message", i, "published", len(results), "err", err)
	return refuseWith(http.StatusInternalServerError, CodeInternal, results,
		"%spublish failed (%s); retry with the same idempotency keys to publish the rest", at, done)
}

// where names message i of total in a reason: "messages[3]." in a batch,
// "" for a request of one message (total -1).
func where(i, total int) string {
	if total < 0 {
		return ""
	}
	return fmt.Sprintf("messages[%d].", i)
}

// parse decodes and validates the whole request: every message is checked
// before any is published.
func parse(body []byte) (msgs []message, batch bool, refusal *Response) {
	var head map[string]json.RawMessage
	if err := json.Unmarshal(body, &head); err != nil {
		r := refuse(http.StatusBadRequest, CodeInvalidJSON, "the body must be a JSON object: %s", jsonReason(err))
		return nil, batch, &r
	}
	raws := []json.RawMessage{body}
	if list, ok := head["messages"]; ok {
		if len(head) != 1 {
			r := refuse(http.StatusBadRequest, CodeInvalidJSON, `a batch is {"messages":[…]} with no other field`)
			return nil, batch, &r
		}
		raws = nil
		if err := json.Unmarshal(list, &raws); err != nil || raws == nil {
			r := refuse(http.StatusBadRequest, CodeInvalidJSON, `"messages" must be an array of messages`)
			return nil, batch, &r
		}
		batch = true
	}
	if len(raws) == 0 || len(raws) > MaxMessages {
		r := refuse(http.StatusBadRequest, CodeTooManyMessages, "a batch holds 1-%d messages, got %d", MaxMessages, len(raws))
		return nil, batch, &r
	}
	msgs = make([]message, len(raws))
	byKey := map[string]int{} // owner and key -> first message with them
	for i, raw := range raws {
		total := len(raws)
		if !batch {
			total = -1
		}
		m, code, reason := parseMessage(raw)
		if code != "" {
			r := refuse(http.StatusBadRequest, code, "%s%s", where(i, total), reason)
			return nil, batch, &r
		}
		if m.key != "" {
			k := m.env.OwnerID + "\x00" + m.key
			if j, seen := byKey[k]; seen && !sameMessage(msgs[j], m) {
				r := refuse(http.StatusConflict, CodeIdempotencyConflict, "%sidempotencyKey %q names a different message in messages[%d]", where(i, total), m.key, j)
				return nil, batch, &r
			} else if !seen {
				byKey[k] = i
			}
		}
		msgs[i] = m
	}
	return msgs, batch, nil
}

// parseMessage validates one message: its envelope fields here, its event
// by shared/event's rules (event.ParseEnvelope, as the queue's).
func parseMessage(raw json.RawMessage) (message, string, string) {
	var fields struct {
		OwnerID        *string         `json:"ownerId"`
		ClientID       json.RawMessage `json:"clientId"`
		IdempotencyKey *string         `json:"idempotencyKey"`
		Event          json.RawMessage `json:"event"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fields); err != nil {
		return message{}, CodeInvalidMessage, "a message is {\"ownerId\",\"clientId\"?,\"idempotencyKey\"?,\"event\"}: " + jsonReason(err)
	}
	switch {
	case fields.OwnerID == nil:
		return message{}, CodeInvalidMessage, "ownerId: missing"
	case !event.ValidOwnerID(*fields.OwnerID):
		return message{}, CodeInvalidMessage, fmt.Sprintf("ownerId: must be 1-%d characters of A-Z a-z 0-9 . _ : @ -", event.MaxOwnerIDLength)
	}
	m := message{}
	if k := fields.IdempotencyKey; k != nil {
		if !keyPattern.MatchString(*k) {
			return message{}, CodeInvalidMessage, fmt.Sprintf("idempotencyKey: must be 1-%d characters of A-Z a-z 0-9 . _ : @ / + = -", MaxIdempotencyKeyLength)
		}
		m.key = *k
		m.id = EventID(*fields.OwnerID, *k)
	}
	// The envelope without the key is what the queue takes: its rules
	// (clientId, the event, file_uploaded only from uploads) are
	// event.ParseEnvelope's alone.
	env, err := json.Marshal(struct {
		OwnerID  string          `json:"ownerId"`
		ClientID json.RawMessage `json:"clientId,omitempty"`
		Event    json.RawMessage `json:"event,omitempty"`
	}{*fields.OwnerID, fields.ClientID, fields.Event})
	if err != nil { // a RawMessage the decoder accepted always encodes
		return message{}, CodeInvalidJSON, "the message does not encode: " + err.Error()
	}
	m.env, err = event.ParseEnvelope(env)
	if err != nil {
		reason := strings.TrimPrefix(err.Error(), event.ErrInvalid.Error()+": ")
		if strings.HasPrefix(reason, "clientId") || strings.Contains(reason, `"clientId"`) {
			return message{}, CodeInvalidMessage, "clientId: " + strings.TrimPrefix(reason, "clientId ")
		}
		return message{}, CodeInvalidEvent, eventPath(reason)
	}
	return m, "", ""
}

// fieldFirst finds the field an event rule's reason starts with: `field
// "progress" must be …` or `progress must be …`.
var fieldFirst = regexp.MustCompile(`^(?:field "([A-Za-z]+)"|missing field "([A-Za-z]+)"|([a-z][A-Za-z]*))(?: (.*))?$`)

// eventPath turns an event rule's reason into "event.progress: must be …",
// or "event: …" when it names no field first.
func eventPath(reason string) string {
	m := fieldFirst.FindStringSubmatch(reason)
	switch {
	case reason == `missing field "event"`:
		return "event: missing"
	case m == nil:
		return "event: " + reason
	case m[1] != "":
		return "event." + m[1] + ": " + m[4]
	case m[2] != "" && !strings.Contains(m[4], `"`):
		return "event." + m[2] + ": missing"
	case m[3] != "" && strings.HasPrefix(m[4], "must"):
		return "event." + m[3] + ": " + m[4]
	}
	return "event: " + reason
}

// sameMessage reports whether two messages with one key are one message.
func sameMessage(a, b message) bool {
	ea, errA := json.Marshal(a.env.Event)
	eb, errB := json.Marshal(b.env.Event)
	return errA == nil && errB == nil && a.env.ClientID == b.env.ClientID && string(ea) == string(eb)
}

// jsonReason is a decoding error in one line, without Go's type names.
func jsonReason(err error) string {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fmt.Sprintf("field %q must not be JSON %s", typeErr.Field, typeErr.Value)
	case errors.As(err, &typeErr):
		return "got JSON " + typeErr.Value
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// EventID is the event id an idempotency key gives: the same for the same
// owner and key, so a retried publish is recognized by the owner's history
// as the event it kept, and different for another owner.
func EventID(ownerID, key string) string {
	sum := sha256.Sum256([]byte("wsnotify publish key\x00" + ownerID + "\x00" + key))
	return "key_" + base64.RawURLEncoding.EncodeToString(sum[:18])
}

// Client is one connected client of an owner, as presence shows it.
type Client struct {
	ClientID    string `json:"clientId"`
	ConnectedAt string `json:"connectedAt"`
}

// Connections answers GET /v1/owners/{ownerId}/connections: the owner's
// live connection records, by client id and connect time only (never a key,
// a token or a connection id).
func (a *API) Connections(ctx context.Context, ownerID string) Response {
	if !event.ValidOwnerID(ownerID) {
		return refuse(http.StatusBadRequest, CodeInvalidOwner, "ownerId: must be 1-%d characters of A-Z a-z 0-9 . _ : @ -", event.MaxOwnerIDLength)
	}
	conns, err := a.n.Connections(ctx, ownerID)
	if err != nil {
		a.log.ErrorContext(ctx, "publish API: list connections", "owner", ownerID, "err", err)
		return refuse(http.StatusInternalServerError, CodeInternal, "listing the owner's connections failed; retry")
	}
	clients := make([]Client, len(conns))
	for i, c := range conns {
		clients[i] = Client{ClientID: c.ClientID, ConnectedAt: c.ConnectedAt.UTC().Format(time.RFC3339)}
	}
	return answer(http.StatusOK, struct {
		OwnerID string   `json:"ownerId"`
		Count   int      `json:"count"`
		Clients []Client `json:"clients"`
	}{ownerID, len(clients), clients})
}

// NotFound answers a route the API does not have.
func NotFound(method, path string) Response {
	return refuse(http.StatusNotFound, CodeNotFound, "no route %s %s: the API has POST /v1/publish and GET /v1/owners/{ownerId}/connections", method, clip(path))
}

// Forbidden answers a request local mode's control plane refused.
func Forbidden(reason string) Response {
	return refuse(http.StatusForbidden, CodeForbidden, "%s", reason)
}

func refuse(status int, code, format string, args ...any) Response {
	return refuseWith(status, code, nil, format, args...)
}

func refuseWith(status int, code string, results []Result, format string, args ...any) Response {
	return answer(status, Refusal{Code: code, Error: oneLine(fmt.Sprintf(format, args...)), Results: results})
}

func answer(status int, v any) Response {
	b, err := json.Marshal(v)
	if err != nil { // only our own types are encoded
		panic(err)
	}
	return Response{Status: status, Body: b}
}

// oneLine keeps a reason on one line, whatever a value in it held.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// clip shortens a request's path for a reason or a log line.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
