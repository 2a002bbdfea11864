package testenv

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fatalRecorder stands in for a test in startServer: it records the
// failure startServer reports and the clean-ups it registers, so a test can
// check both, and whether the clean-ups end.
type fatalRecorder struct {
	testing.TB
	fatal    string
	cleanups []func()
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fatalRecorder) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

// run calls startServer on f in a goroutine of its own (Fatalf ends it),
// then its clean-ups, each within a deadline.
func (f *fatalRecorder) run(t *testing.T, newCmd func(ports []int) (*exec.Cmd, string), ready func(int) bool) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		startServer(f, "the server", 1, newCmd, ready)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("startServer did not return")
	}
	cleaned := make(chan struct{})
	go func() {
		defer close(cleaned)
		for i := len(f.cleanups) - 1; i >= 0; i-- {
			f.cleanups[i]()
		}
	}()
	select {
	case <-cleaned:
	case <-time.After(10 * time.Second):
		t.Fatal("a clean-up hung: the server's exit was consumed before it waited for it")
	}
}

func TestAServerThatExitsBeforeAnsweringFailsTheTestAndIsCleanedUp(t *testing.T) {
	f := &fatalRecorder{TB: t}
	f.run(t, func(ports []int) (*exec.Cmd, string) {
		return exec.Command("sh", "-c", "echo out of memory; exit 3"), fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	}, nil)
	if !strings.Contains(f.fatal, "exited before answering (exit status 3)") || !strings.Contains(f.fatal, "out of memory") {
		t.Fatalf("failure %q, want the exit and the server's output", f.fatal)
	}
	if len(f.cleanups) != 1 {
		t.Fatalf("%d clean-ups, want 1: an exit for another reason is not retried", len(f.cleanups))
	}
}

func TestAServerWhosePortWasTakenIsStartedAgainOnAnother(t *testing.T) {
	node := Node(t)
	f := &fatalRecorder{TB: t}
	var urls []string
	f.run(t, func(ports []int) (*exec.Cmd, string) {
		url := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		urls = append(urls, url)
		if len(urls) == 1 {
			return exec.Command("sh", "-c", "echo 'listen tcp: bind: address already in use'; exit 1"), url
		}
		return exec.Command(node, "-e", fmt.Sprintf(
			"require('http').createServer((q, r) => r.end('ok')).listen(%d, '127.0.0.1')", ports[0])), url
	}, nil)
	if f.fatal != "" || len(urls) != 2 {
		t.Fatalf("failure %q after %d starts, want none after 2", f.fatal, len(urls))
	}
}

// TestAnotherServerOnATakenPortIsNotTakenForTheServer: the port chosen for
// the server is taken by another that answers 404 where the server would
// answer 200, and the server exits, its port in use. With a readiness check
// of 2xx, startServer does not return the other server as ready (as it did
// for moto, whose table then went to a local mode): it starts the server
// again on fresh ports.
func TestAnotherServerOnATakenPortIsNotTakenForTheServer(t *testing.T) {
	node := Node(t)
	thief := httptest.NewServer(http.NotFoundHandler())
	defer thief.Close()
	f := &fatalRecorder{TB: t}
	var urls []string
	f.run(t, func(ports []int) (*exec.Cmd, string) {
		if len(urls) == 0 {
			urls = append(urls, thief.URL)
			return exec.Command("sh", "-c", "echo 'listen tcp: bind: address already in use'; exit 1"), thief.URL
		}
		url := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		urls = append(urls, url)
		return exec.Command(node, "-e", fmt.Sprintf(
			"require('http').createServer((q, r) => r.end('ok')).listen(%d, '127.0.0.1')", ports[0])), url
	}, answered2xx)
	if f.fatal != "" || len(urls) != 2 {
		t.Fatalf("failure %q after %d starts (%v), want none after 2", f.fatal, len(urls), urls)
	}
}

func TestFreePortsAreDistinct(t *testing.T) {
	seen := map[int]bool{}
	for _, p := range FreePorts(t, 20) {
		if seen[p] {
			t.Fatalf("port %d chosen twice", p)
		}
		seen[p] = true
	}
}
