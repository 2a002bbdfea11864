package handler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/handler"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/notify/notifytest"
	"github.com/wsnotify/wsnotify/shared/publishapi"
	"github.com/wsnotify/wsnotify/shared/store"
	"github.com/wsnotify/wsnotify/shared/store/memory"
)

// sampleKey is the token in events/connect.json, owned by acct_42.
const sampleKey = "wsn_sample_key_for_events_folder_only"

type env struct {
	store *memory.Store
	push  *notifytest.Recorder
	n     *notify.Notifier
	log   *slog.Logger
	logs  *bytes.Buffer
}

func newEnv(t testing.TB) *env {
	t.Helper()
	s := memory.New()
	if err := s.PutKey(context.Background(), auth.Key{Hash: auth.Hash(sampleKey), OwnerID: "acct_42"}); err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	p := notifytest.NewRecorder()
	return &env{store: s, push: p, n: notify.New(auth.NewAuthenticator(s), s, p, log, notify.Config{}), log: log, logs: logs}
}

// register puts a connection record straight into the store.
func (e *env) register(t testing.TB, owner, client, conn string) {
	t.Helper()
	now := time.Now()
	if err := e.store.PutConnection(context.Background(), store.Connection{OwnerID: owner, ClientID: client, ConnectionID: conn,
		ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}, now); err != nil {
		t.Fatal(err)
	}
}

// publishFile runs the publish API's event in name through its handler,
// for a client of acct_42: its answer holds results results, the first of
// the key key (seq 1, delivered), and the client gets sent.
func publishFile(t *testing.T, e *env, name string, results int, key string, sent ...string) {
	t.Helper()
	e.register(t, "acct_42", "3f0c9a52-6c1e-4e7b-9a43-1d2f6b8e7c10", "conn-a")
	resp, err := publishapi.New(e.n, e.log).HandleLambda(context.Background(), load[events.APIGatewayV2HTTPRequest](t, name))
	var ans struct{ Results []publishapi.Result }
	if err != nil || resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &ans) != nil || len(ans.Results) != results {
		t.Fatalf("publish = %d %s, %v", resp.StatusCode, resp.Body, err)
	}
	if r := ans.Results[0]; r.ID != publishapi.EventID("acct_42", key) || r.Seq != 1 || r.Delivered != 1 {
		t.Fatalf("results[0] = %+v", r)
	}
	assertSent(t, e, "conn-a", sent...)
}

func load[T any](t *testing.T, name string) T {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var v T
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, subset := any(v).(handler.S3Event); !subset {
		// aws-lambda-go's types hold every field Lambda sends: an unknown
		// field is a typo in the fixture.
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s does not decode as %T: %v", name, v, err)
	}
	return v
}

