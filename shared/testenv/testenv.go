// Package testenv starts the real servers and tools that integration tests
// run against: dynalite (a DynamoDB-compatible server) and Node.js with the
// packages pinned in infra/node. `make test` installs them; a test that finds
// one missing fails with a message saying how to install it, never skips.
package testenv

import (
	"bufio"
	"context"
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
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
	port := FreePort(t)
	cmd := exec.Command(Node(t), bin, "--port", fmt.Sprint(port), "--host", "127.0.0.1",
		"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
	stderr := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start dynalite: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // SIGKILL ends a paused process too
		<-exited
	})
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	WaitHTTP(t, endpoint, 20*time.Second, exited, stderr)
	return &DynaliteServer{Endpoint: endpoint, process: cmd.Process}
}

// WaitHTTP waits until url answers any HTTP response, failing the test after
// timeout or if exited delivers (the server process died first).
func WaitHTTP(t testing.TB, url string, timeout time.Duration, exited <-chan error, output fmt.Stringer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			return
		}
		select {
		case err := <-exited:
			t.Fatalf("testenv: %s exited before answering (%v): %s", url, err, output)
		case <-ctx.Done():
			t.Fatalf("testenv: %s did not answer within %v: %s", url, timeout, output)
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

// BuildBootstrap compiles ./functions/<name> for this machine, as the
// Makefile builds it for Lambda (static, lambda.norpc), and returns its path.
func BuildBootstrap(t testing.TB, dir, name string) string {
	t.Helper()
	out := filepath.Join(dir, name, "bootstrap")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "lambda.norpc", "-o", out, "./functions/"+name)
	cmd.Dir = RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testenv: build %s: %v\n%s", name, err, b)
	}
	return out
}

// Lambda is a bootstrap running under the Runtime Interface Emulator.
type Lambda struct {
	// URL is the emulator's Invoke API endpoint for the function.
	URL string
	// Output collects the emulator's and the function's output.
	Output *SyncBuffer
}

// StartLambda runs bootstrap under the emulator on free loopback ports with
// the given extra environment, and returns once the emulator listens. The
// emulator serves one invocation at a time. It is stopped when the test ends.
func StartLambda(t testing.TB, bootstrap string, env ...string) *Lambda {
	t.Helper()
	port, runtimePort := FreePort(t), FreePort(t)
	cmd := exec.Command(LambdaEmulator(t),
		"--runtime-interface-emulator-address", fmt.Sprintf("127.0.0.1:%d", port),
		"--runtime-api-address", fmt.Sprintf("127.0.0.1:%d", runtimePort),
		bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = append(os.Environ(), env...)
	out := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start emulator: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	WaitHTTP(t, base, 20*time.Second, exited, out)
	return &Lambda{URL: base + "/2015-03-31/functions/function/invocations", Output: out}
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
