// Package cloudfront_test runs the CloudFront Function of the seed's URL
// (seed-path.js) with Node on CloudFront viewer-request events, and holds
// its client id rule to local mode's: the edge must answer 400 exactly where
// the server would.
package cloudfront_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/local/server"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// stage stands in for the StageName that Fn::Sub fills into the function.
const stage = "prod"

// runScript evaluates the function's file as CloudFront does: no modules,
// handler a global. CloudFront Functions have no module.exports, so the file
// is read as text, its ${StageName} filled in as Fn::Sub does, and run in a
// fresh context. Events come on stdin as a JSON array; the handler's results
// go to stdout.
const runScript = `
const fs = require('fs');
const vm = require('vm');
const [file, stage] = process.argv.slice(1);
const code = fs.readFileSync(file, 'utf8').split('${StageName}').join(stage);
const context = vm.createContext({});
vm.runInContext(code, context, { filename: file });
if (typeof context.handler !== 'function') throw new Error(file + ' defines no handler(event)');
const events = JSON.parse(fs.readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(events.map((e) => context.handler(e))));
`

// value is CloudFront Functions' shape of one query string parameter or
// header: a value, and every value when the name is repeated.
type value struct {
	Value      string  `json:"value"`
	MultiValue []value `json:"multiValue,omitempty"`
}

type request struct {
	Method      string           `json:"method"`
	URI         string           `json:"uri"`
	Querystring map[string]value `json:"querystring"`
	Headers     map[string]value `json:"headers"`
	Cookies     map[string]value `json:"cookies"`
}

type viewerRequest struct {
	Version string `json:"version"`
	Context struct {
		EventType string `json:"eventType"`
	} `json:"context"`
	Viewer struct {
		IP string `json:"ip"`
	} `json:"viewer"`
	Request request `json:"request"`
}

// result is what the handler returned: the request to forward, or a
// response given at the edge (StatusCode set; its headers land in Headers).
type result struct {
	request
	StatusCode        int    `json:"statusCode"`
	StatusDescription string `json:"statusDescription"`
	Body              *body  `json:"body"`
}

// body is a generated response's body in cloudfront-js-2.0's documented
// form: an object with its encoding ("text" or "base64") and its data. (A
// plain string is the form of the 1.0 runtime.)
type body struct {
	Encoding string `json:"encoding"`
	Data     string `json:"data"`
}

// event is a WebSocket handshake as CloudFront hands it to the function:
// the path and query string as the viewer sent them, escapes kept.
func event(uri string, query map[string]value) viewerRequest {
	var e viewerRequest
	e.Version = "1.0"
	e.Context.EventType = "viewer-request"
	e.Viewer.IP = "198.51.100.7"
	if query == nil {
		query = map[string]value{}
	}
	e.Request = request{Method: "GET", URI: uri, Querystring: query, Cookies: map[string]value{}, Headers: map[string]value{
		"host":                  {Value: "d111111abcdef8.cloudfront.net"},
		"upgrade":               {Value: "websocket"},
		"connection":            {Value: "Upgrade"},
		"sec-websocket-key":     {Value: "dGhlIHNhbXBsZSBub25jZQ=="},
		"sec-websocket-version": {Value: "13"},
	}}
	return e
}

// runFunction runs seed-path.js on events with Node.
func runFunction(t *testing.T, events []viewerRequest) []result {
	t.Helper()
	in, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	file := filepath.Join(testenv.RepoRoot(t), "infra", "cloudfront", "seed-path.js")
	cmd := exec.CommandContext(ctx, testenv.Node(t), "-e", runScript, file, stage)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var out []result
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("handler results %q: %v", stdout.String(), err)
	}
	if len(out) != len(events) {
		t.Fatalf("%d results for %d events", len(out), len(events))
	}
	return out
}

const uuid = "3f0c9a52-7d1e-4b8a-9c2f-0e5d6a7b8c9d"

func TestSeedPathRewritesTheSeedsURLToTheStage(t *testing.T) {
	tests := []struct {
		name     string
		uri      string
		query    map[string]value
		clientID string
	}{
		{"a UUID client id with a token", "/api/v1/ws/" + uuid, map[string]value{"token": {Value: "wsn_abc"}}, uuid},
		{"a client id of every allowed character", "/api/v1/ws/Az09._:-", map[string]value{"token": {Value: "t"}}, "Az09._:-"},
		{"a client id of 128 characters", "/api/v1/ws/" + strings.Repeat("c", 128), map[string]value{"token": {Value: "t"}}, strings.Repeat("c", 128)},
		{"a percent-escaped client id, read as the server reads it", "/api/v1/ws/abc%2Ddef%3A1", map[string]value{"token": {Value: "t"}}, "abc-def:1"},
		{"a client_id in the query string, which the path's overrides", "/api/v1/ws/" + uuid,
			map[string]value{"token": {Value: "t"}, "client_id": {Value: "victims-client"}}, uuid},
		{"client_id repeated in the query string", "/api/v1/ws/" + uuid,
			map[string]value{"token": {Value: "t"}, "client_id": {Value: "a", MultiValue: []value{{Value: "a"}, {Value: "b"}}}}, uuid},
		{"no token (the server answers 401)", "/api/v1/ws/" + uuid, nil, uuid},
	}
	var events []viewerRequest
	for _, tt := range tests {
		events = append(events, event(tt.uri, tt.query))
	}
	results := runFunction(t, events)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, sent := results[i], events[i].Request
			if got.StatusCode != 0 {
				t.Fatalf("answered %d %s at the edge, want the request forwarded", got.StatusCode, got.Body)
			}
			if got.URI != "/"+stage {
				t.Errorf("uri = %q, want /%s", got.URI, stage)
			}
			want := map[string]value{"client_id": {Value: tt.clientID}}
			for k, v := range sent.Querystring {
				if k != "client_id" {
					want[k] = v // token and the rest pass untouched
				}
			}
			if !reflect.DeepEqual(got.Querystring, want) {
				t.Errorf("querystring = %+v, want %+v", got.Querystring, want)
			}
			if !reflect.DeepEqual(got.Headers, sent.Headers) || got.Method != "GET" {
				t.Errorf("headers or method changed: %s %+v", got.Method, got.Headers)
			}
		})
	}
}

