package publish_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/wsnotify/wsnotify/clients/go/publish"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// stubAPI plays the publish API's contract over HTTP for the client's
// tests: it checks each request's signature (or bearer token), keeps an
// event per idempotency key, and can fail a request part way.
type stubAPI struct {
	verify func(r *http.Request, body []byte) string // why the request is refused, or ""

	mu       sync.Mutex
	requests int
	bodies   [][]byte
	keys     map[string]publish.Result // owner and key -> the first result
	seq      int64
	failOnce int // if > 0: the next request fails with 500 after publishing this many messages
}

func newStub(verify func(*http.Request, []byte) string) (*stubAPI, *httptest.Server) {
	s := &stubAPI{verify: verify, keys: map[string]publish.Result{}}
	srv := httptest.NewServer(s)
	return s, srv
}

func (s *stubAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	answer := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	if reason := s.verify(r, body); reason != "" {
		answer(http.StatusForbidden, map[string]string{"message": reason})
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/owners/acct_42/connections":
		answer(http.StatusOK, map[string]any{"ownerId": "acct_42", "count": 1,
			"clients": []map[string]string{{"clientId": "tab-1", "connectedAt": "2026-12-07T10:00:00Z"}}})
		return
	case r.Method != http.MethodPost || r.URL.Path != "/v1/publish":
		answer(http.StatusNotFound, map[string]string{"code": "NOT_FOUND", "error": r.Method + " " + r.URL.Path})
		return
	}
	s.bodies = append(s.bodies, body)
	var req struct {
		Messages []struct {
			OwnerID        string          `json:"ownerId"`
			ClientID       string          `json:"clientId"`
			IdempotencyKey string          `json:"idempotencyKey"`
			Event          json.RawMessage `json:"event"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.Messages) == 0 || len(req.Messages) > 100 {
		answer(http.StatusBadRequest, map[string]string{"code": "INVALID_JSON", "error": fmt.Sprint(err)})
		return
	}
	results := []publish.Result{}
	for i, m := range req.Messages {
		if s.failOnce > 0 && i == s.failOnce {
			s.failOnce = 0
			answer(http.StatusInternalServerError, map[string]any{"code": "INTERNAL", "error": "the store failed", "results": results})
			return
		}
		if _, err := event.Parse(m.Event); err != nil {
			answer(http.StatusBadRequest, map[string]string{"code": "INVALID_EVENT", "error": fmt.Sprintf("messages[%d].event: %v", i, err)})
			return
		}
		k := m.OwnerID + "\x00" + m.IdempotencyKey
		if first, ok := s.keys[k]; ok && m.IdempotencyKey != "" {
			first.Duplicate, first.Delivered = true, 0
			results = append(results, first)
			continue
		}
		s.seq++
		res := publish.Result{ID: fmt.Sprintf("evt_%d", s.seq), Seq: s.seq, Delivered: 2}
		s.keys[k] = res
		results = append(results, res)
	}
	answer(http.StatusOK, map[string]any{"results": results})
}

var testCreds = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-1")

// quickRetries is the SDK's standard retryer without its waits.
func quickRetries() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
	})
}

func signedClient(t *testing.T) (*stubAPI, *publish.Client) {
	t.Helper()
	verifier := testenv.SigV4Verifier{AccessKey: "AKIDEXAMPLE", SecretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", Region: "eu-west-1", Service: "execute-api"}
	stub, srv := newStub(verifier.Verify)
	t.Cleanup(srv.Close)
	// As an app loads it, with the SDK's own HTTP client; the environment's
	// profile and credentials play no part.
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("eu-west-1"),
		config.WithCredentialsProvider(testCreds), config.WithRetryer(quickRetries), config.WithSharedConfigProfile(""),
		config.WithSharedConfigFiles([]string{}), config.WithSharedCredentialsFiles([]string{}))
	if err != nil {
		t.Fatal(err)
	}
	return stub, publish.NewClient(srv.URL, cfg)
}

func TestTheSignedClientPublishesABatchAndGetsAResultPerMessage(t *testing.T) {
	stub, c := signedClient(t)
	msgs := []publish.Message{
		{OwnerID: "acct_42", IdempotencyKey: "job_7-1", Event: publish.JobProgress("job_7", 50, 5, 10, "a.jpg")},
		{OwnerID: "acct_42", Event: publish.JobComplete("job_7", event.StatusCompleted, 10, 0)},
	}
	results, err := c.Publish(context.Background(), msgs...)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 || results[0].Seq != 1 || results[1].Seq != 2 || results[0].Delivered != 2 {
		t.Fatalf("results %+v", results)
	}
	var sent struct {
		Messages []map[string]any `json:"messages"`
	}
	if err := json.Unmarshal(stub.bodies[0], &sent); err != nil {
		t.Fatal(err)
	}
	if sent.Messages[0]["idempotencyKey"] != "job_7-1" || sent.Messages[1]["idempotencyKey"] == "" {
		t.Errorf("keys sent: %v, %v", sent.Messages[0]["idempotencyKey"], sent.Messages[1]["idempotencyKey"])
	}
	p, err := c.Connections(context.Background(), "acct_42")
	if err != nil || p.Count != 1 || p.Clients[0].ClientID != "tab-1" || p.Clients[0].ConnectedAt.IsZero() {
		t.Fatalf("presence %+v, %v", p, err)
	}
}

func TestAFailureMidBatchIsRetriedWithTheSameKeysAndPublishesEachMessageOnce(t *testing.T) {
	stub, c := signedClient(t)
	stub.failOnce = 2
	var msgs []publish.Message
	for step := 1; step <= 5; step++ {
		msgs = append(msgs, publish.Message{OwnerID: "acct_42", Event: publish.JobProgress("j", float64(step*20), int64(step), 5, "")})
	}
	results, err := c.Publish(context.Background(), msgs...)
	if err != nil {
		t.Fatal(err)
	}
	if stub.requests != 2 || stub.seq != 5 {
		t.Fatalf("%d requests, %d events published, want 2 and 5", stub.requests, stub.seq)
	}
	for i, r := range results {
		if r.Seq != int64(i+1) || r.Duplicate != (i < 2) {
			t.Errorf("result %d: %+v", i, r)
		}
	}
}

func TestARefusalIsNotRetriedAndNamesItsCode(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"code":"IDEMPOTENCY_CONFLICT","error":"messages[0].idempotencyKey names another event"}`))
	}))
	defer srv.Close()
	c := publish.NewLocalClient(srv.URL, "")
	_, err := c.Publish(context.Background(), publish.Message{OwnerID: "acct_42", IdempotencyKey: "k", Event: publish.Error("", "E", "x")})
	var apiErr *publish.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 409 || apiErr.Code != "IDEMPOTENCY_CONFLICT" || requests.Load() != 1 {
		t.Fatalf("err = %v after %d requests", err, requests.Load())
	}
}

