package handler_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/shared/handler"
)

// connectFrom is a $connect with the given headers, in both of the event's
// header maps unless multi holds the multi-value ones.
func connectFrom(clientID string, headers map[string]string, multi map[string][]string) events.APIGatewayWebsocketProxyRequest {
	if multi == nil && headers != nil {
		multi = map[string][]string{}
		for k, v := range headers {
			multi[k] = []string{v}
		}
	}
	r := events.APIGatewayWebsocketProxyRequest{Headers: headers, MultiValueHeaders: multi,
		QueryStringParameters: map[string]string{"client_id": clientID, "token": sampleKey}}
	r.RequestContext.ConnectionID = "T3JpZ2luVGVzdA0="
	return r
}

func TestConnectRefusesOriginsOffTheAllowList(t *testing.T) {
	origins, err := handler.ParseOrigins(" https://app.example.com , *.Trusted.test")
	if err != nil {
		t.Fatal(err)
	}
	origin := func(v string) map[string]string { return map[string]string{"Origin": v} }
	tests := []struct {
		name    string
		headers map[string]string
		multi   map[string][]string
		allowed bool
	}{
		{"an origin on the list with its scheme", origin("https://app.example.com"), nil, true},
		{"an origin matching a host pattern, any scheme", origin("http://eu.trusted.test"), nil, true},
		{"an origin in capitals", origin("HTTPS://APP.Example.COM"), nil, true},
		{"a lower-case header name", map[string]string{"origin": "https://app.example.com"}, nil, true},
		// Browsers always send Origin; a client that does not is no browser,
		// and could forge any Origin it liked: the key guards it, not the list.
		{"no Origin header (a non-browser client)", map[string]string{"User-Agent": "node"}, nil, true},
		{"an empty Origin header", origin(""), nil, true},
		{"another site", origin("https://evil.example.com"), nil, false},
		{"another site under a lower-case header name", map[string]string{"origin": "https://evil.example.com"}, nil, false},
		{"another site under a capitalised header name", map[string]string{"ORIGIN": "https://evil.example.com"}, nil, false},
		{"another site in the multi-value headers only", nil, map[string][]string{"origin": {"https://evil.example.com"}}, false},
		{"a second Origin naming another site", origin("https://app.example.com"), map[string][]string{"Origin": {"https://app.example.com", "https://evil.example.com"}}, false},
		{"a host pattern without a port, from a port", origin("https://eu.trusted.test:8443"), nil, false},
		{"a listed host under another scheme", origin("http://app.example.com"), nil, false},
		{"a look-alike host", origin("https://app.example.com.evil.test"), nil, false},
		{"the opaque origin of a sandboxed or file:// page", origin("null"), nil, false},
	}
	for _, tt := range tests {
		verdict := "is refused with 403 before the key or the store is read"
		if tt.allowed {
			verdict = "connects"
		}
		t.Run(tt.name+" "+verdict, func(t *testing.T) {
			e := newEnv(t)
			resp, err := handler.NewConnect(e.n, e.log, origins).Handle(context.Background(), connectFrom("tab-1", tt.headers, tt.multi))
			if err != nil {
				t.Fatal(err)
			}
			if tt.allowed {
				if resp.StatusCode != 200 || e.store.Len() != 1 {
					t.Fatalf("status %d (%s), %d records; want 200 and the record", resp.StatusCode, resp.Body, e.store.Len())
				}
				return
			}
			want := `{"type":"error","error":"this page's origin is not allowed to connect","code":"FORBIDDEN"}`
			if resp.StatusCode != 403 || resp.Body != want || resp.Headers["Content-Type"] != "application/json" {
				t.Fatalf("answer %d %v %s, want 403 %s", resp.StatusCode, resp.Headers, resp.Body, want)
			}
			if e.store.Len() != 0 {
				t.Error("a record was stored")
			}
			if !strings.Contains(e.logs.String(), `"origin":"`) || strings.Contains(e.logs.String(), sampleKey) {
				t.Errorf("the refusal is not logged with its origin, or the key is: %s", e.logs)
			}
		})
	}
	t.Run("without a list every origin connects, as on API Gateway", func(t *testing.T) {
		e := newEnv(t)
		resp, _ := handler.NewConnect(e.n, e.log, handler.Origins{}).Handle(context.Background(), connectFrom("tab-1", origin("https://evil.example.com"), nil))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d (%s)", resp.StatusCode, resp.Body)
		}
	})
}

func TestParseOrigins(t *testing.T) {
	for _, list := range []string{"", "  ", "https://app.example.com", "a.example.com:8443, https://*.b.example.com,localhost:*"} {
		t.Run("accepts "+strings.TrimSpace(list+" (empty: any origin)"), func(t *testing.T) {
			if _, err := handler.ParseOrigins(list); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, tt := range []struct{ list, want string }{
		{"https://a.example.com,,https://b.example.com", `origin pattern "" is empty`},
		{"https://a.example.com,", `origin pattern "" is empty`},
		{"https://[app.example.com", `origin pattern "https://[app.example.com": syntax error in pattern`},
		{"https://app.example.com/", `origin pattern "https://app.example.com/": want [scheme://]host[:port], with no path`},
		{"https://", `origin pattern "https://": want [scheme://]host[:port]`},
		{"://app.example.com", `origin pattern "://app.example.com": the scheme is empty`},
	} {
		t.Run("refuses "+tt.list, func(t *testing.T) {
			if _, err := handler.ParseOrigins(tt.list); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
