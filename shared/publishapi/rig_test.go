package publishapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/infra/openapi"
	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/notify/notifytest"
	"github.com/wsnotify/wsnotify/shared/publishapi"
	"github.com/wsnotify/wsnotify/shared/store"
	"github.com/wsnotify/wsnotify/shared/store/memory"
)

// faultyStore is the memory store whose history fails on chosen calls of
// RecordEvent, as a DynamoDB outage would mid-batch.
type faultyStore struct {
	*memory.Store
	calls  atomic.Int64
	failAt atomic.Int64 // the call (1, 2, …) that fails; 0: none
}

var errStoreDown = errors.New("store unavailable (injected)")

func (s *faultyStore) RecordEvent(ctx context.Context, e store.Event, keep int, now time.Time) (store.Event, bool, error) {
	if n := s.calls.Add(1); n == s.failAt.Load() {
		return store.Event{}, false, errStoreDown
	}
	return s.Store.RecordEvent(ctx, e, keep, now)
}

// rig is one Notifier with its store and recording pusher, and the API over
// it reached through one transport.
type rig struct {
	t     *testing.T
	store *faultyStore
	push  *notifytest.Recorder
	n     *notify.Notifier
	do    func(method, path string, body []byte) (int, []byte)
	conns int
}

// transports are the two ways in to one API: net/http, as local mode
// serves it, and the Lambda handler, as API Gateway's HTTP API calls it.
var transports = []struct {
	name string
	wrap func(t *testing.T, api *publishapi.API) func(method, path string, body []byte) (int, []byte)
}{
	{"net/http", func(t *testing.T, api *publishapi.API) func(string, string, []byte) (int, []byte) {
		mux := http.NewServeMux()
		mux.HandleFunc("POST /v1/publish", api.ServePublish)
		mux.HandleFunc("GET /v1/owners/{ownerId}/connections", api.ServeConnections)
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return func(method, path string, body []byte) (int, []byte) {
			req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusNotFound && ct != "application/json" {
				t.Errorf("%s %s: Content-Type %q", method, path, ct)
			}
			return resp.StatusCode, b
		}
	}},
	{"lambda", func(t *testing.T, api *publishapi.API) func(string, string, []byte) (int, []byte) {
		return func(method, path string, body []byte) (int, []byte) {
			resp, err := api.HandleLambda(context.Background(), LambdaRequest(method, path, body))
			if err != nil {
				t.Fatal(err)
			}
			return resp.StatusCode, []byte(resp.Body)
		}
	}},
	{"function URL", func(t *testing.T, api *publishapi.API) func(string, string, []byte) (int, []byte) {
		return func(method, path string, body []byte) (int, []byte) {
			resp, err := api.HandleLambda(context.Background(), FunctionURLRequest(t, method, path, body))
			if err != nil {
				t.Fatal(err)
			}
			return resp.StatusCode, []byte(resp.Body)
		}
	}},
}