// TestEveryEventsFileRunsThroughItsHandler keeps events/ honest: each file
// decodes strictly as the event type its function receives (so it stays valid
// for `sam local invoke -e`) and gives the answer written here.
func TestEveryEventsFileRunsThroughItsHandler(t *testing.T) {
	ctx := context.Background()
	checks := map[string]func(t *testing.T, e *env){
		"http-publish.json": func(t *testing.T, e *env) {
			publishFile(t, e, "http-publish.json", 2, "job_127-progress-40",
				`{"type":"job_progress","jobId":"job_127","progress":40,"processedCount":40,"totalCount":100,"currentFile":""}`,
				`{"type":"error","jobId":"job_127","error":"Quota almost reached","code":"QUOTA_WARNING"}`)
		},
		"function-url-publish.json": func(t *testing.T, e *env) {
			publishFile(t, e, "function-url-publish.json", 1, "job_128-progress-10",
				`{"type":"job_progress","jobId":"job_128","progress":10,"processedCount":10,"totalCount":100,"currentFile":""}`)
		},
		"http-connections.json": func(t *testing.T, e *env) {
			e.register(t, "acct_42", "3f0c9a52-6c1e-4e7b-9a43-1d2f6b8e7c10", "conn-a")
			req := load[events.APIGatewayV2HTTPRequest](t, "http-connections.json")
			resp, err := publishapi.New(e.n, e.log).HandleLambda(ctx, req)
			if err != nil || resp.StatusCode != 200 || !strings.Contains(resp.Body, `"count":1,"clients":[{"clientId":"3f0c9a52-6c1e-4e7b-9a43-1d2f6b8e7c10"`) {
				t.Fatalf("presence = %d %s, %v", resp.StatusCode, resp.Body, err)
			}
		},
		"connect.json": func(t *testing.T, e *env) {
			req := load[events.APIGatewayWebsocketProxyRequest](t, "connect.json")
			resp, err := handler.NewConnect(e.n, e.log, handler.Origins{}).Handle(ctx, req)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("connect = %d %s, %v", resp.StatusCode, resp.Body, err)
			}
			conns, _ := e.store.ListConnections(ctx, "acct_42", time.Now())
			if len(conns) != 1 || conns[0].ClientID != "3f0c9a52-6c1e-4e7b-9a43-1d2f6b8e7c10" || conns[0].ConnectionID != "TWegAcC4EowCHnA=" {
				t.Fatalf("records = %+v", conns)
			}
		},
		"disconnect.json": func(t *testing.T, e *env) {
			e.register(t, "acct_42", "3f0c9a52-6c1e-4e7b-9a43-1d2f6b8e7c10", "TWegAcC4EowCHnA=")
			req := load[events.APIGatewayWebsocketProxyRequest](t, "disconnect.json")
			resp, err := handler.NewDisconnect(e.n, e.log).Handle(ctx, req)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("disconnect = %d, %v", resp.StatusCode, err)
			}
			if e.store.Len() != 0 {
				t.Fatal("the record is still there")
			}
		},
		"default-ping.json": func(t *testing.T, e *env) {
			req := load[events.APIGatewayWebsocketProxyRequest](t, "default-ping.json")
			resp, _ := handler.NewDefault(e.log, nil).Handle(ctx, req)
			if resp.StatusCode != 200 || resp.Body != `{"type":"pong"}` {
				t.Fatalf("ping = %d %s", resp.StatusCode, resp.Body)
			}
		},
		"default-unknown-action.json": func(t *testing.T, e *env) {
			req := load[events.APIGatewayWebsocketProxyRequest](t, "default-unknown-action.json")
			resp, _ := handler.NewDefault(e.log, nil).Handle(ctx, req)
			if want := `{"type":"error","error":"unknown action \"subscribe\" (supported: ping, resume)","code":"BAD_REQUEST"}`; resp.Body != want {
				t.Fatalf("body = %s, want %s", resp.Body, want)
			}
		},
		"sqs-job-batch.json": func(t *testing.T, e *env) {
			e.register(t, "acct_42", "3f0c9a52-6c1e-4e7b-9a43-1d2f6b8e7c10", "conn-a")
			e.register(t, "acct_42", "other-tab", "conn-b")
			e.register(t, "acct_7", "3f0c9a52-6c1e-4e7b-9a43-1d2f6b8e7c10", "conn-other-owner")
			resp, err := handler.NewJobEvents(e.n, e.log, nil).Handle(ctx, load[events.SQSEvent](t, "sqs-job-batch.json"))
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("failures = %+v, %v", resp.BatchItemFailures, err)
			}
			progress := `{"type":"job_progress","jobId":"job_123","progress":65,"processedCount":65,"totalCount":100,"currentFile":"document.pdf"}`
			complete := `{"type":"job_complete","jobId":"job_123","status":"completed","organized":100,"failed":0}`
			errEv := `{"type":"error","jobId":"job_124","error":"Permission denied","code":"PERMISSION_ERROR"}`
			assertSent(t, e, "conn-a", progress, complete, errEv)
			assertSent(t, e, "conn-b", progress, complete, errEv) // every client of the owner
			assertSent(t, e, "conn-other-owner")
		},
		"sqs-job-one-client.json": func(t *testing.T, e *env) {
			e.register(t, "acct_42", "3f0c9a52-6c1e-4e7b-9a43-1d2f6b8e7c10", "conn-a")
			e.register(t, "acct_42", "other-tab", "conn-b")
			resp, err := handler.NewJobEvents(e.n, e.log, nil).Handle(ctx, load[events.SQSEvent](t, "sqs-job-one-client.json"))
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("failures = %+v, %v", resp.BatchItemFailures, err)
			}
			assertSent(t, e, "conn-a", `{"type":"error","jobId":"job_126","error":"File is locked by another process","code":"FILE_LOCKED"}`)
			assertSent(t, e, "conn-b") // the message names the other client
		},
		"sqs-job-batch-partial-failure.json": func(t *testing.T, e *env) {
			e.register(t, "acct_42", "tab", "conn-a")
			resp, _ := handler.NewJobEvents(e.n, e.log, nil).Handle(ctx, load[events.SQSEvent](t, "sqs-job-batch-partial-failure.json"))
			if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "0b6c2f5e-9d1a-4c7b-8e3f-000000000012" {
				t.Fatalf("failures = %+v, want only the invalid record", resp.BatchItemFailures)
			}
			if got := e.push.Sent("conn-a"); len(got) != 2 || !strings.Contains(got[0], "job_progress") || !strings.Contains(got[1], "job_complete") {
				t.Fatalf("delivered %q, want the two valid records in order", got)
			}
			if !strings.Contains(e.logs.String(), "progress must be between 0 and 100") {
				t.Fatalf("the invalid record's reason is not logged: %s", e.logs)
			}
		},
		"s3-put.json": func(t *testing.T, e *env) {
			e.register(t, "acct_42", "tab", "conn-a")
			load[events.S3Event](t, "s3-put.json") // the shape Lambda delivers
			res, err := handler.NewS3Upload(e.n, e.log, "").Handle(ctx, load[handler.S3Event](t, "s3-put.json"))
			if err != nil || res.Published != 1 {
				t.Fatalf("result = %+v, %v", res, err)
			}
			got := e.push.Sent("conn-a")
			var ev map[string]any
			if len(got) != 1 || json.Unmarshal([]byte(got[0]), &ev) != nil {
				t.Fatalf("sent %q", got)
			}
			if ev["type"] != "file_uploaded" || ev["name"] != "Quarterly Report (2026).pdf" || ev["size"] != 512000.0 || !strings.HasPrefix(ev["fileId"].(string), "file_") {
				t.Fatalf("event = %v", ev)
			}
		},
		"s3-put-mixed-keys.json": func(t *testing.T, e *env) {
			e.register(t, "acct_42", "tab", "conn-a")
			res, err := handler.NewS3Upload(e.n, e.log, "").Handle(ctx, load[handler.S3Event](t, "s3-put-mixed-keys.json"))
			if err != nil || res.Published != 1 || len(res.Skipped) != 3 {
				t.Fatalf("result = %+v, %v; want 1 published, 3 skipped", res, err)
			}
			if len(e.push.Sent("conn-a")) != 1 {
				t.Fatalf("sent %q", e.push.Sent("conn-a"))
			}
		},
	}
	files, _ := filepath.Glob(filepath.Join("..", "..", "events", "*.json"))
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	sort.Strings(names)
	for _, name := range names {
		check, ok := checks[name]
		if !ok {
			t.Errorf("events/%s has no check here: add one", name)
			continue
		}
		t.Run(name, func(t *testing.T) { check(t, newEnv(t)) })
	}
	if len(names) != len(checks) {
		t.Errorf("%d events files, %d checks: a checked file is missing", len(names), len(checks))
	}
}