func TestSeedPathAnswersOtherPathsAndBadClientIDsAtTheEdge(t *testing.T) {
	tests := []struct {
		name, uri string
		status    int
		code      string
	}{
		{"the root", "/", 404, "NOT_FOUND"},
		{"the raw stage path", "/" + stage, 404, "NOT_FOUND"},
		{"another API path", "/api/v1/jobs/123", 404, "NOT_FOUND"},
		{"the prefix without its slash", "/api/v1/ws", 404, "NOT_FOUND"},
		{"the prefix in capitals", "/API/v1/ws/" + uuid, 404, "NOT_FOUND"},
		{"an over-long client id (129)", "/api/v1/ws/" + strings.Repeat("c", 129), 400, "BAD_REQUEST"},
		{"a very long client id", "/api/v1/ws/" + strings.Repeat("c", 4000), 400, "BAD_REQUEST"},
		{"an empty client id", "/api/v1/ws/", 400, "BAD_REQUEST"},
		{"a client id with a slash", "/api/v1/ws/a/b", 400, "BAD_REQUEST"},
		{"a trailing slash", "/api/v1/ws/" + uuid + "/", 400, "BAD_REQUEST"},
		{"an escaped slash", "/api/v1/ws/a%2Fb", 400, "BAD_REQUEST"},
		{"an escaped space", "/api/v1/ws/a%20b", 400, "BAD_REQUEST"},
		{"a broken escape", "/api/v1/ws/a%E0%A4%A", 400, "BAD_REQUEST"},
		{"a lone percent", "/api/v1/ws/100%", 400, "BAD_REQUEST"},
		{"a non-ASCII client id", "/api/v1/ws/caf%C3%A9", 400, "BAD_REQUEST"},
		{"a client id of 129 after unescaping", "/api/v1/ws/" + strings.Repeat("%41", 129), 400, "BAD_REQUEST"},
	}
	var events []viewerRequest
	for _, tt := range tests {
		events = append(events, event(tt.uri, map[string]value{"token": {Value: "t"}}))
	}
	results := runFunction(t, events)
	for i, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			got := results[i]
			if got.StatusCode != tt.status {
				t.Fatalf("status %d (uri %q), want %d", got.StatusCode, got.URI, tt.status)
			}
			if got.Body == nil || got.Body.Encoding != "text" {
				t.Fatalf("body %+v, want cloudfront-js-2.0's {encoding: 'text', data}", got.Body)
			}
			var ev struct{ Type, Error, Code string }
			if err := json.Unmarshal([]byte(got.Body.Data), &ev); err != nil || ev.Type != "error" || ev.Code != tt.code || ev.Error == "" {
				t.Errorf("body data %q, want an error event with code %s", got.Body.Data, tt.code)
			}
		})
	}
}

// TestSeedPathRefusesExactlyWhatLocalModeRefuses connects to local mode on
// the seed's path with each client id, and compares its answer with the
// function's: forwarded where local mode connects, 400 where it refuses.
func TestSeedPathRefusesExactlyWhatLocalModeRefuses(t *testing.T) {
	ids := []string{
		uuid, "Az09._:-", strings.Repeat("c", 128), strings.Repeat("c", 129), "abc%2Ddef", "%41%42",
		// (A broken escape, refused at the edge, is one no Go client sends.)
		"a%2Fb", "a%20b", "caf%C3%A9", "100%25", "a+b", "a~b", "a!b", "a=b", "a,b", "a;b", "a@b",
		"a/b", uuid + "/", "",
	}
	var events []viewerRequest
	for _, id := range ids {
		events = append(events, event("/api/v1/ws/"+id, map[string]value{"token": {Value: "wsn_key"}}))
	}
	edge := runFunction(t, events)

	srv, err := server.New(server.Config{APIKeys: map[string]string{"wsn_key": "acct_42"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	for i, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ws, resp, err := websocket.Dial(ctx, "ws://"+l.Addr().String()+"/api/v1/ws/"+id+"?token=wsn_key", nil)
		cancel()
		local := http.StatusSwitchingProtocols
		if err != nil {
			if resp == nil {
				t.Fatalf("client id %q: %v", id, err)
			}
			local = resp.StatusCode
		} else {
			_ = ws.Close(websocket.StatusNormalClosure, "")
		}
		forwarded := edge[i].StatusCode == 0
		switch {
		case forwarded && local != http.StatusSwitchingProtocols:
			t.Errorf("client id %q: the edge forwards it, local mode answers %d", id, local)
		case !forwarded && (edge[i].StatusCode != http.StatusBadRequest || local != http.StatusBadRequest):
			t.Errorf("client id %q: the edge answers %d, local mode %d; want 400 from both", id, edge[i].StatusCode, local)
		}
	}
}