// FunctionURLRequest is the event a Lambda function URL sends for method and
// path: aws-lambda-go's LambdaFunctionURLRequest, as JSON, read as the
// handler reads its event. It names no route ("$default") and no path
// parameter; the path comes raw, percent-encoded as the client sent it.
func FunctionURLRequest(t *testing.T, method, path string, body []byte) events.APIGatewayV2HTTPRequest {
	t.Helper()
	u, err := url.Parse(path)
	if err != nil {
		t.Fatal(err)
	}
	in := events.LambdaFunctionURLRequest{Version: "2.0", RawPath: u.EscapedPath(), RawQueryString: u.RawQuery,
		Headers: map[string]string{"content-type": "application/json"},
		Body:    base64.StdEncoding.EncodeToString(body), IsBase64Encoded: true}
	in.RequestContext.HTTP.Method = method
	in.RequestContext.HTTP.Path = u.Path
	in.RequestContext.Authorizer = &events.LambdaFunctionURLRequestContextAuthorizerDescription{
		IAM: &events.LambdaFunctionURLRequestContextAuthorizerIAMDescription{AccessKey: "AKIDEXAMPLE", AccountID: "123456789012"}}
	raw, err := json.Marshal(map[string]any{"routeKey": "$default"})
	if err != nil {
		t.Fatal(err)
	}
	fields, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out events.APIGatewayV2HTTPRequest
	for _, b := range [][]byte{fields, raw} {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// LambdaRequest is the payload format 2.0 event API Gateway's HTTP API
// sends for method and path; the body goes base64-encoded, as API Gateway
// sends a body it takes for binary.
func LambdaRequest(method, path string, body []byte) events.APIGatewayV2HTTPRequest {
	req := events.APIGatewayV2HTTPRequest{Version: "2.0", RawPath: path,
		Body: base64.StdEncoding.EncodeToString(body), IsBase64Encoded: true}
	req.RequestContext.HTTP.Method = method
	req.RequestContext.HTTP.Path = path
	switch owner, ok := strings.CutPrefix(path, "/v1/owners/"); {
	case method == "POST" && path == "/v1/publish":
		req.RouteKey = publishapi.RoutePublish
	case method == "GET" && ok && strings.HasSuffix(owner, "/connections"):
		req.RouteKey = publishapi.RouteConnections
		req.PathParameters = map[string]string{"ownerId": strings.TrimSuffix(owner, "/connections")}
	default:
		req.RouteKey = "$default"
	}
	return req
}

func newRig(t *testing.T, wrap func(*testing.T, *publishapi.API) func(string, string, []byte) (int, []byte)) *rig {
	s := &faultyStore{Store: memory.New()}
	for _, o := range []string{"acct_a", "acct_b"} {
		if err := s.PutKey(context.Background(), auth.Key{Hash: auth.Hash("key-" + o), OwnerID: o}); err != nil {
			t.Fatal(err)
		}
	}
	p := notifytest.NewRecorder()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n := notify.New(auth.NewAuthenticator(s), s, p, log, notify.Config{ConnectGrace: time.Nanosecond})
	r := &rig{t: t, store: s, push: p, n: n}
	do := wrap(t, publishapi.New(n, log))
	r.do = func(method, path string, body []byte) (int, []byte) {
		t.Helper()
		status, b := do(method, path, body)
		// Every answer is held to docs/openapi.yaml.
		if err := openapi.CheckResponse(method, path, status, b); err != nil {
			t.Errorf("%s %s answered %d %s: %v", method, path, status, b, err)
		}
		return status, b
	}
	return r
}

// connect registers a connection of owner's client and returns its id.
func (r *rig) connect(owner, client string) string {
	r.t.Helper()
	r.conns++
	id := owner + "-conn-" + client
	if _, err := r.n.Connect(context.Background(), notify.ConnectRequest{Token: "key-" + owner, ClientID: client, ConnectionID: id}); err != nil {
		r.t.Fatal(err)
	}
	return id
}

// publish posts body to /v1/publish and decodes the answer.
func (r *rig) publish(body string) (int, answer) {
	r.t.Helper()
	status, b := r.do("POST", "/v1/publish", []byte(body))
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		r.t.Fatalf("answer %s: %v", b, err)
	}
	return status, a
}

type answer struct {
	Results []publishapi.Result `json:"results"`
	Code    string              `json:"code"`
	Error   string              `json:"error"`
}

type presence struct {
	OwnerID string
	Count   int
	Clients []publishapi.Client
}

func (r *rig) presence(owner string) presence {
	r.t.Helper()
	status, b := r.do("GET", "/v1/owners/"+owner+"/connections", nil)
	if status != http.StatusOK {
		r.t.Fatalf("presence of %s: %d %s", owner, status, b)
	}
	var p presence
	if err := json.Unmarshal(b, &p); err != nil {
		r.t.Fatal(err)
	}
	return p
}

// forEach runs test on each transport.
func forEach(t *testing.T, test func(t *testing.T, r *rig)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { test(t, newRig(t, tr.wrap)) })
	}
}

func progress(job string, pct int) string {
	processed := pct
	return `{"type":"job_progress","jobId":"` + job + `","progress":` + itoa(pct) + `,"processedCount":` + itoa(processed) + `,"totalCount":100}`
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