func assertSent(t *testing.T, e *env, conn string, want ...string) {
	t.Helper()
	var got []string
	for _, m := range e.push.Sent(conn) {
		got = append(got, notifytest.Unstamp(m)) // id and seq are checked where they matter
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s got\n%s\nwant\n%s", conn, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestConnectAnswersEachRefusalWithItsStatus(t *testing.T) {
	ctx := context.Background()
	req := func(path, query map[string]string) events.APIGatewayWebsocketProxyRequest {
		r := events.APIGatewayWebsocketProxyRequest{PathParameters: path, QueryStringParameters: query}
		r.RequestContext.ConnectionID = "Zm9vYmFyYmF6cXV4PQ="
		return r
	}
	tests := []struct {
		name string
		req  events.APIGatewayWebsocketProxyRequest
		want int
	}{
		{"client_id from the path (local mode)", req(map[string]string{"client_id": "tab-1"}, map[string]string{"token": sampleKey}), 200},
		{"client_id from the query (raw API Gateway URL)", req(nil, map[string]string{"client_id": "tab-1", "token": sampleKey}), 200},
		{"no token", req(nil, map[string]string{"client_id": "tab-1"}), 401},
		{"a wrong token", req(nil, map[string]string{"client_id": "tab-1", "token": "wsn_wrong"}), 401},
		{"no client_id", req(nil, map[string]string{"token": sampleKey}), 400},
		{"a client_id with a slash", req(map[string]string{"client_id": "a/b"}, map[string]string{"token": sampleKey}), 400},
		{"a 129-character client_id", req(map[string]string{"client_id": strings.Repeat("a", 129)}, map[string]string{"token": sampleKey}), 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			resp, err := handler.NewConnect(e.n, e.log, handler.Origins{}).Handle(ctx, tt.req)
			if err != nil || resp.StatusCode != tt.want {
				t.Fatalf("status = %d (%s), %v; want %d", resp.StatusCode, resp.Body, err, tt.want)
			}
			if tt.want != 200 {
				var body struct{ Type, Error, Code string }
				if json.Unmarshal([]byte(resp.Body), &body) != nil || body.Type != "error" || body.Error == "" || body.Code == "" {
					t.Fatalf("refusal body %q is not an error event", resp.Body)
				}
			}
			if strings.Contains(e.logs.String(), sampleKey) {
				t.Fatal("the key appears in the logs")
			}
		})
	}
	t.Run("a live duplicate is 409", func(t *testing.T) {
		e := newEnv(t)
		h := handler.NewConnect(e.n, e.log, handler.Origins{})
		first := req(nil, map[string]string{"client_id": "tab-1", "token": sampleKey})
		if resp, _ := h.Handle(ctx, first); resp.StatusCode != 200 {
			t.Fatal(resp)
		}
		second := first
		second.RequestContext.ConnectionID = "b3RoZXJjb25uZWM="
		if resp, _ := h.Handle(ctx, second); resp.StatusCode != 409 {
			t.Fatalf("duplicate = %d %s", resp.StatusCode, resp.Body)
		}
	})
}

