package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/infra/local/server"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// wait bounds every wait for something the server does in the background.
const wait = 10 * time.Second

// The client contract's original example events, verbatim (docs/protocol.md).
const (
	seedJobProgress  = `{"type":"job_progress","jobId":"job_123","progress":65,"processedCount":65,"totalCount":100,"currentFile":"document.pdf"}`
	seedJobComplete  = `{"type":"job_complete","jobId":"job_123","status":"completed","organized":100,"failed":0}`
	seedFileUploaded = `{"type":"file_uploaded","fileId":"file_456","name":"newfile.pdf","size":512000}`
	seedError        = `{"type":"error","jobId":"job_123","error":"Permission denied","code":"PERMISSION_ERROR"}`
)

// testLogger shows the server's log with -v and discards it otherwise.
func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

// harness is local mode running in-process on a free loopback port.
type harness struct {
	srv  *server.Server
	host string // 127.0.0.1:port
	base string // http://127.0.0.1:port
	stop func()
}

// start runs local mode with cfg until the test ends.
func start(t *testing.T, cfg server.Config) *harness {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, stop := srv.Start(l, wait)
	h := &harness{srv: srv, host: l.Addr().String(), base: "http://" + l.Addr().String()}
	h.stop = sync.OnceFunc(func() {
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	t.Cleanup(h.stop)
	return h
}

// dial opens the seed's endpoint with a raw (already escaped as wanted)
// client id path segment and token.
func (h *harness) dial(ctx context.Context, rawClientID, token string) (*asyncapi.Conn, *http.Response, error) {
	u := "ws://" + h.host + "/api/v1/ws/" + rawClientID
	if token != "" {
		u += "?token=" + url.QueryEscape(token)
	}
	return asyncapi.Dial(ctx, u, nil)
}

// connect opens a client that the test closes at its end.
func (h *harness) connect(t *testing.T, clientID, token string) *asyncapi.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, resp, err := h.dial(ctx, url.PathEscape(clientID), token)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("connect %s: status %d: %v", clientID, status, err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// connectionID returns the server-side connection id of owner's client.
func (h *harness) connectionID(t *testing.T, owner, clientID string) string {
	t.Helper()
	id, ok := h.record(t, owner, clientID)
	if !ok {
		t.Fatalf("no connection of %s/%s", owner, clientID)
	}
	return id
}

// record returns the connection id in owner's record of clientID, if any.
func (h *harness) record(t *testing.T, owner, clientID string) (string, bool) {
	t.Helper()
	conns, err := h.srv.Store().ListConnections(context.Background(), owner, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		if c.ClientID == clientID {
			return c.ConnectionID, true
		}
	}
	return "", false
}

// invoke calls the Lambda Invoke API.
func (h *harness) invoke(t *testing.T, function string, payload []byte, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.base+"/2015-03-31/functions/"+function+"/invocations", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("invoke %s: %v", function, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// invokeJSON invokes a function that must succeed and decodes its result.
func (h *harness) invokeJSON(t *testing.T, function string, payload []byte, out any) {
	t.Helper()
	if err := h.tryInvokeJSON(function, payload, out); err != nil {
		t.Fatal(err)
	}
}

// tryInvokeJSON is invokeJSON returning its failure, for goroutines other
// than the test's.
func (h *harness) tryInvokeJSON(function string, payload []byte, out any) error {
	resp, err := http.Post(h.base+"/2015-03-31/functions/"+function+"/invocations", "application/json", bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("invoke %s: %w", function, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Function-Error") != "" {
		return fmt.Errorf("invoke %s: %d %s %s", function, resp.StatusCode, resp.Header.Get("X-Amz-Function-Error"), body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("invoke %s: result %s: %w", function, body, err)
	}
	return nil
}

// batches numbers publishJobs' batches: SQS gives every message an id of
// its own, and a record with the id of an earlier one is a redelivery of it.
var batches atomic.Int64

// publishJobs sends SQS records through JobEventsFunction, each body an
// envelope, and returns the failed records as "m1", "m2", … by their place
// in the batch.
func (h *harness) publishJobs(t *testing.T, bodies ...string) []string {
	t.Helper()
	failed, err := h.tryPublishJobs(bodies...)
	if err != nil {
		t.Fatal(err)
	}
	return failed
}

// tryPublishJobs is publishJobs returning its failure, for goroutines other
// than the test's.
func (h *harness) tryPublishJobs(bodies ...string) ([]string, error) {
	batch := batches.Add(1)
	var ev events.SQSEvent
	for i, body := range bodies {
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId:      fmt.Sprintf("b%d-m%d", batch, i+1),
			Body:           body,
			EventSource:    "aws:sqs",
			EventSourceARN: "arn:aws:sqs:local:000000000000:wsnotify-job-events.fifo",
		})
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	var resp events.SQSEventResponse
	if err := h.tryInvokeJSON("JobEventsFunction", payload, &resp); err != nil {
		return nil, err
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, strings.TrimPrefix(f.ItemIdentifier, fmt.Sprintf("b%d-", batch)))
	}
	return failed, nil
}

// upload sends an S3 ObjectCreated event for key through S3UploadFunction.
func (h *harness) upload(t *testing.T, key string, size int64) {
	t.Helper()
	payload := fmt.Sprintf(`{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"local",
		"eventTime":"2026-11-26T10:31:12.345Z","eventName":"ObjectCreated:Put",
		"s3":{"s3SchemaVersion":"1.0","bucket":{"name":"wsnotify-uploads","arn":"arn:aws:s3:::wsnotify-uploads"},
		"object":{"key":%q,"size":%d,"eTag":"0123456789abcdef0123456789abcdef","sequencer":"0067459A2B3C4D5E6F"}}}]}`, key, size)
	var res struct {
		Published int `json:"published"`
	}
	h.invokeJSON(t, "S3UploadFunction", []byte(payload), &res)
	if res.Published != 1 {
		t.Fatalf("upload %s: published %d", key, res.Published)
	}
}

// envelope is a job event trigger message for owner (and client, if set).
func envelope(owner, client, event string) string {
	env := map[string]any{"ownerId": owner, "event": json.RawMessage(event)}
	if client != "" {
		env["clientId"] = client
	}
	b, _ := json.Marshal(env)
	return string(b)
}

// read returns the next message of c as a JSON object, failing the test if
// none arrives in time or if it breaks docs/asyncapi.yaml.
func read(t *testing.T, c *asyncapi.Conn) map[string]any {
	t.Helper()
	return readWith(t, c.Read)
}

// readUnchecked is read for bytes the test itself had delivered, through
// the Management API or a route of its own: they need not be a message of
// docs/asyncapi.yaml.
func readUnchecked(t *testing.T, c *asyncapi.Conn) map[string]any {
	t.Helper()
	return readWith(t, c.ReadUnchecked)
}

func readWith(t *testing.T, readMessage func(context.Context) (websocket.MessageType, []byte, error)) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	typ, data, err := readMessage(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("read a %v message, want text", typ)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("message %s is not a JSON object: %v", data, err)
	}
	return m
}

// readClose reads until c is closed and returns the close status.
func readClose(t *testing.T, c *asyncapi.Conn) websocket.CloseError {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return closeOf(t, err)
		}
	}
}

// closeOf is the close status in the error a client's Read ended with,
// failing the test if the connection ended without a close frame.
func closeOf(t *testing.T, err error) websocket.CloseError {
	t.Helper()
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("connection ended without a close frame: %v", err)
	}
	return ce
}

// decode parses a JSON object literal.
func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return m
}

// sameShape fails unless got carries every field of want with the same
// value. Fields may be added to events, never removed or renamed; fields
// named in anyValue must be present with any value.
func sameShape(t *testing.T, got map[string]any, want string, anyValue ...string) {
	t.Helper()
	w := decode(t, want)
	for k, v := range w {
		g, ok := got[k]
		if !ok {
			t.Errorf("event %v lacks field %q of %s", got, k, want)
			continue
		}
		if slices.Contains(anyValue, k) {
			continue
		}
		if fmt.Sprint(g) != fmt.Sprint(v) {
			t.Errorf("event field %q = %v, want %v (event %v)", k, g, v, got)
		}
	}
}

// eventually polls cond until it holds, failing the test after wait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, wait, what, cond)
}
