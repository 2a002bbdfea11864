package server_test

// Bad inputs at every entry point of local mode, one table per entry point:
// the WebSocket handshake, client messages ($default), the Invoke API (each
// function's payload, SQS batches, S3 events), the Management API, and a
// throttled store. Each row names the exact status and error it must get;
// each table ends by proving that the good inputs given alongside the bad
// ones (a live client, valid records of the same batch) were not lost.
//
// server_test.go runs the common connect refusals on both stores; the rows
// here add what it does not cover.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/store"
	"github.com/wsnotify/wsnotify/shared/store/memory"
)

const revokedKey = "wsn_revoked_key_of_owner_a"

// errorEvent is the body of a refused handshake and the reply to a bad
// client message.
func errorEvent(code notify.Code, msg string) string {
	b, _ := json.Marshal(map[string]string{"type": "error", "error": msg, "code": string(code)})
	return string(b)
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(a, b string) bool {
	var x, y any
	return json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}

// progressOf is a valid job_progress event whose jobId names it.
func progressOf(jobID string) string {
	return `{"type":"job_progress","jobId":"` + jobID + `","progress":1,"processedCount":1,"totalCount":100}`
}

// readJobIDs reads n events from c and returns their jobIds, in order.
func readJobIDs(t *testing.T, c *asyncapi.Conn, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		m := read(t, c)
		id, _ := m["jobId"].(string)
		ids = append(ids, id)
	}
	return ids
}

func TestBadConnectsAreRefusedExactlyAndLeaveNoRecord(t *testing.T) {
	t.Parallel()
	st := &countingStore{Store: memory.New()}
	if err := st.PutKey(context.Background(), auth.Key{Hash: auth.Hash(revokedKey), OwnerID: ownerA, Revoked: true}); err != nil {
		t.Fatal(err)
	}
	cfg := twoOwners()
	cfg.Store = st
	h := start(t, cfg)
	live := h.connect(t, "taken", keyA)
	liveID := h.connectionID(t, ownerA, "taken")
	stored := st.stored.Load()

	unauthorized := errorEvent(notify.CodeUnauthorized, "missing, unknown or revoked API key")
	badClientID := errorEvent(notify.CodeInvalid, fmt.Sprintf("client_id must be 1-%d characters of A-Z a-z 0-9 . _ : -", event.MaxClientIDLength))
	tests := []struct {
		name   string
		method string // empty: a WebSocket handshake
		path   string // path and query
		status int
		body   string // exact: JSON compared as JSON
	}{
		{name: "no token", path: "/api/v1/ws/c1", status: http.StatusUnauthorized, body: unauthorized},
		{name: "an empty token", path: "/api/v1/ws/c1?token=", status: http.StatusUnauthorized, body: unauthorized},
		{name: "a wrong token", path: "/api/v1/ws/c1?token=wsn_wrong", status: http.StatusUnauthorized, body: unauthorized},
		{name: "a revoked token, told apart from no other", path: "/api/v1/ws/c1?token=" + revokedKey, status: http.StatusUnauthorized, body: unauthorized},
		{name: "the key in another parameter", path: "/api/v1/ws/c1?api_key=" + keyA, status: http.StatusUnauthorized, body: unauthorized},
		{name: "a client id of 129 characters", path: "/api/v1/ws/" + strings.Repeat("x", 129) + "?token=" + keyA, status: http.StatusBadRequest, body: badClientID},
		{name: "a client id with an escaped slash", path: "/api/v1/ws/a%2Fb?token=" + keyA, status: http.StatusBadRequest, body: badClientID},
		{name: "a client id that is not ASCII", path: "/api/v1/ws/caf%C3%A9?token=" + keyA, status: http.StatusBadRequest, body: badClientID},
		{name: "the raw URL without client_id", path: "/local?token=" + keyA, status: http.StatusBadRequest, body: badClientID},
		{name: "a bad client id with a bad token: the client id is checked first", path: "/api/v1/ws/bad%20id?token=wsn_wrong", status: http.StatusBadRequest, body: badClientID},
		{name: "a live client id of the same owner", path: "/api/v1/ws/taken?token=" + keyA, status: http.StatusConflict,
			body: errorEvent(notify.CodeConflict, `client_id "taken" is already connected`)},
		{name: "a GET without the upgrade", method: http.MethodGet, path: "/api/v1/ws/c1?token=" + keyA, status: http.StatusUpgradeRequired,
			body: `{"message":"WebSocket handshake required"}`},
		{name: "a POST", method: http.MethodPost, path: "/api/v1/ws/c1?token=" + keyA, status: http.StatusMethodNotAllowed,
			body: "Method Not Allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused with "+fmt.Sprint(tt.status), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			var resp *http.Response
			if tt.method == "" {
				c, r, err := asyncapi.Dial(ctx, "ws://"+h.host+tt.path, nil)
				if err == nil {
					c.CloseNow()
					t.Fatal("connected")
				}
				if r == nil {
					t.Fatalf("no response: %v", err)
				}
				resp = r
			} else {
				req, _ := http.NewRequestWithContext(ctx, tt.method, h.base+tt.path, nil)
				r, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Body.Close()
				resp = r
			}
			body, _ := io.ReadAll(resp.Body)
			got := strings.TrimSpace(string(body))
			if resp.StatusCode != tt.status || !(got == tt.body || sameJSON(got, tt.body)) {
				t.Fatalf("got %d %s\nwant %d %s", resp.StatusCode, got, tt.status, tt.body)
			}
		})
	}

	t.Run("nothing was stored and the live client was not displaced", func(t *testing.T) {
		// The duplicate's conditional write is how its client id is found
		// taken; it must store nothing, like every other refusal.
		if n := st.stored.Load(); n != stored {
			t.Errorf("%d records stored by refused connects", n-stored)
		}
		conns, _ := st.ListConnections(context.Background(), ownerA, time.Now())
		if len(conns) != 1 || conns[0].ConnectionID != liveID {
			t.Errorf("records of %s: %+v", ownerA, conns)
		}
		eventually(t, "the refused connections to leave the hub", func() bool { return h.srv.Hub().Len() == 1 })
		if failed := h.publishJobs(t, envelope(ownerA, "", progressOf("after"))); len(failed) > 0 {
			t.Fatal(failed)
		}
		if ids := readJobIDs(t, live, 1); ids[0] != "after" {
			t.Fatalf("live client read %v", ids)
		}
	})
}