// failingStore fails every call: the handlers must answer 500 without
// showing the cause.
type failingStore struct{ notify.Store }

var errDown = errors.New("dynamodb: ProvisionedThroughputExceededException secret-detail")

func (failingStore) PutConnection(context.Context, store.Connection, time.Time) error { return errDown }
func (failingStore) DeleteConnection(context.Context, string) (store.Connection, error) {
	return store.Connection{}, errDown
}
func (failingStore) ListConnections(context.Context, string, time.Time) ([]store.Connection, error) {
	return nil, errDown
}
func (failingStore) ReserveConnection(context.Context, string, int) (int, error) { return 0, errDown }
func (failingStore) ConnectionCount(context.Context, string) (int, error)        { return 0, errDown }

func TestStoreFailuresAreInternalAndRetried(t *testing.T) {
	ctx := context.Background()
	keys := memory.New()
	_ = keys.PutKey(ctx, auth.Key{Hash: auth.Hash(sampleKey), OwnerID: "acct_42"})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n := notify.New(auth.NewAuthenticator(keys), failingStore{}, notifytest.NewRecorder(), log, notify.Config{})

	t.Run("connect answers 500 without the cause", func(t *testing.T) {
		r := events.APIGatewayWebsocketProxyRequest{QueryStringParameters: map[string]string{"client_id": "c", "token": sampleKey}}
		r.RequestContext.ConnectionID = "x"
		resp, _ := handler.NewConnect(n, log, handler.Origins{}).Handle(ctx, r)
		if want := `{"type":"error","error":"internal error","code":"INTERNAL"}`; resp.StatusCode != 500 || resp.Body != want {
			t.Fatalf("resp = %d %s, want 500 %s", resp.StatusCode, resp.Body, want)
		}
	})
	t.Run("disconnect returns the error so Lambda records it", func(t *testing.T) {
		_, err := handler.NewDisconnect(n, log).Handle(ctx, events.APIGatewayWebsocketProxyRequest{})
		if !errors.Is(err, errDown) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("an upload that cannot be published is an error so Lambda retries the event", func(t *testing.T) {
		ev := load[handler.S3Event](t, "s3-put.json")
		_, err := handler.NewS3Upload(n, log, "").Handle(ctx, ev)
		if !errors.Is(err, errDown) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestParseAction(t *testing.T) {
	tests := []struct {
		name, body string
		binary     bool
		want, err  string
	}{
		{"ping", `{"action":"ping"}`, false, "ping", ""},
		{"an unknown action still parses", `{"action":"dance","x":1}`, false, "dance", ""},
		{"plain text", `hello`, false, "", "must be a JSON object"},
		{"a JSON array", `[1]`, false, "", "must be a JSON object"},
		{"null", `null`, false, "", "must be a JSON object"},
		{"no action", `{"type":"ping"}`, false, "", `no "action"`},
		{"a numeric action", `{"action":1}`, false, "", `"action" must be a string`},
		{"a null action", `{"action":null}`, false, "", `"action" must be a string`},
		{"a boolean action", `{"action":true}`, false, "", `"action" must be a string`},
		{"an object action", `{"action":{"name":"ping"}}`, false, "", `"action" must be a string`},
		{"an array action", `{"action":["ping"]}`, false, "", `"action" must be a string`},
		{"a string action after spaces", `{"action":  "ping"}`, false, "ping", ""},
		{"a binary frame", `eyJhY3Rpb24iOiJwaW5nIn0=`, true, "", "binary messages are not supported"},
		{"an overlong action", `{"action":"` + strings.Repeat("a", 65) + `"}`, false, "", "longer than 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := handler.ParseMessage(tt.body, tt.binary)
			got := msg.Action
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || notify.ErrorCode(err) != notify.CodeInvalid {
					t.Fatalf("err = %v, want BAD_REQUEST saying %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseMessage = action %q, %v", got, err)
			}
		})
	}
}

func TestParseUploadKey(t *testing.T) {
	tests := []struct {
		key, owner, name, err string
	}{
		{key: "uploads/acct_42/newfile.pdf", owner: "acct_42", name: "newfile.pdf"},
		{key: "uploads/acct_42/My+Report+%282026%29.pdf", owner: "acct_42", name: "My Report (2026).pdf"},
		{key: "uploads/acct_42/a+%2B+b.txt", owner: "acct_42", name: "a + b.txt"},
		{key: "uploads/acct_42/sub/dir/x.png", owner: "acct_42", name: "sub/dir/x.png"},
		{key: "uploads/me%40example.com/x.png", owner: "me@example.com", name: "x.png"},
		{key: "uploads/acct_42/%E6%96%87%E4%BB%B6.pdf", owner: "acct_42", name: "文件.pdf"},
		{key: "avatars/acct_42/x.png", err: "outside uploads/"},
		{key: "uploads/acct_42", err: "no valid owner segment"},
		{key: "uploads//x.png", err: "no valid owner segment"},
		{key: "uploads/bad+owner/x.png", err: "no valid owner segment"},
		{key: "uploads/acct_42/", err: "folder"},
		{key: "uploads/acct_42/dir/", err: "folder"},
		{key: "uploads/acct_42/bad%ZZ.pdf", err: "not valid URL encoding"},
		{key: "uploads/acct_42/" + strings.Repeat("n", 4097), err: "longer than 4096"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			up, err := handler.ParseUploadKey(tt.key, handler.DefaultUploadPrefix)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one saying %q", err, tt.err)
				}
				return
			}
			if err != nil || up.OwnerID != tt.owner || up.Name != tt.name {
				t.Fatalf("ParseUploadKey = %+v, %v", up, err)
			}
		})
	}
}

func TestFileIDIsStablePerUploadAndNewPerReupload(t *testing.T) {
	rec := load[handler.S3Event](t, "s3-put.json").Records[0]
	again := rec
	if handler.FileID(rec) != handler.FileID(again) {
		t.Fatal("a duplicate delivery got a new fileId")
	}
	reupload := rec
	reupload.S3.Object.Sequencer = "0067459A2B3C4D5F00"
	if handler.FileID(rec) == handler.FileID(reupload) {
		t.Fatal("a re-upload of the same key got the same fileId")
	}
	otherBucket := rec
	otherBucket.S3.Bucket.Name = "another-bucket"
	if handler.FileID(rec) == handler.FileID(otherBucket) {
		t.Fatal("the same key in another bucket got the same fileId")
	}
}

func TestS3UploadHonoursAConfiguredPrefixAndSkipsNonCreateEvents(t *testing.T) {
	e := newEnv(t)
	e.register(t, "acct_42", "tab", "conn-a")
	ev := load[handler.S3Event](t, "s3-put.json")
	ev.Records[0].S3.Object.Key = "incoming/acct_42/x.pdf"
	removed := ev.Records[0]
	removed.EventName = "ObjectRemoved:Delete"
	ev.Records = append(ev.Records, removed)
	res, err := handler.NewS3Upload(e.n, e.log, "incoming").Handle(context.Background(), ev)
	if err != nil || res.Published != 1 || len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0].Reason, "not an ObjectCreated") {
		t.Fatalf("result = %+v, %v", res, err)
	}
}

