package apigw_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"

	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/push/apigw"
)

// These tests run the real SDK client, through NewClient, against a server
// that answers like the Management API of one stage, to check what the
// function fake cannot: the request's path escaping and signing, error
// deserialization from API Gateway's responses, and the retry policy.

const (
	stage       = "prod"
	region      = "eu-west-1"
	maxAttempts = 3
)

// reply is one Management API response.
type reply struct {
	status    int
	errorType string // x-amzn-ErrorType
	body      string
}

var (
	ok200     = reply{status: http.StatusOK}
	gone410   = reply{http.StatusGone, "GoneException", `{"message":null}`}
	limit429  = reply{http.StatusTooManyRequests, "LimitExceededException", `{"message":"Rate exceeded"}`}
	large413  = reply{http.StatusRequestEntityTooLarge, "PayloadTooLargeException", `{"message":"Message too long"}`}
	forbid403 = reply{http.StatusForbidden, "ForbiddenException", `{"message":"Forbidden"}`}
	error500  = reply{http.StatusInternalServerError, "InternalServerErrorException", `{"message":"Internal server error"}`}
)

// request is what the server saw of one attempt.
type request struct {
	method, uri, host, auth string
	header                  http.Header
	body                    []byte
}

// managementAPI answers like API Gateway's Management API: a connection id
// it has no script for is gone (410); a scripted id gets its replies in
// order, one per attempt, the last one repeating.
type managementAPI struct {
	t       *testing.T
	mu      sync.Mutex
	scripts map[string][]reply
	seen    map[string][]request // by connection id
}

func (m *managementAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, ok := strings.CutPrefix(r.URL.EscapedPath(), "/"+stage+"/@connections/")
	id, err := url.PathUnescape(raw)
	if !ok || err != nil || strings.Contains(id, "/") {
		m.t.Errorf("unexpected request %s %s", r.Method, r.RequestURI)
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	body, _ := io.ReadAll(r.Body)
	m.mu.Lock()
	attempt := len(m.seen[id])
	m.seen[id] = append(m.seen[id], request{method: r.Method, uri: r.RequestURI, host: r.Host, auth: r.Header.Get("Authorization"), header: r.Header.Clone(), body: body})
	script, known := m.scripts[id]
	m.mu.Unlock()

	rep := gone410
	if known {
		rep = script[min(attempt, len(script)-1)]
	}
	if rep.status == http.StatusOK && r.Method == http.MethodGet {
		rep.body = `{"connectedAt":"2025-05-01T10:00:00.000Z","identity":{"sourceIp":"192.0.2.1","userAgent":"node"},"lastActiveAt":"2025-05-01T10:01:00.000Z"}`
	}
	w.Header().Set("x-amzn-RequestId", fmt.Sprintf("req-%d", attempt))
	if rep.errorType != "" {
		w.Header().Set("x-amzn-ErrorType", rep.errorType)
	}
	if rep.body != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(rep.status)
	io.WriteString(w, rep.body)
}

func (m *managementAPI) requests(id string) []request {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen[id]
}

// attempts is an apigw.Metrics that adds up what it is told.
type attempts struct {
	mu                         sync.Mutex
	pushes, throttled, retried int
}

func (a *attempts) PushAttempts(throttled, retried int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pushes++
	a.throttled += throttled
	a.retried += retried
}

func (a *attempts) counts() (pushes, throttled, retried int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pushes, a.throttled, a.retried
}

// newPusher starts a Management API answering scripts and returns a Pusher
// over a NewClient client pointed at it. cfgFns adjust the aws.Config.
func newPusher(t *testing.T, scripts map[string][]reply, cfgFns ...func(*aws.Config)) (*apigw.Pusher, *managementAPI) {
	p, api, _ := newCountingPusher(t, scripts, cfgFns...)
	return p, api
}

// newCountingPusher is newPusher, with the attempts its client reports.
func newCountingPusher(t *testing.T, scripts map[string][]reply, cfgFns ...func(*aws.Config)) (*apigw.Pusher, *managementAPI, *attempts) {
	t.Helper()
	api := &managementAPI{t: t, scripts: scripts, seen: map[string][]request{}}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	cfg := aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	}
	for _, fn := range cfgFns {
		fn(&cfg)
	}
	counted := &attempts{}
	client, err := apigw.NewClient(cfg, srv.URL+"/"+stage, maxAttempts, counted, func(o *retry.StandardOptions) {
		// The real backoff path, capped so that retries take microseconds.
		o.MaxBackoff = time.Millisecond
	})
	if err != nil {
		t.Fatal(err)
	}
	log, _ := testLogger()
	return apigw.New(client, log), api, counted
}

