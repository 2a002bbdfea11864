package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/local/server"
)

// invocation is one call a fakeEndpoint answers: the payload, and the
// WebSocket event it holds if it is one.
type invocation struct {
	w       http.ResponseWriter
	r       *http.Request
	ev      events.APIGatewayWebsocketProxyRequest
	payload []byte
}

// fakeEndpoint is a Lambda Invoke API that answers each invocation with
// answer, and records the events it gets and the most invocations it saw
// at once.
type fakeEndpoint struct {
	answer func(invocation)
	url    string

	mu       sync.Mutex
	events   []events.APIGatewayWebsocketProxyRequest
	inFlight atomic.Int32
	maxSeen  atomic.Int32
}

func newFakeEndpoint(t *testing.T, answer func(invocation)) *fakeEndpoint {
	f := &fakeEndpoint{answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.inFlight.Add(1)
		defer f.inFlight.Add(-1)
		for m := f.maxSeen.Load(); n > m && !f.maxSeen.CompareAndSwap(m, n); m = f.maxSeen.Load() {
		}
		payload, _ := io.ReadAll(r.Body)
		var ev events.APIGatewayWebsocketProxyRequest
		_ = json.Unmarshal(payload, &ev)
		f.mu.Lock()
		f.events = append(f.events, ev)
		f.mu.Unlock()
		f.answer(invocation{w: w, r: r, ev: ev, payload: payload})
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL + "/2015-03-31/functions/function/invocations"
	return f
}

func (f *fakeEndpoint) routeKeys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var keys []string
	for _, ev := range f.events {
		keys = append(keys, ev.RequestContext.RouteKey)
	}
	return keys
}

// proxy answers as a route function does: a proxy response.
func proxy(w http.ResponseWriter, status int, body string) {
	b, _ := json.Marshal(events.APIGatewayProxyResponse{StatusCode: status, Body: body})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8") // as aws-lambda-rie labels it
	_, _ = w.Write(b)
}

// failWithoutHeader answers a function error as aws-lambda-rie does: status
// 200, the error document, no X-Amz-Function-Error.
func failWithoutHeader(w http.ResponseWriter) {
	_, _ = io.WriteString(w, `{"errorMessage":"boom","errorType":"errorString"}`)
}

// routesOn is a Config whose three routes run on endpoint.
func routesOn(endpoint string) server.Config {
	return server.Config{FunctionEndpoints: map[string]string{
		server.ConnectFunction: endpoint, server.DefaultFunction: endpoint, server.DisconnectFunction: endpoint,
	}}
}