// ownerDownStore fails the listing of one owner's connections.
type ownerDownStore struct {
	*memory.Store
	down string
}

func (s ownerDownStore) ListConnections(ctx context.Context, owner string, now time.Time) ([]store.Connection, error) {
	if owner == s.down {
		return nil, errDown
	}
	return s.Store.ListConnections(ctx, owner, now)
}

func TestAJobEventThatCannotBePublishedHoldsBackTheRestOfItsMessageGroup(t *testing.T) {
	e := newEnv(t)
	e.register(t, "acct_42", "tab", "conn-a")
	n := notify.New(auth.NewAuthenticator(e.store), ownerDownStore{e.store, "acct_down"}, e.push, e.log, notify.Config{})
	body := func(owner, job string) string {
		return `{"ownerId":"` + owner + `","event":{"type":"job_complete","jobId":"` + job + `","status":"completed","organized":1,"failed":0}}`
	}
	rec := func(id, group, body string) events.SQSMessage {
		return events.SQSMessage{MessageId: id, Body: body, Attributes: map[string]string{"MessageGroupId": group}}
	}
	resp, _ := handler.NewJobEvents(n, e.log, nil).Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		rec("1", "group-a", body("acct_down", "j1")), // the store fails for this owner
		rec("2", "group-b", body("acct_42", "j2")),   // another group: delivered
		rec("3", "group-a", body("acct_42", "j3")),   // behind record 1 in its group: held back
		rec("4", "", body("acct_42", "j4")),          // a standard queue's record: delivered
	}})
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	if strings.Join(ids, ",") != "1,3" {
		t.Fatalf("failures = %v, want 1 and 3", ids)
	}
	got := e.push.Sent("conn-a")
	if len(got) != 2 || !strings.Contains(got[0], `"j2"`) || !strings.Contains(got[1], `"j4"`) {
		t.Fatalf("delivered %q, want j2 then j4", got)
	}
}

