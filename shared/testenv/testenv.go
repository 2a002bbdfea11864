// Package testenv starts the real servers and tools that integration tests
// run against: dynalite (a DynamoDB-compatible server) and Node.js with the
// packages pinned in infra/node. `make test` installs them; a test that finds
// one missing fails with a message saying how to install it, never skips.
package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RepoRoot returns the module root (the folder holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testenv: cannot locate source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// NodeModules returns infra/node/node_modules, failing the test if the
// packages are not installed.
func NodeModules(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(RepoRoot(t), "infra", "node", "node_modules")
	if _, err := os.Stat(filepath.Join(dir, "ws", "package.json")); err != nil {
		t.Fatalf("testenv: Node packages are not installed in %s: run `make test` (it runs `npm ci` in infra/node)", dir)
	}
	return dir
}

// Node returns the path of the node binary, failing the test if there is none.
func Node(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("testenv: node is not on PATH: install Node.js 20 or later (see README, Set-up)")
	}
	return p
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// FreePorts returns n distinct loopback TCP ports that were free a moment
// ago: all are held open until each is chosen, so none is chosen twice.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testenv: free port: %v", err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// Dynalite starts a fresh in-memory dynalite on a free loopback port and
// returns its endpoint URL. It is stopped when the test ends.
func Dynalite(t testing.TB) string {
	t.Helper()
	return StartDynalite(t).Endpoint
}

// DynaliteServer is a running dynalite process.
type DynaliteServer struct {
	// Endpoint is its URL, http://127.0.0.1:port.
	Endpoint string
	process  *os.Process
}

// Pause stops the process (SIGSTOP): it keeps accepting connections, in the
// kernel's backlog, and answers nothing, as a wedged DynamoDB endpoint does.
func (d *DynaliteServer) Pause(t testing.TB) {
	t.Helper()
	if err := d.process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("testenv: pause dynalite: %v", err)
	}
}

// Resume continues a paused process (SIGCONT).
func (d *DynaliteServer) Resume(t testing.TB) {
	t.Helper()
	if err := d.process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("testenv: resume dynalite: %v", err)
	}
}

// StartDynalite starts a fresh in-memory dynalite on a free loopback port,
// stopped when the test ends.
func StartDynalite(t testing.TB) *DynaliteServer {
	t.Helper()
	bin := filepath.Join(NodeModules(t), ".bin", "dynalite")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("testenv: dynalite is not installed at %s: run `make test` (it runs `npm ci` in infra/node)", bin)
	}
	node := Node(t)
	var endpoint string
	srv, _ := startServer(t, "dynalite", 1, func(ports []int) (*exec.Cmd, string) {
		endpoint = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		return exec.Command(node, bin, "--port", fmt.Sprint(ports[0]), "--host", "127.0.0.1",
			"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"), endpoint
	}, nil)
	return &DynaliteServer{Endpoint: endpoint, process: srv.Process}
}

// StartServer starts the server newCmd makes for nports free loopback
// ports, as the starters here do (see startServer), for a server of a
// test's own: it returns once the URL newCmd names answers with a 2xx
// status (anything else may be another server on a port taken meanwhile),
// and kills the server's process group when the test ends.
func StartServer(t testing.TB, what string, nports int, newCmd func(ports []int) (*exec.Cmd, string)) (*exec.Cmd, *SyncBuffer) {
	t.Helper()
	return startServer(t, what, nports, newCmd, answered2xx)
}

// answered2xx is a readiness check for a URL only the server started
// answers with success: another server that took its port in the meantime
// answers 404 there, and is not mistaken for it.
func answered2xx(status int) bool { return status >= 200 && status < 300 }

// startAttempts bounds how often startServer chooses ports afresh.
const startAttempts = 3

// startServer starts the server newCmd makes for nports free loopback ports
// and returns once the URL newCmd names answers with a status ready accepts
// (any status, when ready is nil). The
// server runs in a process group of its own, so that what it starts (the
// emulator's bootstrap) is killed with it when the test ends. A port can be
// taken by another test between FreePorts choosing it and the server
// binding it: a server that exits saying so is started again on fresh
// ports. Any other exit before answering, or no answer within 20 s, fails
// the test with the server's output.
func startServer(t testing.TB, what string, nports int, newCmd func(ports []int) (*exec.Cmd, string), ready func(status int) bool) (*exec.Cmd, *SyncBuffer) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		cmd, url := newCmd(FreePorts(t, nports))
		out := &SyncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.WaitDelay = 5 * time.Second // a child holding the output open does not hold Wait
		if err := cmd.Start(); err != nil {
			t.Fatalf("testenv: start %s: %v", what, err)
		}
		exited := make(chan struct{}) // closed once it has exited: every reader sees it
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // SIGKILL ends a paused process too
			<-exited
		})
		err := waitHTTP(url, 20*time.Second, exited, ready)
		if err == nil {
			return cmd, out
		}
		if err == errExited && attempt < startAttempts && portTaken(out.String()) {
			continue
		}
		if err == errExited {
			err = fmt.Errorf("exited before answering (%v)", waitErr)
		}
		t.Fatalf("testenv: %s at %s: %v: %s", what, url, err, out)
	}
}