func TestRoutesOnAFunctionEndpoint(t *testing.T) {
	t.Parallel()

	t.Run("each route invokes the endpoint with its event and answers with the function's response", func(t *testing.T) {
		t.Parallel()
		fe := newFakeEndpoint(t, func(c invocation) {
			switch c.ev.RequestContext.RouteKey {
			case "$default":
				proxy(c.w, 200, `{"echo":`+c.ev.Body+`}`)
			default:
				proxy(c.w, 200, "")
			}
		})
		h := start(t, routesOn(fe.url))
		c := h.connect(t, "remote", "any-token")
		if err := c.Write(context.Background(), websocket.MessageText, []byte(`{"action":"ping"}`)); err != nil {
			t.Fatal(err)
		}
		if m := readUnchecked(t, c); m["echo"] == nil { // the fake function's answer
			t.Fatalf("got %v, want the function's echo", m)
		}
		if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the disconnect", func() bool { return h.srv.Hub().Len() == 0 })
		if got := strings.Join(fe.routeKeys(), " "); got != "$connect $default $disconnect" {
			t.Fatalf("the endpoint got %s", got)
		}
	})
	t.Run("a $connect the function refuses refuses the handshake with its status", func(t *testing.T) {
		t.Parallel()
		fe := newFakeEndpoint(t, func(c invocation) {
			proxy(c.w, http.StatusUnauthorized, `{"type":"error","error":"no","code":"UNAUTHORIZED"}`)
		})
		h := start(t, routesOn(fe.url))
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if _, resp, err := h.dial(ctx, "c", "k"); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("resp %v err %v; want 401", resp, err)
		}
	})

	failing := []struct {
		name     string
		endpoint func(t *testing.T) string
		cfg      func(server.Config) server.Config
	}{
		{"a function error", func(t *testing.T) string {
			return newFakeEndpoint(t, func(c invocation) {
				failWithoutHeader(c.w)
			}).url
		}, nil},
		{"an endpoint that answers no proxy response", func(t *testing.T) string {
			return newFakeEndpoint(t, func(c invocation) {
				http.Error(c.w, "404 page not found", http.StatusNotFound)
			}).url
		}, nil},
		{"an unreachable endpoint", func(t *testing.T) string {
			srv := httptest.NewServer(http.NotFoundHandler())
			srv.Close() // nothing listens there any more
			return srv.URL + "/2015-03-31/functions/function/invocations"
		}, nil},
		{"an endpoint slower than the route timeout", func(t *testing.T) string {
			return newFakeEndpoint(t, func(c invocation) {
				<-c.r.Context().Done()
			}).url
		}, func(c server.Config) server.Config { c.RouteTimeout = 100 * time.Millisecond; return c }},
	}
	for _, tt := range failing {
		t.Run(tt.name+" on $connect refuses the handshake with 500", func(t *testing.T) {
			t.Parallel()
			cfg := routesOn(tt.endpoint(t))
			if tt.cfg != nil {
				cfg = tt.cfg(cfg)
			}
			h := start(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			if _, resp, err := h.dial(ctx, "c", "k"); err == nil || resp == nil || resp.StatusCode != http.StatusInternalServerError {
				t.Fatalf("resp %v err %v; want 500", resp, err)
			}
		})
	}
	t.Run("a function error on $default answers the client as API Gateway does and keeps the connection", func(t *testing.T) {
		t.Parallel()
		fe := newFakeEndpoint(t, func(c invocation) {
			if c.ev.RequestContext.RouteKey == "$default" {
				failWithoutHeader(c.w)
				return
			}
			proxy(c.w, 200, "")
		})
		h := start(t, routesOn(fe.url))
		c := h.connect(t, "c", "k")
		for range 2 {
			if err := c.Write(context.Background(), websocket.MessageText, []byte(`{"action":"ping"}`)); err != nil {
				t.Fatal(err)
			}
			if m := read(t, c); m["message"] != "Internal server error" || m["connectionId"] == "" || m["requestId"] == "" {
				t.Fatalf("got %v", m)
			}
		}
	})
	t.Run("invocations of one endpoint never overlap", func(t *testing.T) {
		t.Parallel()
		fe := newFakeEndpoint(t, func(c invocation) {
			time.Sleep(2 * time.Millisecond) // the function's work: long enough for invocations to meet if they could
			proxy(c.w, 200, "")
		})
		h := start(t, routesOn(fe.url))
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				c, _, err := h.dial(ctx, "c"+string(rune('a'+i)), "k")
				if err != nil {
					t.Errorf("connect: %v", err)
					return
				}
				_ = c.Close(websocket.StatusNormalClosure, "")
			})
		}
		wg.Wait()
		eventually(t, "every disconnect", func() bool { return h.srv.Hub().Len() == 0 })
		if n := len(fe.routeKeys()); n != 40 || fe.maxSeen.Load() != 1 {
			t.Fatalf("%d invocations, at most %d at once; want 40, one at a time", n, fe.maxSeen.Load())
		}
	})
}