func TestAPushThatFailsIsRetriedNotLost(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.register(t, "acct_42", "ok-tab", "conn-ok")
	e.register(t, "acct_42", "throttled-tab", "conn-throttled")
	e.push.Fail = func(id string) error {
		if id == "conn-throttled" {
			return errors.New("LimitExceededException after 4 attempts")
		}
		return nil
	}
	t.Run("the job event's record fails, with the rest of its message group", func(t *testing.T) {
		body := `{"ownerId":"acct_42","event":{"type":"job_complete","jobId":"j","status":"completed","organized":1,"failed":0}}`
		other := `{"ownerId":"acct_7","event":{"type":"job_complete","jobId":"k","status":"completed","organized":1,"failed":0}}`
		resp, _ := handler.NewJobEvents(e.n, e.log, nil).Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{
			{MessageId: "1", Body: body, Attributes: map[string]string{"MessageGroupId": "j"}},
			{MessageId: "2", Body: other, Attributes: map[string]string{"MessageGroupId": "j"}},
			{MessageId: "3", Body: other, Attributes: map[string]string{"MessageGroupId": "k"}},
		}})
		var ids []string
		for _, f := range resp.BatchItemFailures {
			ids = append(ids, f.ItemIdentifier)
		}
		if strings.Join(ids, ",") != "1,2" {
			t.Fatalf("failures = %v, want 1 and 2 (held behind it)", ids)
		}
	})
	t.Run("the upload event is an error, so Lambda retries it", func(t *testing.T) {
		_, err := handler.NewS3Upload(e.n, e.log, "").Handle(ctx, load[handler.S3Event](t, "s3-put.json"))
		if err == nil || !strings.Contains(err.Error(), "1 of 2 pushes failed") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestRecordsNotReachedBeforeTheDeadlineAreLeftToARetry(t *testing.T) {
	e := newEnv(t)
	e.register(t, "acct_42", "tab", "conn-a")
	body := `{"ownerId":"acct_42","event":{"type":"job_complete","jobId":"j","status":"completed","organized":1,"failed":0}}`
	// A deadline one second away is inside the margin kept for answering.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, _ := handler.NewJobEvents(e.n, e.log, nil).Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "1", Body: body}, {MessageId: "2", Body: body},
	}})
	if len(resp.BatchItemFailures) != 2 || len(e.push.Sent("conn-a")) != 0 {
		t.Fatalf("failures %+v, sent %d: want both records left for the retry, none sent", resp.BatchItemFailures, len(e.push.Sent("conn-a")))
	}
}