func TestClientPostRequest(t *testing.T) {
	p, api := newPusher(t, map[string][]reply{connID: {ok200}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	data := []byte(`{"type":"job_progress","jobId":"job_123","progress":50}`)
	if err := p.Post(ctx, connID, data); err != nil {
		t.Fatalf("Post: %v", err)
	}
	reqs := api.requests(connID)
	if len(reqs) != 1 {
		t.Fatalf("server saw %d attempts, want 1", len(reqs))
	}
	r := reqs[0]
	if want := "/" + stage + "/@connections/TWegAcC4EowCHnA%3D"; r.method != http.MethodPost || r.uri != want {
		t.Errorf("request %s %s, want POST %s", r.method, r.uri, want)
	}
	if string(r.body) != string(data) {
		t.Errorf("body %q, want the raw message %q", r.body, data)
	}
	// SigV4 for service execute-api in the configured region.
	if want := "/" + region + "/execute-api/aws4_request"; !strings.HasPrefix(r.auth, "AWS4-HMAC-SHA256 ") || !strings.Contains(r.auth, want) {
		t.Errorf("Authorization %q is not SigV4 for %s", r.auth, want)
	}
}

func TestClientPostRetries(t *testing.T) {
	cases := []struct {
		name     string
		script   []reply // nil: the id is unknown
		attempts int
		check    func(t *testing.T, err error)
		// throttled and retried are what the client reports to Metrics.
		throttled, retried int
	}{
		{"delivers to a live connection in one attempt", []reply{ok200}, 1, noError, 0, 0},
		{"answers an unknown connection with ErrGone and does not retry", nil, 1, isErr(notify.ErrGone), 0, 0},
		{"takes a 410 with an empty body for gone too", []reply{{status: http.StatusGone, errorType: "GoneException"}}, 1, isErr(notify.ErrGone), 0, 0},
		{"does not retry a 413", []reply{large413}, 1, isErr(notify.ErrPayloadTooLarge), 0, 0},
		{"does not retry a 403", []reply{forbid403}, 1, isSDK[*types.ForbiddenException], 0, 0},
		{"retries a 429 LimitExceededException up to maxAttempts", []reply{limit429}, maxAttempts, isSDK[*types.LimitExceededException], maxAttempts, maxAttempts - 1},
		{"retries a 429 TooManyRequestsException up to maxAttempts", []reply{{http.StatusTooManyRequests, "TooManyRequestsException", `{"message":"Too Many Requests"}`}}, maxAttempts, isNotSentinel, maxAttempts, maxAttempts - 1},
		{"retries a 429 without an error type up to maxAttempts", []reply{{status: http.StatusTooManyRequests, body: `{"message":"Too Many Requests"}`}}, maxAttempts, isNotSentinel, maxAttempts, maxAttempts - 1},
		{"delivers after a throttled attempt", []reply{limit429, ok200}, 2, noError, 1, 1},
		{"retries a 500 up to maxAttempts", []reply{error500}, maxAttempts, isNotSentinel, 0, maxAttempts - 1},
		{"retries a 502 with a non-JSON body", []reply{{status: http.StatusBadGateway, body: "Bad Gateway"}, ok200}, 2, noError, 0, 1},
		{"delivers after a 500", []reply{error500, ok200}, 2, noError, 0, 1},
		{"answers gone after a 500", []reply{error500, gone410}, 2, isErr(notify.ErrGone), 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			scripts := map[string][]reply{}
			if tc.script != nil {
				scripts[connID] = tc.script
			}
			p, api, counted := newCountingPusher(t, scripts)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := p.Post(ctx, connID, []byte(`{"type":"pong"}`))
			tc.check(t, err)
			if got := len(api.requests(connID)); got != tc.attempts {
				t.Errorf("server saw %d attempts, want %d", got, tc.attempts)
			}
			pushes, throttled, retried := counted.counts()
			if throttled != tc.throttled || retried != tc.retried {
				t.Errorf("reported %d throttled and %d retried attempts, want %d and %d", throttled, retried, tc.throttled, tc.retried)
			}
			if want := min(1, tc.throttled+tc.retried); pushes != want {
				t.Errorf("reported %d pushes, want %d (only a push with a throttled or retried attempt)", pushes, want)
			}
		})
	}
}

func TestClientMaxAttemptsIsAuthoritative(t *testing.T) {
	// As LoadDefaultConfig sets them from AWS_MAX_ATTEMPTS and AWS_RETRY_MODE.
	p, api := newPusher(t, map[string][]reply{connID: {limit429}}, func(c *aws.Config) {
		c.RetryMaxAttempts = 10
		c.RetryMode = aws.RetryModeAdaptive
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := p.Post(ctx, connID, []byte(`{"type":"pong"}`))
	isSDK[*types.LimitExceededException](t, err)
	if got := len(api.requests(connID)); got != maxAttempts {
		t.Errorf("server saw %d attempts, want NewClient's %d", got, maxAttempts)
	}
}

func TestClientThrottlingRetriesAreNotCutShortByARetryQuota(t *testing.T) {
	// A large fan-out under throttling makes many throttled attempts at once.
	// Each push must still get its maxAttempts; the SDK's default retry
	// token bucket (500 tokens, 5 per throttled retry) would refuse retries
	// after about a hundred and fail the rest at once.
	const pushes = 80
	p, api := newPusher(t, map[string][]reply{connID: {limit429}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range pushes {
		err := p.Post(ctx, connID, []byte(`{"type":"pong"}`))
		var limited *types.LimitExceededException
		if !errors.As(err, &limited) {
			t.Fatalf("push %d: error = %v, want LimitExceededException after %d attempts", i, err, maxAttempts)
		}
	}
	if got := len(api.requests(connID)); got != pushes*maxAttempts {
		t.Errorf("server saw %d attempts, want %d x %d", got, pushes, maxAttempts)
	}
}

func TestClientAlive(t *testing.T) {
	cases := []struct {
		name      string
		script    []reply
		alive     bool
		wantErr   bool
		attempts  int
		wantCheck func(t *testing.T, err error)
	}{
		{"reports a live connection alive", []reply{ok200}, true, false, 1, noError},
		{"reports an unknown connection not alive, without error", nil, false, false, 1, noError},
		{"reports an error for a 403", []reply{forbid403}, false, true, 1, isSDK[*types.ForbiddenException]},
		{"retries a throttled check", []reply{limit429, ok200}, true, false, 2, noError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			scripts := map[string][]reply{}
			if tc.script != nil {
				scripts[connID] = tc.script
			}
			p, api, counted := newCountingPusher(t, scripts)
			defer func() {
				// A connect's check is no push: its attempts are not counted.
				if pushes, _, _ := counted.counts(); pushes != 0 {
					t.Errorf("GetConnection reported as %d pushes", pushes)
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			alive, err := p.Alive(ctx, connID)
			tc.wantCheck(t, err)
			if alive != tc.alive {
				t.Errorf("Alive = %v, want %v", alive, tc.alive)
			}
			reqs := api.requests(connID)
			if len(reqs) != tc.attempts {
				t.Fatalf("server saw %d attempts, want %d", len(reqs), tc.attempts)
			}
			if reqs[0].method != http.MethodGet {
				t.Errorf("method %s, want GET", reqs[0].method)
			}
		})
	}
}

func noError(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func isErr(want error) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Fatalf("error = %v, want %v", err, want)
		}
	}
}

func isSDK[E error](t *testing.T, err error) {
	t.Helper()
	var target E
	if !errors.As(err, &target) {
		t.Fatalf("error = %v, want a %T", err, target)
	}
	isNotSentinel(t, err)
}

// isNotSentinel checks that an error callers must not take for gone or too
// large (they would delete the connection or drop the event) is neither.
func isNotSentinel(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if errors.Is(err, notify.ErrGone) || errors.Is(err, notify.ErrPayloadTooLarge) {
		t.Fatalf("error %v taken for a sentinel", err)
	}
}
