package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wsnotify/wsnotify/shared/testenv"
)

// moduleClient is the client module itself, clients/js/wsnotify.js, run by
// Node.js as an application would run it (clients/js/test/harness.mjs,
// which prints each state the client enters and each event it hands the
// application, one line each). It resumes, orders and de-duplicates on its
// own: what it hands over is what the invariant is checked on.
type moduleClient struct {
	id     string
	stdin  io.WriteCloser
	stderr *testenv.SyncBuffer
	exited chan struct{} // closed when Node has exited

	mu        sync.Mutex
	delivered []chaosEvent // owner-wide events handed over, in order
	errors    []string     // error events handed over (RESUME_GAP, ...)
	opens     int          // connections opened
	changed   chan struct{}
}

// moduleOptions are the client's options beside url, token and clientId:
// the gap wait and the backoff shortened so that a scenario's recovery is
// measured in seconds, not in the defaults' tens of seconds.
var moduleOptions = map[string]any{"gapTimeout": 1000, "minDelay": 100, "maxDelay": 2000}

// startModule starts the client module in Node.js as clientID with token.
func startModule(t *testing.T, addr, clientID, token string) *moduleClient {
	t.Helper()
	opts := map[string]any{"url": "ws://" + addr, "token": token, "clientId": clientID}
	for k, v := range moduleOptions {
		opts[k] = v
	}
	js, _ := json.Marshal(opts)
	harness := filepath.Join(testenv.RepoRoot(t), "clients", "js", "test", "harness.mjs")
	p := testenv.StartNode(t, []string{"WSNOTIFY_NODE_MODULES=" + testenv.NodeModules(t), "WSNOTIFY_OPTIONS=" + string(js)}, harness)
	c := &moduleClient{id: clientID, stdin: p.Stdin, stderr: p.Stderr, exited: make(chan struct{}), changed: make(chan struct{})}
	go c.read(p.Lines)
	return c
}

func (c *moduleClient) read(lines <-chan string) {
	defer close(c.exited)
	for line := range lines {
		kind, rest, _ := strings.Cut(line, " ")
		c.mu.Lock()
		switch kind {
		case "STATE":
			if strings.HasPrefix(rest, "open ") {
				c.opens++
			}
		case "EVENT":
			var ev struct {
				chaosEvent
				Code string `json:"code"`
			}
			switch err := json.Unmarshal([]byte(rest), &ev); {
			case err != nil:
				c.errors = append(c.errors, "not JSON: "+rest)
			case ev.Type == "error":
				c.errors = append(c.errors, ev.Code)
			case ev.Seq > 0:
				c.delivered = append(c.delivered, ev.chaosEvent)
			}
		}
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
	}
}

// waitFor waits until the client has handed over n events, by ctx's deadline.
func (c *moduleClient) waitFor(ctx context.Context, n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.delivered) < n {
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-c.exited:
		case <-ctx.Done():
		}
		c.mu.Lock()
		select {
		case <-c.exited:
			return fmt.Errorf("%s: Node exited after %d of %d events: %s", c.id, len(c.delivered), n, c.stderr)
		default:
		}
		if ctx.Err() != nil {
			var seqs []int64
			for _, e := range c.delivered {
				seqs = append(seqs, e.Seq)
			}
			return fmt.Errorf("%s: %d of %d events handed over by the deadline (seqs %v, errors %v, %d connections opened)", c.id, len(c.delivered), n, seqs, c.errors, c.opens)
		}
	}
	return nil
}

// close closes the client (its connection, with 1000) and waits for Node to
// exit, as it does once the client is closed.
func (c *moduleClient) close(ctx context.Context) error {
	_, _ = io.WriteString(c.stdin, "close\n")
	select {
	case <-c.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: Node did not exit after close: %s", c.id, c.stderr)
	}
}