// deadLetters records what the job events handler dead-letters; Refuses makes
// the queue refuse.
type deadLetters struct {
	sent    map[string]string // message id -> reason
	bodies  map[string]string // message id -> body
	Refuses bool
}

func (d *deadLetters) SendDeadLetter(_ context.Context, rec events.SQSMessage, reason string) error {
	if d.Refuses {
		return errors.New("AccessDenied")
	}
	if d.sent == nil {
		d.sent, d.bodies = map[string]string{}, map[string]string{}
	}
	d.sent[rec.MessageId], d.bodies[rec.MessageId] = reason, rec.Body
	return nil
}

func TestAJobEventThatFailsValidationIsDeadLetteredAndItsGroupGoesOn(t *testing.T) {
	complete := func(job string) string {
		return `{"ownerId":"acct_42","event":{"type":"job_complete","jobId":"` + job + `","status":"completed","organized":1,"failed":0}}`
	}
	rec := func(id, body string) events.SQSMessage {
		return events.SQSMessage{MessageId: id, Body: body, Attributes: map[string]string{"MessageGroupId": "job_1"}}
	}
	batch := events.SQSEvent{Records: []events.SQSMessage{
		rec("1", complete("a")),
		rec("2", `{"ownerId":"acct_42","event":{"type":"job_started","jobId":"b"}}`), // unknown type
		rec("3", `not JSON`),
		rec("4", `{"ownerId":"acct_42","event":{"type":"job_progress","jobId":"c","progress":120,"processedCount":1,"totalCount":1}}`),
		rec("5", `{"ownerId":"acct_42","event":{"type":"error","jobId":"d","error":"`+strings.Repeat("x", event.MaxTextLength)+`","code":"E"}}`),
		rec("6", complete("e")),
	}}
	t.Run("the invalid records go to the queue with their reason and the rest of the group is delivered", func(t *testing.T) {
		e := newEnv(t)
		e.register(t, "acct_42", "tab", "conn-a")
		dead := &deadLetters{}
		resp, _ := handler.NewJobEvents(e.n, e.log, dead).Handle(context.Background(), batch)
		if got := failed(resp); got != "" {
			t.Fatalf("failures = %v, want none: invalid records are acknowledged once dead-lettered", got)
		}
		for id, want := range map[string]string{"2": `unknown type "job_started"`, "3": "invalid character", "4": "progress must be between 0 and 100"} {
			if !strings.Contains(dead.sent[id], want) || dead.bodies[id] != batch.Records[mustAtoi(id)-1].Body {
				t.Errorf("record %s: dead-lettered with %q, body %q; want the original body and a reason saying %q", id, dead.sent[id], dead.bodies[id], want)
			}
		}
		got := e.push.Sent("conn-a")
		if len(got) != 3 || !strings.Contains(got[0], `"a"`) || !strings.Contains(got[1], `"d"`) || !strings.Contains(got[2], `"e"`) {
			t.Fatalf("delivered %d messages, want a, d and e in order", len(got))
		}
	})
	t.Run("if the queue refuses, the invalid records are reported failed and none is lost", func(t *testing.T) {
		e := newEnv(t)
		resp, _ := handler.NewJobEvents(e.n, e.log, &deadLetters{Refuses: true}).Handle(context.Background(), batch)
		if got := failed(resp); got != "2,3,4" {
			t.Fatalf("failures = %v, want 2,3,4", got)
		}
		if !strings.Contains(e.logs.String(), "the dead-letter queue refused it") {
			t.Fatalf("the log does not say why: %s", e.logs)
		}
	})
	t.Run("without a queue (local mode) the invalid records are reported failed", func(t *testing.T) {
		e := newEnv(t)
		resp, _ := handler.NewJobEvents(e.n, e.log, nil).Handle(context.Background(), batch)
		if got := failed(resp); got != "2,3,4" {
			t.Fatalf("failures = %v, want 2,3,4", got)
		}
	})
	t.Run("a transient failure is never dead-lettered", func(t *testing.T) {
		e := newEnv(t)
		n := notify.New(auth.NewAuthenticator(e.store), ownerDownStore{e.store, "acct_42"}, e.push, e.log, notify.Config{})
		dead := &deadLetters{}
		resp, _ := handler.NewJobEvents(n, e.log, dead).Handle(context.Background(), events.SQSEvent{Records: batch.Records[:1]})
		if got := failed(resp); got != "1" || len(dead.sent) != 0 {
			t.Fatalf("failures = %v, dead-lettered %v; want record 1 failed for a retry and nothing dead-lettered", got, dead.sent)
		}
	})
}

