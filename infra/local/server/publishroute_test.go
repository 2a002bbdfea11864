package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/infra/local/server"
	"github.com/wsnotify/wsnotify/shared/metrics"
	"github.com/wsnotify/wsnotify/shared/metrics/prom"
)

// TestThePublishAPIInvokesPublishFunctionAtItsEndpoint runs PublishFunction
// on a function endpoint: local mode's two publish API routes invoke it with
// the HTTP API's event (payload format 2.0) and answer with its response, as
// the cloud's HTTP API does; its failures are answered as the HTTP API
// answers them. Nothing is published in process.
func TestThePublishAPIInvokesPublishFunctionAtItsEndpoint(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []events.APIGatewayV2HTTPRequest
	fn := newFakeEndpoint(t, func(c invocation) {
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(c.payload, &ev); err != nil {
			t.Errorf("the function got %s: %v", c.payload, err)
		}
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
		switch {
		case strings.Contains(ev.Body, "crash"):
			failWithoutHeader(c.w)
		case strings.Contains(ev.Body, "garbage"):
			_, _ = io.WriteString(c.w, `"not a response"`)
		default:
			b, _ := json.Marshal(events.APIGatewayV2HTTPResponse{StatusCode: http.StatusConflict,
				Headers: map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"},
				Body:    `{"code":"IDEMPOTENCY_CONFLICT","error":"from the function"}`})
			_, _ = c.w.Write(b)
		}
	})
	const token = controlToken
	cfg := twoOwners()
	cfg.ControlToken = token
	cfg.FunctionEndpoints = map[string]string{server.PublishFunction: fn.url}
	h := start(t, cfg)
	bearer := http.Header{"Authorization": {"Bearer " + token}, "X-Trace": {"a", "b"}}

	body := envelope(ownerA, "", seedJobComplete)
	req, _ := http.NewRequest(http.MethodPost, h.base+"/v1/publish?dry=1", strings.NewReader(body))
	req.Header = bearer.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-store" ||
		string(answer) != `{"code":"IDEMPOTENCY_CONFLICT","error":"from the function"}` {
		t.Fatalf("POST /v1/publish answered %d %v %s, want the function's 409 and headers", resp.StatusCode, resp.Header, answer)
	}
	if status, _, answer := h.post(t, http.MethodGet, "/v1/owners/"+ownerA+"/connections", "", "", bearer); status != http.StatusConflict {
		t.Fatalf("GET connections answered %d %s, want the function's 409", status, answer)
	}
	mu.Lock()
	if len(got) != 2 {
		t.Fatalf("the function was invoked %d times, want 2", len(got))
	}
	pub, pres := got[0], got[1]
	mu.Unlock()
	if pub.Version != "2.0" || pub.RouteKey != "POST /v1/publish" || pub.RequestContext.RouteKey != pub.RouteKey ||
		pub.RawPath != "/v1/publish" || pub.RawQueryString != "dry=1" || pub.Body != body || pub.IsBase64Encoded ||
		pub.RequestContext.HTTP.Method != http.MethodPost || pub.RequestContext.HTTP.Path != "/v1/publish" ||
		pub.RequestContext.Stage != "$default" || pub.RequestContext.HTTP.SourceIP != "127.0.0.1" || pub.Headers["x-trace"] != "a,b" {
		t.Errorf("the publish event: %+v", pub)
	}
	if pres.RouteKey != "GET /v1/owners/{ownerId}/connections" || pres.PathParameters["ownerId"] != ownerA || pres.Body != "" {
		t.Errorf("the presence event: %+v", pres)
	}
	for _, ev := range got {
		raw, _ := json.Marshal(ev)
		if strings.Contains(string(raw), token) {
			t.Errorf("the control token reached the function: %s", raw)
		}
	}

	// The function's failures, as the HTTP API answers them.
	for _, c := range []struct{ body, want string }{
		{`{"crash":1}`, `{"message":"Internal Server Error"}`},
		{`{"garbage":1}`, `{"message":"Internal Server Error"}`},
	} {
		if status, _, answer := h.post(t, http.MethodPost, "/v1/publish", c.body, "", bearer); status != http.StatusInternalServerError || answer != c.want {
			t.Errorf("%s answered %d %s, want 500 %s", c.body, status, answer, c.want)
		}
	}
	// The control plane's rules still come first: no token, no invocation.
	if status, _, _ := h.post(t, http.MethodPost, "/v1/publish", body, "", nil); status != http.StatusForbidden {
		t.Errorf("without the control token: %d, want 403", status)
	}
	mu.Lock()
	invoked := len(got)
	mu.Unlock()
	if invoked != 4 {
		t.Errorf("the function was invoked %d times, want 4: a refused request must not reach it", invoked)
	}
	// In the function, not here: local mode counted no publish.
	status, _, scraped := h.post(t, http.MethodGet, "/metrics", "", "", bearer)
	s, err := prom.ParseText(strings.NewReader(scraped))
	if status != http.StatusOK || err != nil {
		t.Fatalf("GET /metrics: %d %v", status, err)
	}
	if s.Get(metrics.EventsPublished) != 0 {
		t.Errorf("local mode published %v events itself", s.Get(metrics.EventsPublished))
	}
}

func TestThePublishAPIAnswersAnUnreachablePublishFunctionAs500(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	cfg := twoOwners()
	cfg.FunctionEndpoints = map[string]string{server.PublishFunction: closed.URL + "/2015-03-31/functions/function/invocations"}
	h := start(t, cfg)
	if status, _, answer := h.post(t, http.MethodPost, "/v1/publish", envelope(ownerA, "", seedJobComplete), "", nil); status != http.StatusInternalServerError ||
		answer != `{"message":"Internal Server Error"}` {
		t.Fatalf("answered %d %s, want 500", status, answer)
	}
}
