package testenv

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// JSClient is clients/js's module running in Node.js (its test harness,
// clients/js/test/harness.mjs, with the ws package), connected: what an
// application using the module sees, line by line.
type JSClient struct {
	// ClientID is the client id the module connected with.
	ClientID string
	p        *NodeProcess
}

// ConnectJS runs the module with url (ws://host:port) and token, and
// waits until it is connected.
func ConnectJS(t testing.TB, url, token string) *JSClient {
	t.Helper()
	opts, _ := json.Marshal(map[string]any{"url": url, "token": token})
	p := StartNode(t, []string{"WSNOTIFY_NODE_MODULES=" + NodeModules(t), "WSNOTIFY_OPTIONS=" + string(opts)},
		filepath.Join(RepoRoot(t), "clients", "js", "test", "harness.mjs"))
	c := &JSClient{p: p}
	c.ClientID = strings.TrimSpace(strings.TrimPrefix(c.next(t, "STATE open "), "STATE open "))
	return c
}

// jsClientWait bounds each wait for the client.
const jsClientWait = 30 * time.Second

// next returns the client's next line starting with prefix, skipping others.
func (c *JSClient) next(t testing.TB, prefix string) string {
	t.Helper()
	deadline := time.After(jsClientWait)
	for {
		select {
		case line, ok := <-c.p.Lines:
			if !ok {
				t.Fatalf("testenv: the client exited waiting for %q: %s", prefix, c.p.Stderr)
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case <-deadline:
			t.Fatalf("testenv: timed out waiting for %q; node stderr: %s", prefix, c.p.Stderr)
		}
	}
}

// Events waits for the application's next n events and returns them.
func (c *JSClient) Events(t testing.TB, n int) []map[string]any {
	t.Helper()
	var evs []map[string]any
	for range n {
		var ev map[string]any
		if err := json.Unmarshal([]byte(strings.TrimPrefix(c.next(t, "EVENT "), "EVENT ")), &ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs
}
