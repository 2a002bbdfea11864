package publisher_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/clients/go/publish"
	"github.com/wsnotify/wsnotify/infra/local/server"
	"github.com/wsnotify/wsnotify/infra/openapi"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// nodeModules checks the module's own packages are installed.
func nodeModules(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir(t), "node_modules", ".installed")); err != nil {
		t.Fatal("clients/publisher's npm packages are not installed: run `make tools` (make test does)")
	}
}

// answer is what test/publish.mjs prints.
type answer struct {
	OK    json.RawMessage `json:"ok"`
	Error *struct {
		Name, Message, Code string
		Status, Index       int
		Results             []publish.Result
	} `json:"error"`
}

// runPublisher runs test/publish.mjs with cmd and env (added to a clean
// AWS environment: no profile or credentials of the machine's).
func runPublisher(t *testing.T, cmd map[string]any, env ...string) answer {
	t.Helper()
	nodeModules(t)
	js, _ := json.Marshal(cmd)
	c := exec.Command(testenv.Node(t), filepath.Join(dir(t), "test", "publish.mjs"))
	c.Env = append(testenv.UserEnv(
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
		"WSNOTIFY_PUBLISH="+string(js)), env...)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("node test/publish.mjs: %v\n%s", err, stderr.String())
	}
	var a answer
	if err := json.Unmarshal(out, &a); err != nil {
		t.Fatalf("test/publish.mjs printed %s: %v", out, err)
	}
	return a
}