func TestAnInvalidMessageNeverLeavesTheProcess(t *testing.T) {
	stub, c := signedClient(t)
	_, err := c.Publish(context.Background(),
		publish.Message{OwnerID: "acct_42", Event: publish.JobComplete("j", event.StatusCompleted, 1, 0)},
		publish.Message{OwnerID: "acct_42", ClientID: "not a client id", Event: publish.JobComplete("j", event.StatusCompleted, 1, 0)})
	var invalid *publish.InvalidError
	if !errors.As(err, &invalid) || invalid.Index != 1 || stub.requests != 0 {
		t.Fatalf("err = %v, %d requests", err, stub.requests)
	}
}

func TestMoreThanAHundredMessagesGoInSeveralRequests(t *testing.T) {
	stub, c := signedClient(t)
	var msgs []publish.Message
	for i := range 250 {
		msgs = append(msgs, publish.Message{OwnerID: "acct_42", Event: publish.Error(fmt.Sprint("j", i), "E", "x")})
	}
	results, err := c.Publish(context.Background(), msgs...)
	if err != nil || len(results) != 250 || stub.requests != 3 || results[249].Seq != 250 {
		t.Fatalf("%d results, %d requests, err %v", len(results), stub.requests, err)
	}
}

func TestTheLocalClientSendsTheControlTokenAndNoOrigin(t *testing.T) {
	stub, srv := newStub(func(r *http.Request, _ []byte) string {
		if r.Header.Get("Origin") != "" || r.Header.Get("Authorization") != "Bearer control-token-0123456789" {
			return "not the control token"
		}
		return ""
	})
	defer srv.Close()
	c := publish.NewLocalClient(srv.URL, "control-token-0123456789")
	if _, err := c.Publish(context.Background(), publish.Message{OwnerID: "acct_42", Event: publish.Error("", "E", "x")}); err != nil {
		t.Fatal(err)
	}
	wrong := publish.NewLocalClient(srv.URL, "another-token-0123456789")
	_, err := wrong.Publish(context.Background(), publish.Message{OwnerID: "acct_42", Event: publish.Error("", "E", "x")})
	var apiErr *publish.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 403 || stub.requests != 2 {
		t.Fatalf("err = %v, %d requests", err, stub.requests)
	}
}

func TestTheClientHonoursTheContextsDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	c := publish.NewLocalClient(srv.URL, "")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Publish(ctx, publish.Message{OwnerID: "acct_42", Event: publish.Error("", "E", "x")})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
}