func TestTheInvokeAPIForwardsToFunctionEndpoints(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var forwarded []string
	jobs := newFakeEndpoint(t, func(c invocation) {
		mu.Lock()
		forwarded = append(forwarded, string(c.payload))
		mu.Unlock()
		switch {
		case strings.Contains(string(c.payload), "fail"):
			failWithoutHeader(c.w)
		case strings.Contains(string(c.payload), "missing"):
			http.Error(c.w, "404 page not found", http.StatusNotFound)
		default:
			_, _ = io.WriteString(c.w, `{"batchItemFailures":[{"itemIdentifier":"m7"}]}`)
		}
	})
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	h := start(t, server.Config{
		APIKeys: map[string]string{keyA: ownerA},
		FunctionEndpoints: map[string]string{
			server.JobEventsFunction: jobs.url,
			server.S3UploadFunction:  closed.URL + "/2015-03-31/functions/function/invocations",
			server.DefaultFunction:   jobs.url,
		},
	})

	tests := []struct {
		name, function, payload string
		header                  http.Header
		status                  int
		funcError, errorType    string
		body                    string
	}{
		{name: "the function's answer comes back as it is", function: server.JobEventsFunction, payload: `{"Records":[]}`,
			status: http.StatusOK, body: `{"batchItemFailures":[{"itemIdentifier":"m7"}]}`},
		{name: "a function error comes back with X-Amz-Function-Error, which the emulator leaves out", function: server.JobEventsFunction,
			payload: `{"Records":[],"fail":1}`, status: http.StatusOK, funcError: "Unhandled", body: `{"errorMessage":"boom","errorType":"errorString"}`},
		{name: "an error of the endpoint itself is relayed", function: server.JobEventsFunction, payload: `{"missing":1}`,
			status: http.StatusNotFound, body: "404 page not found\n"},
		{name: "an asynchronous invocation is accepted once the function has run", function: server.JobEventsFunction, payload: `{"Records":[]}`,
			header: http.Header{"X-Amz-Invocation-Type": {"Event"}}, status: http.StatusAccepted},
		{name: "an unreachable endpoint is a ServiceException", function: server.S3UploadFunction, payload: `{"Records":[]}`,
			status: http.StatusBadGateway, errorType: "ServiceException"},
		{name: "a route function is not forwarded: only the WebSocket endpoint invokes it", function: server.DefaultFunction,
			status: http.StatusForbidden, errorType: "AccessDeniedException", body: `lambda:InvokeFunction`,
			payload: `{"requestContext":{"routeKey":"$default","connectionId":"x"},"body":"{\"action\":\"ping\"}"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.invoke(t, tt.function, []byte(tt.payload), tt.header)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || resp.Header.Get("X-Amz-Function-Error") != tt.funcError ||
				resp.Header.Get("x-amzn-ErrorType") != tt.errorType || !strings.Contains(string(body), tt.body) {
				t.Fatalf("got %d, X-Amz-Function-Error %q, x-amzn-ErrorType %q: %s", resp.StatusCode,
					resp.Header.Get("X-Amz-Function-Error"), resp.Header.Get("x-amzn-ErrorType"), body)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(forwarded) != 4 || forwarded[0] != `{"Records":[]}` {
		t.Fatalf("the endpoint got %q; want the 4 payloads unchanged", forwarded)
	}
}

func TestFunctionEndpointsAreChecked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		endpoints map[string]string
		want      string
	}{
		{"an unknown function is refused with the list of functions", map[string]string{"NopeFunction": "http://127.0.0.1:1/x"},
			"ConnectFunction, DefaultFunction, DisconnectFunction, FanoutFunction, JobEventsFunction, PublishFunction, S3UploadFunction"},
		{"a URL that is not http is refused", map[string]string{server.ConnectFunction: "127.0.0.1:9001"}, "not an http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := server.New(server.Config{FunctionEndpoints: tt.endpoints, Logger: testLogger()})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// An invocation whose caller gave up (the function's timeout) keeps its
// endpoint until the endpoint answers it: aws-lambda-rie runs one
// invocation at a time and crashes, for good, when a second one arrives
// while the abandoned one still runs (found by infra/chaos under 2 s of
// DynamoDB latency: the job events function never answered again).
func TestAnInvocationThatTimedOutHoldsItsEndpointUntilItAnswers(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	jobs := newFakeEndpoint(t, func(c invocation) {
		if strings.Contains(string(c.payload), "hold") {
			<-release
		}
		_, _ = io.WriteString(c.w, `{"batchItemFailures":[]}`)
	})
	h := start(t, server.Config{
		APIKeys:           map[string]string{keyA: ownerA},
		FunctionEndpoints: map[string]string{server.JobEventsFunction: jobs.url},
		FunctionTimeouts:  map[string]time.Duration{server.JobEventsFunction: 200 * time.Millisecond},
	})
	defer close(release)
	for _, payload := range []string{`{"Records":[],"hold":1}`, `{"Records":[]}`} {
		resp := h.invoke(t, server.JobEventsFunction, []byte(payload), nil)
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), "Sandbox.Timedout") {
			t.Fatalf("%s: got %d %s, want the timeout: the endpoint still runs the first invocation", payload, resp.StatusCode, body)
		}
	}
	if n := jobs.maxSeen.Load(); n != 1 {
		t.Fatalf("the endpoint ran %d invocations at once, want 1", n)
	}
}