// credentialsEnv are the credentials the default provider chain finds.
var credentialsEnv = []string{"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	"AWS_SESSION_TOKEN=session-token-1", "AWS_REGION=eu-west-1"}

// localMode serves local mode for two owners until the end of the test.
func localMode(t *testing.T) (base string, keys map[string]string) {
	t.Helper()
	return localModeWith(t, "")
}

// localModeWith is localMode with a control token ("" for none).
func localModeWith(t *testing.T, controlToken string) (base string, keys map[string]string) {
	t.Helper()
	keys = map[string]string{"acct_42": "wsn_node_publisher_key_acct_42", "acct_7": "wsn_node_publisher_key_acct_7"}
	srv, err := server.New(server.Config{APIKeys: map[string]string{keys["acct_42"]: "acct_42", keys["acct_7"]: "acct_7"},
		ControlToken: controlToken, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, stop := srv.Start(l, 30*time.Second)
	t.Cleanup(func() { _ = stop() })
	return "http://" + l.Addr().String(), keys
}

func TestWhatTheNodeQueuePublisherSendsReachesTheOwnersClient(t *testing.T) {
	base, keys := localMode(t)
	ws := strings.Replace(base, "http", "ws", 1)
	mine := testenv.ConnectJS(t, ws, keys["acct_42"])
	other := testenv.ConnectJS(t, ws, keys["acct_7"])
	fake := &testenv.SQS{}
	sqs := httptest.NewServer(fake)
	defer sqs.Close()

	messages := []map[string]any{
		{"ownerId": "acct_42", "idempotencyKey": "job_n-1", "event": map[string]any{"type": "job_progress", "jobId": "job_n", "progress": 50, "processedCount": 1, "totalCount": 2}},
		{"ownerId": "acct_42", "event": map[string]any{"type": "error", "jobId": "job_n", "error": "Disk full", "code": "DISK_FULL"}},
		{"ownerId": "acct_42", "event": map[string]any{"type": "job_complete", "jobId": "job_n", "status": "failed", "organized": 1, "failed": 1}},
		{"ownerId": "acct_7", "event": map[string]any{"type": "job_complete", "jobId": "job_m", "status": "completed", "organized": 2, "failed": 0}},
	}
	for i := range 8 { // 12 messages: two SendMessageBatch calls
		messages = append(messages, map[string]any{"ownerId": "acct_42", "clientId": "elsewhere",
			"event": map[string]any{"type": "error", "error": "x", "code": "E" + string(rune('A'+i))}})
	}
	// The SDK for JavaScript sends to the queue URL's host: the fake's.
	a := runPublisher(t, map[string]any{"queueUrl": sqs.URL + "/123456789012/jobs.fifo", "messages": messages},
		append(credentialsEnv, "AWS_ENDPOINT_URL_SQS="+sqs.URL)...)
	if a.Error != nil {
		t.Fatalf("the publisher failed: %+v", a.Error)
	}
	var results []struct{ MessageID, Error string }
	_ = json.Unmarshal(a.OK, &results)
	if len(results) != len(messages) || results[0].MessageID == "" || fake.Batches() != 2 {
		t.Fatalf("results %s, %d batches", a.OK, fake.Batches())
	}
	recs := fake.Records()
	if recs[0].Attributes["MessageGroupId"] != "job_n" ||
		recs[0].Attributes["MessageDeduplicationId"] != publish.DeduplicationID("acct_42", "job_n-1") {
		t.Errorf("the first record's attributes are %v: not the Go publisher's names", recs[0].Attributes)
	}
	for _, batch := range [][]events.SQSMessage{recs[:10], recs[10:]} {
		if out := testenv.InvokeJobEvents(t, base, batch); len(out.BatchItemFailures) != 0 {
			t.Fatalf("failures: %v", out.BatchItemFailures)
		}
	}
	got := mine.Events(t, 3)
	if got[0]["type"] != "job_progress" || got[1]["code"] != "DISK_FULL" || got[2]["status"] != "failed" {
		t.Errorf("acct_42's client got %v", got)
	}
	if theirs := other.Events(t, 1); theirs[0]["jobId"] != "job_m" {
		t.Errorf("acct_7's client got %v", theirs)
	}
}

func TestAnInvalidMessageNeverLeavesTheNodeProcess(t *testing.T) {
	var mu sync.Mutex
	requests := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		mu.Unlock()
	}))
	defer srv.Close()
	bad := []map[string]any{
		{"ownerId": "acct_42", "event": map[string]any{"type": "job_progress", "jobId": "j", "progress": 50, "processedCount": 1, "totalCount": 2}},
		{"ownerId": "acct_42", "event": map[string]any{"type": "job_progress", "jobId": "j", "progress": 150, "processedCount": 1, "totalCount": 2}},
	}
	for _, cmd := range []map[string]any{
		{"endpoint": srv.URL, "messages": bad},
		{"queueUrl": srv.URL + "/q.fifo", "messages": bad},
	} {
		a := runPublisher(t, cmd, append(credentialsEnv, "AWS_ENDPOINT_URL_SQS="+srv.URL)...)
		if a.Error == nil || a.Error.Name != "InvalidMessageError" || a.Error.Index != 1 || !strings.Contains(a.Error.Message, "progress") {
			t.Errorf("%v: %+v", cmd["endpoint"] != nil, a.Error)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if requests != 0 {
		t.Errorf("%d requests sent", requests)
	}
}

// signedStub answers the publish API's routes to requests whose SigV4
// signature verifier accepts, and 403 to the others. With reject, it
// records what that verifier says of every request too.
type signedStub struct {
	verifier   testenv.SigV4Verifier
	reject     *testenv.SigV4Verifier
	mu         sync.Mutex
	refusals   []string
	bodies     [][]byte
	rejectSaid []string
}

func (s *signedStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reject != nil {
		s.rejectSaid = append(s.rejectSaid, s.reject.Verify(r, body))
	}
	if why := s.verifier.Verify(r, body); why != "" {
		s.refusals = append(s.refusals, why)
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": why})
		return
	}
	if r.Method == http.MethodGet {
		_, _ = w.Write([]byte(`{"ownerId":"user@example.com","count":0,"clients":[]}`))
		return
	}
	s.bodies = append(s.bodies, body)
	_, _ = w.Write([]byte(`{"results":[{"id":"evt_1","seq":1,"delivered":1}]}`))
}

// seen returns the refusals and the accepted publish bodies so far.
func (s *signedStub) seen() ([]string, [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.refusals...), append([][]byte(nil), s.bodies...)
}

func TestTheNodeHTTPPublisherSignsWithSigV4FromTheDefaultCredentials(t *testing.T) {
	stub := &signedStub{verifier: testenv.SigV4Verifier{AccessKey: "AKIDEXAMPLE",
		SecretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", Region: "eu-west-1", Service: "execute-api"}}
	srv := httptest.NewServer(stub)
	defer srv.Close()
	msg := []map[string]any{{"ownerId": "acct_42", "event": map[string]any{"type": "job_complete", "jobId": "j", "status": "completed", "organized": 1, "failed": 0}}}
	a := runPublisher(t, map[string]any{"endpoint": srv.URL, "region": "eu-west-1", "messages": msg}, credentialsEnv...)
	refusals, bodies := stub.seen()
	if a.Error != nil || len(refusals) != 0 || len(bodies) != 1 {
		t.Fatalf("error %+v, refusals %v", a.Error, refusals)
	}
	var sent struct{ Messages []map[string]any }
	if err := json.Unmarshal(bodies[0], &sent); err != nil || sent.Messages[0]["idempotencyKey"] == nil {
		t.Errorf("sent %s: no idempotency key", bodies[0])
	}
	// A path with characters SigV4 encodes: '@' is %40 on the wire, %2540 signed.
	if a := runPublisher(t, map[string]any{"endpoint": srv.URL, "region": "eu-west-1", "connections": "user@example.com"}, credentialsEnv...); a.Error != nil {
		refusals, _ := stub.seen()
		t.Errorf("connections: %+v (refusals %v)", a.Error, refusals)
	}
	wrong := []string{"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=another-secret", "AWS_REGION=eu-west-1"}
	if a := runPublisher(t, map[string]any{"endpoint": srv.URL, "region": "eu-west-1", "messages": msg}, wrong...); a.Error == nil || a.Error.Status != 403 {
		t.Errorf("signed with another secret: %+v", a.Error)
	}
}

// flakyAPI fails its first publish request part way, with the results of
// the messages before it, as the API does when its store fails; then it
// answers every message, those it saw before by their keys as duplicates.
type flakyAPI struct {
	mu     sync.Mutex
	bodies []string
	auth   []string         // each request's Authorization header
	keys   map[string]int64 // idempotency key -> seq
}

func (f *flakyAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bodies = append(f.bodies, string(body))
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	var req struct {
		Messages []struct{ IdempotencyKey string } `json:"messages"`
	}
	_ = json.Unmarshal(body, &req)
	if strings.Contains(string(body), `"code":"REFUSE"`) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"code":"INVALID_EVENT","error":"messages[0].event: refused"}`))
		return
	}
	results := []publish.Result{}
	for i, m := range req.Messages {
		if len(f.bodies) == 1 && i == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]any{"code": "INTERNAL", "error": "the store failed", "results": results})
			return
		}
		seq, dup := f.keys[m.IdempotencyKey]
		if !dup {
			seq = int64(len(f.keys) + 1)
			f.keys[m.IdempotencyKey] = seq
		}
		results = append(results, publish.Result{ID: m.IdempotencyKey, Seq: seq, Delivered: 1, Duplicate: dup})
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"results": results})
}

func TestTheNodeHTTPPublisherRetriesAFailureMidBatchWithTheSameKeys(t *testing.T) {
	api := &flakyAPI{keys: map[string]int64{}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	ev := func(code string) map[string]any {
		return map[string]any{"ownerId": "acct_42", "event": map[string]any{"type": "error", "error": "x", "code": code}}
	}
	a := runPublisher(t, map[string]any{"endpoint": srv.URL, "controlToken": "control-token-0123456789", "messages": []any{ev("A"), ev("B"), ev("C")}})
	if a.Error != nil {
		t.Fatalf("%+v", a.Error)
	}
	var results []publish.Result
	_ = json.Unmarshal(a.OK, &results)
	api.mu.Lock()
	bodies, auth := append([]string(nil), api.bodies...), append([]string(nil), api.auth...)
	api.mu.Unlock()
	if auth[0] != "Bearer control-token-0123456789" {
		t.Errorf("Authorization %q: not local mode's control token", auth[0])
	}
	if len(bodies) != 2 || bodies[0] != bodies[1] {
		t.Fatalf("%d requests; the retry is not the same request:\n%s", len(bodies), strings.Join(bodies, "\n"))
	}
	if len(results) != 3 || !results[0].Duplicate || results[1].Duplicate || results[2].Seq != 3 {
		t.Errorf("results %+v", results)
	}

	a = runPublisher(t, map[string]any{"endpoint": srv.URL, "messages": []any{ev("REFUSE")}})
	api.mu.Lock()
	requests := len(api.bodies)
	api.mu.Unlock()
	if a.Error == nil || a.Error.Name != "PublishApiError" || a.Error.Status != 400 || a.Error.Code != "INVALID_EVENT" || requests != 3 {
		t.Errorf("a refusal: %+v after %d requests (want 3: not retried)", a.Error, requests)
	}
}

func TestWhatTheNodeHTTPPublisherPublishesReachesTheOwnersClientWithItsAnswer(t *testing.T) {
	const token = "node-publisher-control-token-01"
	local, keys := localModeWith(t, token)
	ws := strings.Replace(local, "http", "ws", 1)
	mine := testenv.ConnectJS(t, ws, keys["acct_42"])
	other := testenv.ConnectJS(t, ws, keys["acct_7"])
	// The publisher's requests go through a proxy that holds every answer
	// to docs/openapi.yaml.
	base := openapi.Proxy(t, local)
	messages := []map[string]any{
		{"ownerId": "acct_42", "idempotencyKey": "job_n-1", "event": map[string]any{"type": "job_progress", "jobId": "job_n", "progress": 50, "processedCount": 1, "totalCount": 2}},
		{"ownerId": "acct_7", "event": map[string]any{"type": "job_complete", "jobId": "job_m", "status": "completed", "organized": 2, "failed": 0}},
		{"ownerId": "acct_42", "clientId": mine.ClientID, "event": map[string]any{"type": "error", "error": "just you", "code": "HELLO"}},
	}
	a := runPublisher(t, map[string]any{"endpoint": base, "controlToken": token, "messages": messages})
	if a.Error != nil {
		t.Fatalf("%+v", a.Error)
	}
	var results []publish.Result
	_ = json.Unmarshal(a.OK, &results)
	if len(results) != 3 {
		t.Fatalf("results %s", a.OK)
	}
	got := mine.Events(t, 2)
	if got[0]["id"] != results[0].ID || got[0]["seq"] != float64(results[0].Seq) || got[1]["id"] != results[2].ID || results[2].Seq != 0 {
		t.Errorf("acct_42's client got %v for the answers %+v", got, results)
	}
	if theirs := other.Events(t, 1); theirs[0]["id"] != results[1].ID {
		t.Errorf("acct_7's client got %v", theirs)
	}
	again := runPublisher(t, map[string]any{"endpoint": base, "controlToken": token, "messages": messages[:1]})
	var dup []publish.Result
	_ = json.Unmarshal(again.OK, &dup)
	if again.Error != nil || len(dup) != 1 || !dup[0].Duplicate || dup[0].ID != results[0].ID {
		t.Errorf("the keyed message again: %s %+v", again.OK, again.Error)
	}
	who := runPublisher(t, map[string]any{"endpoint": base, "controlToken": token, "connections": "acct_42"})
	var p publish.Presence
	if err := json.Unmarshal(who.OK, &p); err != nil || p.Count != 1 || p.Clients[0].ClientID != mine.ClientID {
		t.Errorf("presence %s %+v", who.OK, who.Error)
	}
	if a := runPublisher(t, map[string]any{"endpoint": base, "messages": messages[:1]}); a.Error == nil || a.Error.Status != 403 {
		t.Errorf("without the control token: %+v", a.Error)
	}
}

func TestAMessageTheQueueRefusesFailsAloneAndHoldsBackItsJobInLaterCalls(t *testing.T) {
	fake := &testenv.SQS{}
	fake.RefuseBodies(`"processedCount":2,`)
	sqs := httptest.NewServer(fake)
	defer sqs.Close()
	var messages []map[string]any
	for step := 1; step <= 12; step++ { // a then b, alternately: steps 1-5 of each in the first call
		for _, job := range []string{"a", "b"} {
			messages = append(messages, map[string]any{"ownerId": "acct_42",
				"event": map[string]any{"type": "job_progress", "jobId": job, "progress": step, "processedCount": step, "totalCount": 12}})
		}
	}
	a := runPublisher(t, map[string]any{"queueUrl": sqs.URL + "/123456789012/jobs.fifo", "messages": messages},
		append(credentialsEnv, "AWS_ENDPOINT_URL_SQS="+sqs.URL)...)
	if a.Error != nil {
		t.Fatalf("%+v", a.Error)
	}
	var results []struct{ MessageID, Error string }
	_ = json.Unmarshal(a.OK, &results)
	for i, r := range results {
		step := i/2 + 1
		switch {
		case step == 2:
			if !strings.Contains(r.Error, "refused it: InvalidMessageContents") {
				t.Errorf("message %d (step 2): %+v", i, r)
			}
		case step > 5:
			if !strings.Contains(r.Error, "not sent") {
				t.Errorf("message %d (step %d), in a call after its job's failure: %+v", i, step, r)
			}
		default:
			if r.MessageID == "" || r.Error != "" {
				t.Errorf("message %d (step %d): %+v", i, step, r)
			}
		}
	}
	if n := len(fake.Received()); n != 8 {
		t.Errorf("%d messages in the queue, want the 8 SQS took in the first call", n)
	}
}