// failed lists the records a batch response reports failed, in order: "2,3".
func failed(resp events.SQSEventResponse) string {
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return strings.Join(ids, ",")
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

// TestAJobEventNamedByItsPublisherKeepsItsIDWhenSentAgain: the publishers
// set a deduplication id from the message's idempotency key; a message sent
// again after SQS's deduplication window is a new SQS message, and must
// still be the same event. A hash SQS made of the body is no such name.
func TestAJobEventNamedByItsPublisherKeepsItsIDWhenSentAgain(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.register(t, "acct_42", "tab", "conn-1")
	body := `{"ownerId":"acct_42","event":{"type":"job_complete","jobId":"j","status":"completed","organized":1,"failed":0}}`
	record := func(messageID, dedup string) events.SQSMessage {
		return events.SQSMessage{MessageId: messageID, Body: body,
			Attributes: map[string]string{"MessageGroupId": "j", "MessageDeduplicationId": dedup}}
	}
	idOf := func(msg string) string {
		var v struct{ ID string }
		if err := json.Unmarshal([]byte(msg), &v); err != nil || v.ID == "" {
			t.Fatalf("pushed %s: no id (%v)", msg, err)
		}
		return v.ID
	}
	named := event.DeduplicationPrefix + "0123456789abcdef"
	contentHash := strings.Repeat("ab", 32)
	resp, _ := handler.NewJobEvents(e.n, e.log, nil).Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{
		record("m-1", named), record("m-2", named), record("m-3", contentHash), record("m-4", contentHash),
	}})
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures: %v", resp.BatchItemFailures)
	}
	sent := e.push.Sent("conn-1")
	if len(sent) != 4 {
		t.Fatalf("pushed %d messages, want 4: %v", len(sent), sent)
	}
	if idOf(sent[0]) != idOf(sent[1]) {
		t.Errorf("the named message sent twice is two events: %s and %s", idOf(sent[0]), idOf(sent[1]))
	}
	if idOf(sent[2]) == idOf(sent[3]) || idOf(sent[2]) == idOf(sent[0]) {
		t.Errorf("messages with a content hash share an id: %s, %s (named: %s)", idOf(sent[2]), idOf(sent[3]), idOf(sent[0]))
	}
}

// A resume from a connection whose record was removed (a push to it was
// answered 410 while it was still open) is answered with NOT_REGISTERED and
// the connection is closed, so its client reconnects with a record: before,
// it got INTERNAL and stayed open, receiving nothing.
func TestAResumeFromAConnectionWithoutARecordIsToldSoAndClosed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.register(t, "acct_42", "tab", "conn-1")
	if _, err := e.store.DeleteConnection(ctx, "conn-1"); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`{"action":"resume","since":3}`, `{"action":"resume"}`} {
		e.push = notifytest.NewRecorder()
		e.n = notify.New(auth.NewAuthenticator(e.store), e.store, e.push, e.log, notify.Config{})
		req := events.APIGatewayWebsocketProxyRequest{Body: body}
		req.RequestContext.ConnectionID = "conn-1"
		resp, err := handler.NewDefault(e.log, e.n).Handle(ctx, req)
		if err != nil || resp.StatusCode != 200 || resp.Body != "" {
			t.Fatalf("%s: %+v, %v; want 200 and nothing more (the error goes before the close)", body, resp, err)
		}
		sent := e.push.Sent("conn-1")
		var got event.Error
		if len(sent) != 1 || json.Unmarshal([]byte(sent[0]), &got) != nil || got.Code != string(notify.CodeUnregistered) || got.Error == "" {
			t.Fatalf("%s: sent %q, want one error of code %s", body, sent, notify.CodeUnregistered)
		}
		if closed := e.push.Closed(); len(closed) != 1 || closed[0] != "conn-1" {
			t.Fatalf("%s: closed %v, want conn-1", body, closed)
		}
	}
}
