// Package functions_test runs every Lambda binary as a process: each main is
// built as `make build` builds it (for this machine's architecture), started
// under the Lambda Runtime Interface Emulator with dynalite as DynamoDB and a
// recording Management API, and invoked with the files in events/.
package functions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/infra/template"
	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/store/dynamo"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// sampleKey is the token in events/connect.json.
const sampleKey = "wsn_sample_key_for_events_folder_only"

// managementAPI records the posts it gets, like API Gateway's Management API
// for connections that all exist.
type managementAPI struct {
	mu    sync.Mutex
	posts map[string][]string // connection id -> bodies
}

func (m *managementAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, escaped, ok := strings.Cut(r.URL.EscapedPath(), "/@connections/")
	id, err := url.PathUnescape(escaped)
	if !ok || err != nil {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodPost:
		body, _ := io.ReadAll(r.Body)
		m.mu.Lock()
		m.posts[id] = append(m.posts[id], string(body))
		m.mu.Unlock()
	case http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"connectedAt":"2026-11-26T10:15:30.000Z","identity":{"sourceIp":"203.0.113.7","userAgent":"test"},"lastActiveAt":"2026-11-26T10:15:30.000Z"}`)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// sent returns the bodies posted to connection id so far. Each is what the
// client would receive, so each is held to docs/asyncapi.yaml.
func (m *managementAPI) sent(t *testing.T, id string) []string {
	t.Helper()
	m.mu.Lock()
	posts := append([]string(nil), m.posts[id]...)
	m.mu.Unlock()
	for _, p := range posts {
		if err := asyncapi.CheckReceived([]byte(p)); err != nil {
			t.Errorf("pushed to %s: %v", id, err)
		}
	}
	return posts
}

// stack is the five functions under the emulator, sharing one table.
type stack struct {
	lambdas map[string]*testenv.Lambda // by logical id
	store   *dynamo.Store
	mgmt    *managementAPI
}

func startStack(t *testing.T) *stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	endpoint := testenv.Dynalite(t)
	db := testenv.DynamoDB(endpoint)
	const table = "wsnotify-functions-test"
	if err := template.CreateTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	st := &stack{store: dynamo.New(db, table), mgmt: &managementAPI{posts: map[string][]string{}}}
	if err := st.store.PutKey(ctx, auth.Key{Hash: auth.Hash(sampleKey), OwnerID: "acct_42", Name: "events folder", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	mgmt := httptest.NewServer(st.mgmt)
	t.Cleanup(mgmt.Close)
	st.lambdas = testenv.StartFunctions(t, append(testenv.FunctionEnv(table, endpoint, mgmt.URL+"/prod"), "LOG_LEVEL=debug")...)
	return st
}

// invoke sends one event file to a function and returns its raw answer.
func (st *stack) invoke(t *testing.T, function, file string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("..", "events", file))
	if err != nil {
		t.Fatal(err)
	}
	l := st.lambdas[function]
	resp, err := http.Post(l.URL, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("invoke %s: %v", function, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("invoke %s with %s: %d %s\n%s", function, file, resp.StatusCode, out, l.Output)
	}
	if bytes.Contains(out, []byte(`"errorMessage"`)) {
		t.Fatalf("%s failed on %s: %s\n%s", function, file, out, l.Output)
	}
	return out
}

// TestEveryEventsFileOnItsBinary invokes each file in events/ on the built
// binary of its function, in an order where each builds on the last (connect,
// then events to that connection, then disconnect), and checks each answer.
func TestEveryEventsFileOnItsBinary(t *testing.T) {
	st := startStack(t)
	const connID = "TWegAcC4EowCHnA="
	steps := []struct {
		file, function string
		check          func(t *testing.T, out []byte)
	}{
		{"connect.json", "ConnectFunction", func(t *testing.T, out []byte) {
			var resp struct{ StatusCode int }
			_ = json.Unmarshal(out, &resp)
			if resp.StatusCode != 200 {
				t.Fatalf("connect answered %s", out)
			}
			conns, err := st.store.ListConnections(context.Background(), "acct_42", time.Now())
			if err != nil || len(conns) != 1 || conns[0].ConnectionID != connID {
				t.Fatalf("records after connect: %+v, %v", conns, err)
			}
		}},
		{"default-ping.json", "DefaultFunction", func(t *testing.T, out []byte) {
			var resp struct {
				StatusCode int
				Body       string
			}
			_ = json.Unmarshal(out, &resp)
			if resp.StatusCode != 200 || resp.Body != `{"type":"pong"}` {
				t.Fatalf("ping answered %s", out)
			}
		}},
		{"default-unknown-action.json", "DefaultFunction", func(t *testing.T, out []byte) {
			if !bytes.Contains(out, []byte(`BAD_REQUEST`)) || !bytes.Contains(out, []byte(`subscribe`)) {
				t.Fatalf("unknown action answered %s", out)
			}
		}},
		{"sqs-job-batch.json", "JobEventsFunction", func(t *testing.T, out []byte) {
			if string(out) != `{"batchItemFailures":[]}` {
				t.Fatalf("job batch answered %s", out)
			}
			// The connection is younger than the connect grace, but the
			// recording Management API accepts it, so all three arrive in order.
			got := st.mgmt.sent(t, connID)
			if len(got) != 3 || !strings.Contains(got[0], "job_progress") || !strings.Contains(got[1], "job_complete") || !strings.Contains(got[2], "PERMISSION_ERROR") {
				t.Fatalf("pushed %q", got)
			}
		}},
		{"sqs-job-batch-partial-failure.json", "JobEventsFunction", func(t *testing.T, out []byte) {
			if !strings.Contains(string(out), `"itemIdentifier":"0b6c2f5e-9d1a-4c7b-8e3f-000000000012"`) || strings.Count(string(out), "itemIdentifier") != 1 {
				t.Fatalf("partial batch answered %s", out)
			}
			if got := st.mgmt.sent(t, connID); len(got) != 5 {
				t.Fatalf("pushed %d messages in all, want 5", len(got))
			}
		}},
		{"s3-put.json", "S3UploadFunction", func(t *testing.T, out []byte) {
			if string(out) != `{"published":1}` {
				t.Fatalf("upload answered %s", out)
			}
			got := st.mgmt.sent(t, connID)
			if len(got) != 6 || !strings.Contains(got[5], `"name":"Quarterly Report (2026).pdf"`) {
				t.Fatalf("last push %q", got[len(got)-1])
			}
		}},
		{"s3-put-mixed-keys.json", "S3UploadFunction", func(t *testing.T, out []byte) {
			var res struct {
				Published int
				Skipped   []struct{ Key, Reason string }
			}
			if json.Unmarshal(out, &res) != nil || res.Published != 1 || len(res.Skipped) != 3 {
				t.Fatalf("mixed keys answered %s", out)
			}
		}},
		{"sqs-job-one-client.json", "JobEventsFunction", func(t *testing.T, out []byte) {
			if string(out) != `{"batchItemFailures":[]}` {
				t.Fatalf("one-client batch answered %s", out)
			}
			// connect.json's client is the one the message names.
			got := st.mgmt.sent(t, connID)
			if len(got) != 8 || !strings.Contains(got[7], "FILE_LOCKED") {
				t.Fatalf("pushed %d messages in all, the last %q; want 8, the last FILE_LOCKED", len(got), got[len(got)-1])
			}
		}},
		{"disconnect.json", "DisconnectFunction", func(t *testing.T, out []byte) {
			if !bytes.Contains(out, []byte(`"statusCode":200`)) {
				t.Fatalf("disconnect answered %s", out)
			}
			// The byConnection index is eventually consistent on DynamoDB; on
			// dynalite it is immediate, so the record is gone at once.
			conns, err := st.store.ListConnections(context.Background(), "acct_42", time.Now())
			if err != nil || len(conns) != 0 {
				t.Fatalf("records after disconnect: %+v, %v", conns, err)
			}
		}},
	}
	files, _ := filepath.Glob(filepath.Join("..", "events", "*.json"))
	covered := map[string]bool{}
	for _, s := range steps {
		covered[s.file] = true
	}
	var missing []string
	for _, f := range files {
		if !covered[filepath.Base(f)] {
			missing = append(missing, filepath.Base(f))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("events files not invoked on a binary: %v", missing)
	}
	for _, s := range steps {
		if !t.Run(s.file, func(t *testing.T) { s.check(t, st.invoke(t, s.function, s.file)) }) {
			t.FailNow() // later steps build on this one
		}
	}
}