func TestBadClientMessagesAreAnsweredExactlyAndTheConnectionStaysOpen(t *testing.T) {
	t.Parallel()
	h := start(t, twoOwners())
	c := h.connect(t, "talker", keyA)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	notObject := errorEvent(notify.CodeInvalid, `message must be a JSON object like {"action":"ping"}`)
	noAction := errorEvent(notify.CodeInvalid, `message has no "action" field`)
	tests := []struct {
		name  string
		typ   websocket.MessageType
		data  string
		reply string // exact
	}{
		{"text that is not JSON", websocket.MessageText, `hello`, notObject},
		{"an empty message", websocket.MessageText, ``, notObject},
		{"a JSON array", websocket.MessageText, `[{"action":"ping"}]`, notObject},
		{"an action that is not a string", websocket.MessageText, `{"action":1}`, errorEvent(notify.CodeInvalid, `"action" must be a string`)},
		{"a null action", websocket.MessageText, `{"action":null}`, errorEvent(notify.CodeInvalid, `"action" must be a string`)},
		{"a boolean action", websocket.MessageText, `{"action":false}`, errorEvent(notify.CodeInvalid, `"action" must be a string`)},
		{"an object action", websocket.MessageText, `{"action":{}}`, errorEvent(notify.CodeInvalid, `"action" must be a string`)},
		{"an array action", websocket.MessageText, `{"action":[]}`, errorEvent(notify.CodeInvalid, `"action" must be a string`)},
		{"JSON null", websocket.MessageText, `null`, notObject},
		{"an object without action", websocket.MessageText, `{"type":"ping"}`, noAction},
		{"an unknown action", websocket.MessageText, `{"action":"dance"}`, errorEvent(notify.CodeInvalid, `unknown action "dance" (supported: ping, resume)`)},
		{"an action of 65 bytes", websocket.MessageText, `{"action":"` + strings.Repeat("a", 65) + `"}`, errorEvent(notify.CodeInvalid, "action is longer than 64 bytes")},
		{"a binary message, even a valid ping", websocket.MessageBinary, `{"action":"ping"}`, errorEvent(notify.CodeInvalid, "binary messages are not supported; send JSON text")},
		{"a ping with extra fields is still a ping", websocket.MessageText, `{"action":"ping","x":1}`, `{"type":"pong"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is answered "+tt.reply, func(t *testing.T) {
			if err := c.Write(ctx, tt.typ, []byte(tt.data)); err != nil {
				t.Fatal(err)
			}
			_, got, err := c.Read(ctx)
			if err != nil || !sameJSON(string(got), tt.reply) {
				t.Fatalf("reply %s, %v; want %s", got, err, tt.reply)
			}
		})
	}
	t.Run("events published meanwhile are not lost", func(t *testing.T) {
		if failed := h.publishJobs(t, envelope(ownerA, "", progressOf("e1")), envelope(ownerA, "", progressOf("e2"))); len(failed) > 0 {
			t.Fatal(failed)
		}
		if ids := readJobIDs(t, c, 2); !reflect.DeepEqual(ids, []string{"e1", "e2"}) {
			t.Fatalf("read %v", ids)
		}
	})
	t.Run("a message of exactly 128 KB is routed", func(t *testing.T) {
		msg := `{"action":"ping","pad":"` + strings.Repeat("x", notify.MaxMessageBytes-len(`{"action":"ping","pad":""}`)) + `"}`
		if len(msg) != notify.MaxMessageBytes {
			t.Fatalf("message of %d bytes", len(msg))
		}
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if m := read(t, c); m["type"] != "pong" {
			t.Fatalf("got %v", m)
		}
	})
	t.Run("one byte more closes the connection with 1009 and runs $disconnect", func(t *testing.T) {
		big := `{"action":"ping","pad":"` + strings.Repeat("x", notify.MaxMessageBytes-len(`{"action":"ping","pad":""}`)+1) + `"}`
		_ = c.Write(ctx, websocket.MessageText, []byte(big)) // the server may cut the write short
		if ce := readClose(t, c); ce.Code != websocket.StatusMessageTooBig {
			t.Fatalf("closed with %v, want 1009", ce)
		}
		eventually(t, "the disconnect", func() bool { return !h.hasRecord(t, ownerA, "talker") })
	})
}

func TestBadInvocationsAreAnsweredAsLambdaAnswersThem(t *testing.T) {
	t.Parallel()
	h := start(t, twoOwners())
	type want struct {
		status    int
		errorType string // x-amzn-ErrorType: the Lambda service refused the call
		funcError string // X-Amz-Function-Error: the function failed
		bodyHas   string
	}
	notJSON := want{status: http.StatusBadRequest, errorType: "InvalidRequestContentException", bodyHas: "Could not parse request body into json"}
	unmarshal := want{status: http.StatusOK, funcError: "Unhandled", bodyHas: `"errorType":"UnmarshalTypeError"`}
	tests := []struct {
		function, name, payload string
		want                    want
	}{
		{"JobEventsFunction", "not JSON", `{"Records":[}`, notJSON},
		{"JobEventsFunction", "Records that are a string", `{"Records":"none"}`, unmarshal},
		{"JobEventsFunction", "a record body that is an object", `{"Records":[{"messageId":"m1","body":{}}]}`, unmarshal},
		{"S3UploadFunction", "not JSON", `{"Records":[{]}`, notJSON},
		{"S3UploadFunction", "a size that is a string (skipped alone)", `{"Records":[{"s3":{"object":{"key":"k","size":"big"}}}]}`,
			want{status: http.StatusOK, bodyHas: `"skipped":[{"key":"k","reason":"malformed record: field \"s3.object.size\" cannot take JSON string`}},
		{"JobEventsFunction", "a payload over 6 MB", `{"Records":[],"pad":"` + strings.Repeat("x", 6<<20) + `"}`,
			want{status: http.StatusRequestEntityTooLarge, errorType: "RequestTooLargeException", bodyHas: "6291456"}},
	}
	for _, tt := range tests {
		t.Run(tt.function+": "+tt.name, func(t *testing.T) {
			resp := h.invoke(t, tt.function, []byte(tt.payload), nil)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want.status || resp.Header.Get("x-amzn-ErrorType") != tt.want.errorType ||
				resp.Header.Get("X-Amz-Function-Error") != tt.want.funcError || !strings.Contains(string(body), tt.want.bodyHas) {
				t.Fatalf("got %d, x-amzn-ErrorType %q, X-Amz-Function-Error %q: %.300s\nwant %+v",
					resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), resp.Header.Get("X-Amz-Function-Error"), body, tt.want)
			}
		})
	}
}

func TestAnSQSBatchFailsExactlyItsInvalidRecordsAndDeliversTheRest(t *testing.T) {
	t.Parallel()
	h := start(t, twoOwners())
	a1 := h.connect(t, "a1", keyA)
	records := []struct {
		id, group, body string
		failed          bool   // must be in batchItemFailures
		delivered       string // jobId a1 must receive, in order
	}{
		{id: "m1", group: "g1", body: envelope(ownerA, "", progressOf("ok1")), delivered: "ok1"},
		{id: "m2", group: "g1", body: `not json`, failed: true},
		{id: "m3", group: "g1", body: `{"event":` + progressOf("x") + `}`, failed: true},         // no ownerId
		{id: "m4", body: `{"ownerId":"acct A","event":` + progressOf("x") + `}`, failed: true},   // invalid ownerId
		{id: "m5", body: envelope(ownerA, "", `{"type":"job_dance","jobId":"x"}`), failed: true}, // unknown type
		{id: "m6", body: envelope(ownerA, "", `{"type":"file_uploaded","fileId":"f","name":"n","size":1}`), failed: true},
		{id: "m7", body: envelope(ownerA, "", `{"type":"job_progress","jobId":"x","progress":150,"processedCount":1,"totalCount":1}`), failed: true},
		{id: "m8", body: `{"ownerId":"` + ownerA + `"}`, failed: true}, // no event
		// An invalid record fails alone: later records of its FIFO group
		// still go, since retrying it cannot fix it.
		{id: "m9", group: "g1", body: envelope(ownerA, "", progressOf("ok2")), delivered: "ok2"},
		{id: "m10", body: envelope(ownerA, "a1", `{"type":"job_complete","jobId":"ok3","status":"completed","organized":1,"failed":0}`), delivered: "ok3"},
		{id: "m11", body: envelope(ownerA, "a1", `{"type":"error","error":"Permission denied","code":"bad code"}`), failed: true},
		{id: "m12", body: envelope(ownerB, "", progressOf("other owner"))}, // valid, for nobody connected
	}
	var ev events.SQSEvent
	var wantFailed, wantDelivered []string
	for _, r := range records {
		msg := events.SQSMessage{MessageId: r.id, Body: r.body, EventSource: "aws:sqs"}
		if r.group != "" {
			msg.Attributes = map[string]string{"MessageGroupId": r.group}
		}
		ev.Records = append(ev.Records, msg)
		if r.failed {
			wantFailed = append(wantFailed, r.id)
		}
		if r.delivered != "" {
			wantDelivered = append(wantDelivered, r.delivered)
		}
	}
	payload, _ := json.Marshal(ev)
	var resp events.SQSEventResponse
	h.invokeJSON(t, "JobEventsFunction", payload, &resp)
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if !reflect.DeepEqual(failed, wantFailed) {
		t.Errorf("batchItemFailures = %v, want exactly %v", failed, wantFailed)
	}
	if got := readJobIDs(t, a1, len(wantDelivered)); !reflect.DeepEqual(got, wantDelivered) {
		t.Errorf("delivered %v, want %v in order", got, wantDelivered)
	}
}

func TestAnS3EventSkipsExactlyItsBrokenKeysAndPublishesTheRest(t *testing.T) {
	t.Parallel()
	h := start(t, twoOwners())
	a1 := h.connect(t, "a1", keyA)
	records := []struct {
		eventName, key string
		skipped        string // the exact reason, or "" for a good record
		name           string // the file name a1 must receive, in order
	}{
		{eventName: "ObjectCreated:Put", key: "uploads/" + ownerA + "/report+2026.pdf", name: "report 2026.pdf"},
		{eventName: "ObjectCreated:Put", key: "uploads/" + ownerA + "/%zz.pdf", skipped: `key is not valid URL encoding: invalid URL escape "%zz"`},
		{eventName: "ObjectCreated:Put", key: "other/" + ownerA + "/x.pdf", skipped: "key is outside uploads/{ownerId}/{name}"},
		{eventName: "ObjectCreated:Put", key: "uploads/x.pdf", skipped: "key has no valid owner segment after uploads/"},
		{eventName: "ObjectCreated:Put", key: "uploads/acct+A/x.pdf", skipped: "key has no valid owner segment after uploads/"},
		{eventName: "ObjectCreated:Put", key: "uploads/" + ownerA + "/folder/", skipped: "key names a folder, not a file"},
		{eventName: "ObjectRemoved:Delete", key: "uploads/" + ownerA + "/gone.pdf", skipped: `event "ObjectRemoved:Delete" is not an ObjectCreated event`},
		{eventName: "ObjectCreated:CompleteMultipartUpload", key: "uploads/" + ownerA + "/sub/dir/b%C3%A9.pdf", name: "sub/dir/bé.pdf"},
	}
	var recs []string
	var wantSkipped []map[string]string
	var wantNames []string
	for i, r := range records {
		recs = append(recs, fmt.Sprintf(`{"eventName":%q,"s3":{"bucket":{"name":"b"},"object":{"key":%q,"size":1,"eTag":"e","sequencer":"%02d"}}}`, r.eventName, r.key, i))
		if r.skipped != "" {
			wantSkipped = append(wantSkipped, map[string]string{"key": r.key, "reason": r.skipped})
		} else {
			wantNames = append(wantNames, r.name)
		}
	}
	var res struct {
		Published int                 `json:"published"`
		Skipped   []map[string]string `json:"skipped"`
	}
	h.invokeJSON(t, "S3UploadFunction", []byte(`{"Records":[`+strings.Join(recs, ",")+`]}`), &res)
	if res.Published != len(wantNames) || !reflect.DeepEqual(res.Skipped, wantSkipped) {
		t.Errorf("published %d, skipped %v\nwant %d, %v", res.Published, res.Skipped, len(wantNames), wantSkipped)
	}
	for _, name := range wantNames {
		if m := read(t, a1); m["type"] != "file_uploaded" || m["name"] != name {
			t.Errorf("got %v, want the upload of %s", m, name)
		}
	}
}

// rawRequest sends a request line as written, which net/http's client would
// refuse to send, and returns the response.
func rawRequest(t *testing.T, host, method, target, body string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", host, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(wait))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", method, target, host, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType")
}

func TestBadManagementAPIRequestsAreAnsweredExactly(t *testing.T) {
	t.Parallel()
	h := start(t, twoOwners())
	c := h.connect(t, "managed", keyA)
	id := url.PathEscape(h.connectionID(t, ownerA, "managed"))
	tests := []struct {
		name, method, target, body string
		status                     int
		errorType                  string // x-amzn-ErrorType
	}{
		{"POST to an unknown id", http.MethodPost, "/local/@connections/bm9TdWNoQ29ubj0%3D", `{}`, http.StatusGone, "GoneException"},
		{"GET of an unknown id", http.MethodGet, "/local/@connections/bm9TdWNoQ29ubj0%3D", ``, http.StatusGone, "GoneException"},
		{"DELETE of an unknown id", http.MethodDelete, "/@connections/bm9TdWNoQ29ubj0%3D", ``, http.StatusGone, "GoneException"},
		{"an id with an escaped slash", http.MethodPost, "/local/@connections/a%2Fb", `{}`, http.StatusGone, "GoneException"},
		{"an id escaped as the SDK escapes it, = as %3D", http.MethodPost, "/local/@connections/" + strings.ReplaceAll(id, "=", "%3D"), `{}`, http.StatusOK, ""},
		{"a post over 128 KB", http.MethodPost, "/local/@connections/" + id, strings.Repeat("x", notify.MaxMessageBytes+1), http.StatusRequestEntityTooLarge, "PayloadTooLargeException"},
		{"PUT, which the API does not have", http.MethodPut, "/local/@connections/" + id, `{}`, http.StatusMethodNotAllowed, ""},
		{"PATCH, which the API does not have", http.MethodPatch, "/@connections/" + id, `{}`, http.StatusMethodNotAllowed, ""},
		{"no id", http.MethodPost, "/local/@connections/", `{}`, http.StatusNotFound, ""},
		{"a malformed escape in the id", http.MethodPost, "/local/@connections/abc%ZZ", `{}`, http.StatusBadRequest, ""},
		{"a malformed escape in the stage", http.MethodGet, "/lo%Gcal/@connections/" + id, ``, http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name+" gets "+fmt.Sprint(tt.status), func(t *testing.T) {
			status, errorType := rawRequest(t, h.host, tt.method, tt.target, tt.body)
			if status != tt.status || errorType != tt.errorType {
				t.Fatalf("got %d %q, want %d %q", status, errorType, tt.status, tt.errorType)
			}
		})
	}
	t.Run("the connection got exactly the one good post and is still open", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if _, data, err := c.ReadUnchecked(ctx); err != nil || string(data) != `{}` { // the good post's bytes
			t.Fatalf("read %s, %v", data, err)
		}
		appPing(t, c)
	})
}

// throttlingStore is the memory store whose chosen operations fail as
// DynamoDB fails them under throttling.
type throttlingStore struct {
	*memory.Store
	mu        sync.Mutex
	failing   map[string]bool // operation name → failing
	listOwner string          // ListConnections fails only for this owner
}

func (s *throttlingStore) throttle(ops ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = map[string]bool{}
	for _, op := range ops {
		s.failing[op] = true
	}
}

func (s *throttlingStore) fail(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.failing[op] {
		return nil
	}
	return fmt.Errorf("%s on table wsnotify: %w", op, &types.ProvisionedThroughputExceededException{
		Message: aws.String("The level of configured provisioned throughput for the table was exceeded"),
	})
}

func (s *throttlingStore) LookupKey(ctx context.Context, hash string) (auth.Key, error) {
	if err := s.fail("LookupKey"); err != nil {
		return auth.Key{}, err
	}
	return s.Store.LookupKey(ctx, hash)
}

func (s *throttlingStore) PutConnection(ctx context.Context, c store.Connection, now time.Time) error {
	if err := s.fail("PutConnection"); err != nil {
		return err
	}
	return s.Store.PutConnection(ctx, c, now)
}

func (s *throttlingStore) ReserveConnection(ctx context.Context, owner string, max int) (int, error) {
	if err := s.fail("ReserveConnection"); err != nil {
		return 0, err
	}
	return s.Store.ReserveConnection(ctx, owner, max)
}

func (s *throttlingStore) ListConnections(ctx context.Context, owner string, now time.Time) ([]store.Connection, error) {
	if owner == s.listOwner {
		if err := s.fail("ListConnections"); err != nil {
			return nil, err
		}
	}
	return s.Store.ListConnections(ctx, owner, now)
}

func TestAThrottledStoreFailsCleanlyAndLosesNothing(t *testing.T) {
	t.Parallel()
	st := &throttlingStore{Store: memory.New(), listOwner: ownerA}
	cfg := twoOwners()
	cfg.Store = st
	h := start(t, cfg)
	a1 := h.connect(t, "a1", keyA)
	b1 := h.connect(t, "b1", keyB)

	internal := errorEvent(notify.CodeInternal, "internal error")
	for _, op := range []string{"LookupKey", "ReserveConnection", "PutConnection"} {
		t.Run("a connect whose "+op+" is throttled gets 500 and no internals", func(t *testing.T) {
			st.throttle(op)
			status, e := refusal(t, h, "a2", keyA)
			st.throttle()
			body, _ := json.Marshal(e)
			if status != http.StatusInternalServerError || !sameJSON(string(body), internal) {
				t.Fatalf("got %d %s, want 500 %s", status, body, internal)
			}
			if h.hasRecord(t, ownerA, "a2") {
				t.Error("a record was stored")
			}
		})
	}

	t.Run("a publish whose store is throttled fails its record and its FIFO group's later ones, and delivers the rest", func(t *testing.T) {
		st.throttle("ListConnections")
		var ev events.SQSEvent
		for _, r := range []struct{ id, group, body string }{
			{"m1", "gb", envelope(ownerB, "", progressOf("b1"))},
			{"m2", "ga", envelope(ownerA, "", progressOf("a1"))},
			{"m3", "ga", envelope(ownerA, "", progressOf("a2"))}, // held back: it must not overtake m2
			{"m4", "gb", envelope(ownerB, "", progressOf("b2"))},
		} {
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: r.id, Body: r.body, Attributes: map[string]string{"MessageGroupId": r.group}})
		}
		payload, _ := json.Marshal(ev)
		var resp events.SQSEventResponse
		h.invokeJSON(t, "JobEventsFunction", payload, &resp)
		if got := fmt.Sprint(resp.BatchItemFailures); got != "[{m2} {m3}]" {
			t.Fatalf("batchItemFailures = %s, want [{m2} {m3}]", got)
		}
		if ids := readJobIDs(t, b1, 2); !reflect.DeepEqual(ids, []string{"b1", "b2"}) {
			t.Fatalf("b1 read %v", ids)
		}

		// SQS delivers the failed records again; the throttling has passed.
		st.throttle()
		retry := events.SQSEvent{Records: ev.Records[1:3]}
		payload, _ = json.Marshal(retry)
		resp = events.SQSEventResponse{}
		h.invokeJSON(t, "JobEventsFunction", payload, &resp)
		if len(resp.BatchItemFailures) > 0 {
			t.Fatalf("retry failed: %v", resp.BatchItemFailures)
		}
		if ids := readJobIDs(t, a1, 2); !reflect.DeepEqual(ids, []string{"a1", "a2"}) {
			t.Fatalf("a1 read %v", ids)
		}
	})

	t.Run("an upload event whose store is throttled is a function error, after the other owners' uploads went out", func(t *testing.T) {
		st.throttle("ListConnections")
		payload := []byte(`{"Records":[
			{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"uploads/` + ownerA + `/a.pdf","size":1,"eTag":"e","sequencer":"01"}}},
			{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"uploads/` + ownerB + `/b.pdf","size":1,"eTag":"e","sequencer":"02"}}}]}`)
		resp := h.invoke(t, "S3UploadFunction", payload, nil)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Function-Error") != "Unhandled" {
			t.Fatalf("got %d %q %s, want a function error, so that Lambda retries the event", resp.StatusCode, resp.Header.Get("X-Amz-Function-Error"), body)
		}
		first := read(t, b1)
		if first["name"] != "b.pdf" {
			t.Fatalf("b1 read %v", first)
		}
		// Lambda's retry publishes both again; the fileId lets b1 drop its duplicate.
		st.throttle()
		h.invokeJSON(t, "S3UploadFunction", payload, &struct{}{})
		if m := read(t, a1); m["name"] != "a.pdf" {
			t.Fatalf("a1 read %v", m)
		}
		if again := read(t, b1); again["fileId"] != first["fileId"] {
			t.Fatalf("the retry gave b.pdf another fileId: %v, then %v", first["fileId"], again["fileId"])
		}
	})
}
