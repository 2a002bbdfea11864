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

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/infra/openapi"
	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/metrics"
	"github.com/wsnotify/wsnotify/shared/metrics/emf/emftest"
	"github.com/wsnotify/wsnotify/shared/store/dynamo"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// sampleKey is the token in events/connect.json.
const sampleKey = "wsn_sample_key_for_events_folder_only"

// metricsNamespace is the functions' METRICS_NAMESPACE in these tests.
const metricsNamespace = "wsnotify-functions-test"

// managementAPI records the posts it gets, like API Gateway's Management API
// for connections that all exist. A connection in throttle has its first
// post refused with 429, as API Gateway throttles.
type managementAPI struct {
	mu       sync.Mutex
	posts    map[string][]string // connection id -> bodies
	throttle map[string]bool
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
		defer m.mu.Unlock()
		if m.throttle[id] {
			delete(m.throttle, id)
			w.Header().Set("x-amzn-ErrorType", "LimitExceededException")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"message":"Rate exceeded"}`)
			return
		}
		m.posts[id] = append(m.posts[id], string(body))
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

// startBackends starts what the functions reach: dynalite holding table, and
// a recording Management API. It returns the table's store, the Management
// API and the functions' environment pointed at both.
func startBackends(t *testing.T, table string) (*dynamo.Store, *managementAPI, []string) {
	t.Helper()
	endpoint := testenv.Dynalite(t)
	db := testenv.Table(t, endpoint, table)
	mgmt := &managementAPI{posts: map[string][]string{}}
	srv := httptest.NewServer(mgmt)
	t.Cleanup(srv.Close)
	return dynamo.New(db, table), mgmt, testenv.FunctionEnv(table, endpoint, srv.URL+"/prod")
}

func startStack(t *testing.T) *stack {
	t.Helper()
	store, mgmt, env := startBackends(t, "wsnotify-functions-test")
	st := &stack{store: store, mgmt: mgmt}
	if err := st.store.PutKey(context.Background(), auth.Key{Hash: auth.Hash(sampleKey), OwnerID: "acct_42", Name: "events folder", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	st.lambdas = testenv.StartFunctions(t, append(env,
		"LOG_LEVEL=debug", "ALLOWED_ORIGINS=https://app.example.com", "METRICS_NAMESPACE="+metricsNamespace)...)
	return st
}

// invoke sends one event file, changed by edit if not nil, to a function and
// returns its raw answer.
func (st *stack) invoke(t *testing.T, function, file string, edit func([]byte) []byte) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("..", "events", file))
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		body = edit(body)
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

// apiAnswer decodes PublishFunction's answer to an HTTP API request and
// holds its body to docs/openapi.yaml.
func apiAnswer(t *testing.T, method, path string, out []byte) events.APIGatewayV2HTTPResponse {
	t.Helper()
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("%s %s answered %s: %v", method, path, out, err)
	}
	if err := openapi.CheckResponse(method, path, resp.StatusCode, []byte(resp.Body)); err != nil {
		t.Error(err)
	}
	return resp
}

// TestEveryEventsFileOnItsBinary invokes each file in events/ on the built
// binary of its function, in an order where each builds on the last (connect,
// then events to that connection, then disconnect), and checks each answer.
func TestEveryEventsFileOnItsBinary(t *testing.T) {
	st := startStack(t)
	const connID = "TWegAcC4EowCHnA="
	st.mgmt.throttle = map[string]bool{connID: true} // the first push to it: 429, then retried
	steps := []struct {
		file, function string
		edit           func([]byte) []byte
		check          func(t *testing.T, out []byte)
	}{
		{"connect.json", "ConnectFunction", func(b []byte) []byte {
			// The page of another site: ALLOWED_ORIGINS lists only the file's.
			return bytes.ReplaceAll(b, []byte(`"https://app.example.com"`), []byte(`"https://evil.example.com"`))
		}, func(t *testing.T, out []byte) {
			var resp struct {
				StatusCode int
				Body       string
			}
			_ = json.Unmarshal(out, &resp)
			if resp.StatusCode != 403 || !strings.Contains(resp.Body, "origin is not allowed") {
				t.Fatalf("connect from another origin answered %s", out)
			}
			if conns, err := st.store.ListConnections(context.Background(), "acct_42", time.Now()); err != nil || len(conns) != 0 {
				t.Fatalf("records after a refused origin: %+v, %v", conns, err)
			}
		}},
		{"connect.json", "ConnectFunction", nil, func(t *testing.T, out []byte) {
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
		{"default-ping.json", "DefaultFunction", nil, func(t *testing.T, out []byte) {
			var resp struct {
				StatusCode int
				Body       string
			}
			_ = json.Unmarshal(out, &resp)
			if resp.StatusCode != 200 || resp.Body != `{"type":"pong"}` {
				t.Fatalf("ping answered %s", out)
			}
		}},
		{"default-unknown-action.json", "DefaultFunction", nil, func(t *testing.T, out []byte) {
			if !bytes.Contains(out, []byte(`BAD_REQUEST`)) || !bytes.Contains(out, []byte(`subscribe`)) {
				t.Fatalf("unknown action answered %s", out)
			}
		}},
		{"sqs-job-batch.json", "JobEventsFunction", nil, func(t *testing.T, out []byte) {
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
		{"sqs-job-batch-partial-failure.json", "JobEventsFunction", nil, func(t *testing.T, out []byte) {
			if !strings.Contains(string(out), `"itemIdentifier":"0b6c2f5e-9d1a-4c7b-8e3f-000000000012"`) || strings.Count(string(out), "itemIdentifier") != 1 {
				t.Fatalf("partial batch answered %s", out)
			}
			if got := st.mgmt.sent(t, connID); len(got) != 5 {
				t.Fatalf("pushed %d messages in all, want 5", len(got))
			}
		}},
		{"s3-put.json", "S3UploadFunction", nil, func(t *testing.T, out []byte) {
			if string(out) != `{"published":1}` {
				t.Fatalf("upload answered %s", out)
			}
			got := st.mgmt.sent(t, connID)
			if len(got) != 6 || !strings.Contains(got[5], `"name":"Quarterly Report (2026).pdf"`) {
				t.Fatalf("last push %q", got[len(got)-1])
			}
		}},
		{"s3-put-mixed-keys.json", "S3UploadFunction", nil, func(t *testing.T, out []byte) {
			var res struct {
				Published int
				Skipped   []struct{ Key, Reason string }
			}
			if json.Unmarshal(out, &res) != nil || res.Published != 1 || len(res.Skipped) != 3 {
				t.Fatalf("mixed keys answered %s", out)
			}
		}},
		{"sqs-job-one-client.json", "JobEventsFunction", nil, func(t *testing.T, out []byte) {
			if string(out) != `{"batchItemFailures":[]}` {
				t.Fatalf("one-client batch answered %s", out)
			}
			// connect.json's client is the one the message names.
			got := st.mgmt.sent(t, connID)
			if len(got) != 8 || !strings.Contains(got[7], "FILE_LOCKED") {
				t.Fatalf("pushed %d messages in all, the last %q; want 8, the last FILE_LOCKED", len(got), got[len(got)-1])
			}
		}},
		{"http-publish.json", "PublishFunction", nil, func(t *testing.T, out []byte) {
			resp := apiAnswer(t, "POST", "/v1/publish", out)
			var ans struct {
				Results []struct{ Seq, Delivered int }
			}
			if resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &ans) != nil || len(ans.Results) != 2 ||
				ans.Results[0].Delivered != 1 || ans.Results[1].Delivered != 1 || ans.Results[1].Seq != 0 {
				t.Fatalf("publish answered %s", out)
			}
			got := st.mgmt.sent(t, connID)
			if len(got) != 10 || !strings.Contains(got[8], `"jobId":"job_127"`) || !strings.Contains(got[9], "QUOTA_WARNING") {
				t.Fatalf("pushed %d messages in all, the last %q; want 10, the publish's two last", len(got), got[len(got)-2:])
			}
		}},
		{"http-publish.json", "PublishFunction", nil, func(t *testing.T, out []byte) {
			// The same request again: the keyed message is not pushed again,
			// the client-addressed one (not kept) is.
			resp := apiAnswer(t, "POST", "/v1/publish", out)
			if resp.StatusCode != 200 || !strings.Contains(resp.Body, `"delivered":0,"duplicate":true`) {
				t.Fatalf("the retry answered %s", out)
			}
			if got := st.mgmt.sent(t, connID); len(got) != 11 || !strings.Contains(got[10], "QUOTA_WARNING") {
				t.Fatalf("pushed %d messages in all, want 11", len(got))
			}
		}},
		{"http-connections.json", "PublishFunction", nil, func(t *testing.T, out []byte) {
			resp := apiAnswer(t, "GET", "/v1/owners/acct_42/connections", out)
			if resp.StatusCode != 200 || !strings.Contains(resp.Body, `"count":1,"clients":[{"clientId":"3f0c9a52-6c1e-4e7b-9a43-1d2f6b8e7c10"`) {
				t.Fatalf("presence answered %s", out)
			}
		}},
		{"function-url-publish.json", "PublishFunction", nil, func(t *testing.T, out []byte) {
			// The function URL's event: no route key, the route is the
			// method and path.
			resp := apiAnswer(t, "POST", "/v1/publish", out)
			var ans struct {
				Results []struct{ Seq, Delivered int }
			}
			if resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &ans) != nil || len(ans.Results) != 1 || ans.Results[0].Delivered != 1 || ans.Results[0].Seq == 0 {
				t.Fatalf("publish by the function URL answered %s", out)
			}
			if got := st.mgmt.sent(t, connID); len(got) != 12 || !strings.Contains(got[11], `"jobId":"job_128"`) {
				t.Fatalf("pushed %d messages in all, want 12, the last job_128's progress", len(got))
			}
		}},
		{"disconnect.json", "DisconnectFunction", nil, func(t *testing.T, out []byte) {
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
		name := s.file
		if s.edit != nil {
			name += " (edited)"
		}
		if !t.Run(name, func(t *testing.T) { s.check(t, st.invoke(t, s.function, s.file, s.edit)) }) {
			t.FailNow() // later steps build on this one
		}
	}

	// Each binary wrote the figures of its invocations on stdout, as EMF.
	figures := []struct {
		function string
		figure   metrics.Figure
		value    []string // of its dimension (after its path, for a figure split by path)
		want     float64
	}{
		{"ConnectFunction", metrics.ConnectsAccepted, nil, 1},
		{"ConnectFunction", metrics.ConnectsRefused, []string{"forbidden"}, 1}, // the other site's page
		{"ConnectFunction", metrics.ConnectsRefused, nil, 1},
		// Publishes by function, path and type: each function's by its one path.
		{"JobEventsFunction", metrics.EventsPublished, []string{"queue", "job_progress"}, 2},
		{"JobEventsFunction", metrics.EventsPublished, []string{"queue", "job_complete"}, 2},
		{"JobEventsFunction", metrics.EventsPublished, []string{"queue", "error"}, 2}, // the batch's, and sqs-job-one-client.json's
		{"JobEventsFunction", metrics.EventsPublished, []string{"queue"}, 6},
		{"JobEventsFunction", metrics.Deliveries, nil, 6},
		{"JobEventsFunction", metrics.PushesThrottled, nil, 1},
		{"JobEventsFunction", metrics.PushRetries, nil, 1},
		{"JobEventsFunction", metrics.PushesFailed, nil, 0},
		{"PublishFunction", metrics.EventsPublished, []string{"api", "job_progress"}, 2}, // http-publish.json's, function-url-publish.json's
		{"PublishFunction", metrics.EventsPublished, []string{"api", "error"}, 2},
		{"PublishFunction", metrics.EventsPublished, []string{"api"}, 4},
		{"PublishFunction", metrics.Deliveries, nil, 4},
		{"S3UploadFunction", metrics.EventsPublished, []string{"s3", "file_uploaded"}, 2},
		{"S3UploadFunction", metrics.EventsPublished, []string{"s3"}, 2},
		{"S3UploadFunction", metrics.Deliveries, nil, 2},
		{"DisconnectFunction", metrics.Disconnects, nil, 1},
	}
	for _, f := range figures {
		docs := emftest.Parse(t, st.lambdas[f.function].Output.String())
		if len(docs) == 0 {
			t.Errorf("%s wrote no metrics:\n%s", f.function, st.lambdas[f.function].Output)
			continue
		}
		if docs[0].Namespace != metricsNamespace {
			t.Errorf("%s: namespace %q, want %q", f.function, docs[0].Namespace, metricsNamespace)
		}
		// Under the emulator the function's name is the emulator's.
		series := emftest.Of(docs[0].Dims[metrics.DimFunction], f.figure, f.value...)
		if f.figure.ByPath {
			series = emftest.OfPath(docs[0].Dims[metrics.DimFunction], f.value[0], f.figure, f.value[1:]...)
		}
		emftest.ExpectSums(t, docs, emftest.Want{Series: series, Sum: f.want})
	}
	if docs := emftest.Parse(t, st.lambdas["DefaultFunction"].Output.String()); len(docs) != 0 {
		t.Errorf("DefaultFunction wrote %d metric lines for pings, which move no figure", len(docs))
	}
}

// TestTheJobEventsBinarySendsInvalidRecordsToTheDeadLetterQueue runs the
// built jobevents function with JOB_DEAD_LETTER_QUEUE_URL set and SQS
// pointed at a fake: a record that fails validation goes to the queue with
// its reason and is acknowledged; when the queue refuses it, it is reported
// failed.
func TestTheJobEventsBinarySendsInvalidRecordsToTheDeadLetterQueue(t *testing.T) {
	_, _, env := startBackends(t, "wsnotify-dlq-test")
	fake := &testenv.SQS{}
	sqsServer := httptest.NewServer(fake)
	t.Cleanup(sqsServer.Close)
	queueURL := sqsServer.URL + "/000000000000/wsnotify-job-events-dlq.fifo"
	env = append(env, "JOB_DEAD_LETTER_QUEUE_URL="+queueURL, "AWS_ENDPOINT_URL_SQS="+sqsServer.URL)
	l := testenv.StartLambda(t, testenv.Bootstrap(t, "jobevents"), env...)

	batch := `{"Records":[
		{"messageId":"good","body":"{\"ownerId\":\"acct_42\",\"event\":{\"type\":\"job_complete\",\"jobId\":\"j\",\"status\":\"completed\",\"organized\":1,\"failed\":0}}","attributes":{"MessageGroupId":"j"}},
		{"messageId":"bad","body":"{\"ownerId\":\"acct_42\",\"event\":{\"type\":\"job_started\",\"jobId\":\"j\"}}","attributes":{"MessageGroupId":"j"}}]}`
	invoke := func() string {
		resp, err := http.Post(l.URL, "application/json", strings.NewReader(batch))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return string(out)
	}

	if out := invoke(); out != `{"batchItemFailures":[]}` {
		t.Fatalf("answered %s, want no failures\n%s", out, l.Output)
	}
	got := fake.Received()
	if len(got) != 1 {
		t.Fatalf("the queue got %d messages, want 1\n%s", len(got), l.Output)
	}
	msg, _ := json.Marshal(got[0])
	for _, want := range []string{`"QueueUrl":"` + queueURL + `"`, `"MessageGroupId":"j"`, `"MessageDeduplicationId":"bad"`,
		`job_started`, `unknown type \"job_started\"`} {
		if !strings.Contains(string(msg), want) {
			t.Errorf("dead letter %s lacks %s", msg, want)
		}
	}

	fake.Refuse(http.StatusForbidden)
	if out := invoke(); out != `{"batchItemFailures":[{"itemIdentifier":"bad"}]}` {
		t.Fatalf("with the queue refusing, answered %s\n%s", out, l.Output)
	}
}
