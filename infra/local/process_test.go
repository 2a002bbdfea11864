package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/infra/local/server"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// processWait bounds every wait on local mode in these tests.
const processWait = 20 * time.Second

// bannerPrefix starts the first line local mode prints; the address follows.
const bannerPrefix = "wsnotify local mode on http://"

// localModeProcess is the built command running as a child process.
type localModeProcess struct {
	cmd    *exec.Cmd
	addr   string              // host:port it listens on
	stdout *testenv.SyncBuffer // the banner
	stderr *testenv.SyncBuffer // every log line
	done   chan struct{}       // closed once the process has ended
	err    error               // cmd.Wait's result, set before done closes
}

// startLocalModeProcess runs bin on a free port with env added to an
// environment cleared of WSNOTIFY_ variables, and waits for its banner.
// It is killed when the test ends, if it is still running.
func startLocalModeProcess(t *testing.T, bin string, env []string, args ...string) *localModeProcess {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--addr", "127.0.0.1:0"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WSNOTIFY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	p := &localModeProcess{cmd: cmd, stdout: &testenv.SyncBuffer{}, stderr: &testenv.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start local mode: %v", err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})

	banner, ok := p.stdout.WaitFor(processWait, p.done, func(out string) bool {
		line, _, complete := strings.Cut(out, "\n")
		return complete && strings.HasPrefix(line, bannerPrefix)
	})
	if !ok {
		select {
		case <-p.done:
			t.Fatalf("local mode exited before its banner (%v): %s", p.err, p.stderr)
		default:
			t.Fatalf("local mode printed no banner: %s", p.stderr)
		}
	}
	line, _, _ := strings.Cut(banner, "\n")
	p.addr = strings.TrimPrefix(line, bannerPrefix)
	return p
}

// waitExit waits for the process to end and returns its exit code.
func (p *localModeProcess) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		var exit *exec.ExitError
		if p.err != nil && !errors.As(p.err, &exit) {
			t.Fatalf("wait: %v", p.err)
		}
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(processWait):
		t.Fatalf("local mode did not exit; log:\n%s", p.stderr)
		return -1
	}
}

// localModeRun is run() going in this process.
type localModeRun struct {
	addr   string
	srv    *server.Server
	stdout *testenv.SyncBuffer
	logs   *testenv.SyncBuffer // text log at debug level: everything run logs
	stop   func() error        // cancels run's context and returns run's error
}

// runLocalMode starts local mode as run does, with args (after --addr
// 127.0.0.1:0) and env as its only environment, logging at debug level as
// text into logs; stop ends it as a signal would.
func runLocalMode(t *testing.T, env map[string]string, args ...string) *localModeRun {
	t.Helper()
	return runLocalModeOn(t, nil, env, append([]string{"--addr", "127.0.0.1:0"}, args...)...)
}

// startLocalMode runs local mode with args, as `go run ./infra/local` does,
// until the test ends, and returns the address it listens on.
func startLocalMode(t *testing.T, args ...string) string {
	t.Helper()
	return runLocalModeOn(t, nil, nil, args...).addr
}

// runLocalModeOn is runLocalMode with args as they are, on l, open on
// --addr's address (nil: local mode listens itself).
func runLocalModeOn(t *testing.T, l net.Listener, env map[string]string, args ...string) *localModeRun {
	t.Helper()
	r := &localModeRun{stdout: &testenv.SyncBuffer{}, logs: &testenv.SyncBuffer{}}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(r.logs, verboseLog()), &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	m, err := startOn(ctx, l, args, envOf(env), r.stdout, log)
	if err != nil {
		cancel()
		if l != nil {
			l.Close()
		}
		t.Fatalf("start local mode: %v", err)
	}
	r.srv, r.addr = m.srv, m.addr
	done := make(chan error, 1)
	go func() { done <- m.wait(ctx) }()
	r.stop = sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return r
}

// verboseLog is where logs are copied with -v: stderr, else nowhere.
func verboseLog() io.Writer {
	if testing.Verbose() {
		return os.Stderr
	}
	return io.Discard
}

// connectionIDPattern finds a connection id in a text log line.
var connectionIDPattern = regexp.MustCompile(`connectionId="?([A-Za-z0-9+/]{15}=)"?`)

// loggedConnectionID returns the connection id that the log's "connected"
// line gives owner's clientID, or "" if there is none yet.
func loggedConnectionID(log, owner, clientID string) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "msg=connected ") && strings.Contains(line, "owner="+owner+" ") &&
			strings.Contains(line, "clientId="+clientID+" ") {
			if m := connectionIDPattern.FindStringSubmatch(line); m != nil {
				return m[1]
			}
		}
	}
	return ""
}

// waitLogged waits until log has a line containing every one of parts.
func waitLogged(t *testing.T, log *testenv.SyncBuffer, parts ...string) string {
	t.Helper()
	var found string
	text, ok := log.WaitFor(processWait, nil, func(text string) bool {
		for line := range strings.SplitSeq(text, "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				found = line
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("no log line with %q in:\n%s", parts, text)
	}
	return found
}

// dialLocal connects to local mode at addr as client clientID with token.
func dialLocal(t *testing.T, addr, clientID, token string) *asyncapi.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), processWait)
	defer cancel()
	c, resp, err := asyncapi.Dial(ctx, "ws://"+addr+"/api/v1/ws/"+clientID+"?token="+token, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("connect %s: status %d: %v", clientID, status, err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// closeCode reads c until it closes and returns the close status it got.
func closeCode(ctx context.Context, c *asyncapi.Conn) (websocket.CloseError, error) {
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return ce, nil
		}
		return websocket.CloseError{}, err
	}
}
