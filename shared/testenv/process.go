package testenv

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// NodeProcess is a Node.js program a test runs: its standard output line
// by line, its standard input, and its standard error kept for failure
// messages.
type NodeProcess struct {
	Lines  <-chan string // closed when the program has exited (its output ends)
	Stdin  io.WriteCloser
	Stderr *SyncBuffer
}

// StartNode runs node with args, its environment this process's plus env,
// until it exits or the test ends, when it is killed.
func StartNode(t testing.TB, env []string, args ...string) *NodeProcess {
	t.Helper()
	cmd := exec.Command(Node(t), args...)
	cmd.Env = append(os.Environ(), env...)
	p := &NodeProcess{Stderr: &SyncBuffer{}}
	cmd.Stderr = p.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.Stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start node: %v", err)
	}
	lines := Lines(stdout)
	p.Lines = lines
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		for range lines { // read to EOF before Wait closes the pipe
		}
		_ = cmd.Wait()
	})
	return p
}

// RunNodeScript runs one of infra/node's scripts with args to its end and
// returns the lines it printed on standard output (empty ones left out), its
// standard error and its exit code; a script that cannot be run fails the
// test.
func RunNodeScript(t testing.TB, script string, args ...string) (lines []string, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(Node(t), append([]string{filepath.Join(RepoRoot(t), "infra", "node", script)}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		exit, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("testenv: run node %s: %v", script, err)
		}
		code = exit.ExitCode()
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.TrimSpace(line) != "" {
			lines = append(lines, line)
		}
	}
	return lines, errOut.String(), code
}

// Eventually polls cond until it holds, failing the test after timeout.
// It is for state that gives no signal when it changes (a count, a store);
// wait on a channel where there is one.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