// portTaken reports whether a server's output says its port was in use.
func portTaken(output string) bool {
	// Go and Node say "address already in use"; Python "Address already in use".
	return strings.Contains(strings.ToLower(output), "address already in use") || strings.Contains(output, "EADDRINUSE")
}

// errExited is waitHTTP's error for a server that exited before answering.
var errExited = errors.New("exited before answering")

// waitHTTP waits until url answers with a status ready accepts (any, when
// ready is nil), for at most timeout or until exited is closed (the server
// process ended first).
func waitHTTP(url string, timeout time.Duration, exited <-chan struct{}, ready func(status int) bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if ready == nil || ready(resp.StatusCode) {
				return nil
			}
		}
		select {
		case <-exited:
			return errExited
		case <-ctx.Done():
			return fmt.Errorf("no answer within %v", timeout)
		case <-tick.C:
		}
	}
}

// Lines delivers the lines a reader produces on a channel, closed at EOF.
func Lines(r interface{ Read([]byte) (int, error) }) <-chan string {
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

// LambdaEmulator returns the path of aws-lambda-rie, which `make test`
// installs into .tools/bin, failing the test if it is missing.
func LambdaEmulator(t testing.TB) string {
	t.Helper()
	p := filepath.Join(RepoRoot(t), ".tools", "bin", "aws-lambda-rie")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("testenv: the Lambda Runtime Interface Emulator is not installed at %s: run `make test` (target tools)", p)
	}
	return p
}

// Lambda is a bootstrap running under the Runtime Interface Emulator.
type Lambda struct {
	// URL is the emulator's Invoke API endpoint for the function.
	URL string
	// Output collects the emulator's and the function's output.
	Output *SyncBuffer
	cmd    *exec.Cmd
}

// Stop kills the emulator and the bootstrap it runs (its process group)
// before the test ends, as a crash would.
func (l *Lambda) Stop() { _ = syscall.Kill(-l.cmd.Process.Pid, syscall.SIGKILL) }

// Pid returns the emulator's process id; the bootstrap is its child.
func (l *Lambda) Pid() int { return l.cmd.Process.Pid }

// StartLambda runs bootstrap under the emulator on free loopback ports with
// the given extra environment, and returns once the emulator listens. The
// emulator serves one invocation at a time. It is stopped when the test ends.
func StartLambda(t testing.TB, bootstrap string, env ...string) *Lambda {
	t.Helper()
	emulator := LambdaEmulator(t)
	var base string
	cmd, out := startServer(t, "the Lambda emulator", 2, func(ports []int) (*exec.Cmd, string) {
		cmd := exec.Command(emulator,
			"--runtime-interface-emulator-address", fmt.Sprintf("127.0.0.1:%d", ports[0]),
			"--runtime-api-address", fmt.Sprintf("127.0.0.1:%d", ports[1]),
			bootstrap)
		cmd.Dir = filepath.Dir(bootstrap)
		cmd.Env = append(os.Environ(), env...)
		base = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		return cmd, base
	}, nil)
	return &Lambda{URL: base + "/2015-03-31/functions/function/invocations", Output: out, cmd: cmd}
}

// UserEnv returns this process's environment as a user's shell would have
// it, followed by extra: without WSNOTIFY_ variables, which would configure
// local mode behind the test's back, and without the variables through which
// a make running the tests hands its jobserver to the makes below it. An
// entry of extra overrides one of the environment (os/exec keeps the last).
func UserEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "WSNOTIFY_"), name == "MAKEFLAGS", name == "MFLAGS", name == "MAKELEVEL":
		default:
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// SyncBuffer is a strings.Builder safe for concurrent writes and reads.
// WaitFor waits for what is written.
type SyncBuffer struct {
	mu      sync.Mutex
	b       strings.Builder
	written chan struct{} // closed by the next Write; nil: nobody waits
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written != nil {
		close(s.written)
		s.written = nil
	}
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitFor waits until match holds of what was written so far, checking
// again after each Write, and returns that text and true. It gives up,
// returning the text and false, when timeout has passed or stop (if not
// nil) is closed.
func (s *SyncBuffer) WaitFor(timeout time.Duration, stop <-chan struct{}, match func(text string) bool) (string, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		text, written := s.next()
		if match(text) {
			return text, true
		}
		select {
		case <-written:
		case <-deadline.C:
			return text, false
		case <-stop:
			return text, false
		}
	}
}

// next returns what was written so far and a channel the next Write closes.
func (s *SyncBuffer) next() (string, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written == nil {
		s.written = make(chan struct{})
	}
	return s.b.String(), s.written
}
