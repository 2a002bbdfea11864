// Package emulator_test runs infra/emulator/run.sh, local mode in front of
// the Lambda binaries, as a user would, and checks that it leaves nothing
// running behind it, however it ends.
package emulator_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/shared/metrics"
	"github.com/wsnotify/wsnotify/shared/metrics/emf/emftest"
	"github.com/wsnotify/wsnotify/shared/metrics/prom"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// firstBuild bounds a run that builds the binaries: on empty caches, with
// the functions package compiling the same ones beside it on two shared
// cores, that took 266 s (and once over 300 s), within go test's 10 minutes.
const firstBuild = 8 * time.Minute

// script is run.sh going in a process group of its own, as a terminal's
// foreground job is.
type script struct {
	cmd  *exec.Cmd
	out  output
	tmp  string // its TMPDIR, which it must leave as it found it
	addr string // local mode's address
	done chan struct{}
	err  error // cmd.Wait's, set before done closes
}

// startScript runs run.sh with args on free loopback ports.
func startScript(t *testing.T, args ...string) *script {
	t.Helper()
	testenv.NodeModules(t)
	testenv.LambdaEmulator(t)
	// Sixteen distinct ports: one at a time, two calls can return the same
	// port (it failed so: local mode and dynalite on one port).
	ports := make([]string, 16)
	for i, p := range testenv.FreePorts(t, len(ports)) {
		ports[i] = fmt.Sprint(p)
	}
	s := &script{out: output(filepath.Join(t.TempDir(), "output")), tmp: t.TempDir(), addr: "127.0.0.1:" + ports[0], done: make(chan struct{})}
	s.cmd = exec.Command(filepath.Join(testenv.RepoRoot(t), "infra", "emulator", "run.sh"), args...)
	// HANDOFF_ABOVE=0: PublishFunction hands every publish to FanoutFunction,
	// so that one publish shows the hand-off wired.
	s.cmd.Env = testenv.UserEnv("TMPDIR="+s.tmp, "WSNOTIFY_ADDR="+s.addr, "DYNALITE_PORT="+ports[1],
		"FUNCTION_PORTS="+strings.Join(ports[2:9], " "), "RUNTIME_PORTS="+strings.Join(ports[9:16], " "), "HANDOFF_ABOVE=0")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A file, not a pipe: Wait then returns when the script ends, not when
	// the last process holding its output does, which is what is tested.
	f, err := os.Create(string(s.out))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s.cmd.Stdout, s.cmd.Stderr = f, f
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		// Whatever the test found, nothing of the script's may outlive it.
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	})
	return s
}

// output is the file the script writes to.
type output string

// String returns what the script wrote so far.
func (o output) String() string {
	b, _ := os.ReadFile(string(o))
	return string(b)
}

// wait waits for the script to end, failing the test after timeout.
func (s *script) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(timeout):
		t.Fatalf("run.sh did not end; output:\n%s", s.out)
	}
}

// checkNothingLeft fails the test if a process of the script's group still
// runs, or it left something in its TMPDIR.
func (s *script) checkNothingLeft(t *testing.T) {
	t.Helper()
	// The emulators and dynalite, started in the background, share the
	// script's process group: signal 0 finds any of them left.
	if err := syscall.Kill(-s.cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		out, _ := exec.Command("pgrep", "-a", "-g", fmt.Sprint(s.cmd.Process.Pid)).CombinedOutput()
		t.Errorf("processes of run.sh outlived it (kill: %v):\n%s", err, out)
	}
	if left, _ := os.ReadDir(s.tmp); len(left) > 0 {
		t.Errorf("run.sh left %d entries in its TMPDIR, e.g. %s", len(left), left[0].Name())
	}
}

func TestRunStopsWhatItStartedWhenLocalModeFails(t *testing.T) {
	s := startScript(t, "--no-such-flag")
	s.wait(t, firstBuild) // the first run builds the binaries
	if s.err == nil || !strings.Contains(s.out.String(), "no-such-flag") {
		t.Fatalf("run.sh with a bad flag ended with %v:\n%s", s.err, s.out)
	}
	if !strings.Contains(s.out.String(), "(rapid)") {
		t.Fatalf("the emulators never started, so the test shows nothing:\n%s", s.out)
	}
	s.checkNothingLeft(t)
}

func TestRunServesThroughTheFunctionsAndStopsEverythingOnCtrlC(t *testing.T) {
	s := startScript(t, "--api-key", "wsn_emulator_key=acct_emulator")
	deadline := time.After(firstBuild) // the first run builds the binaries
	tick := time.NewTicker(20 * time.Millisecond)
	for !strings.Contains(s.out.String(), "  Store:") {
		select {
		case <-s.done:
			t.Fatalf("run.sh ended before local mode's banner (%v):\n%s", s.err, s.out)
		case <-deadline:
			t.Fatalf("no banner from local mode:\n%s", s.out)
		case <-tick.C:
		}
	}
	tick.Stop()

	// A ping goes through ConnectFunction and DefaultFunction, each a
	// bootstrap under its emulator, on the table in dynalite.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, resp, err := asyncapi.Dial(ctx, "ws://"+s.addr+"/api/v1/ws/emulated-tab?token=wsn_emulator_key", nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("connect: %d %v\n%s", status, err, s.out)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"action":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	if _, data, err := c.Read(ctx); err != nil || string(data) != `{"type":"pong"}` {
		t.Fatalf("ping answered %s, %v", data, err)
	}

	// The publish API goes through PublishFunction's binary, which pushes
	// back through local mode's Management API and counts the publish on
	// its own stdout, by the api path; local mode publishes nothing itself.
	before := len(s.out.String())
	resp, err = http.Post("http://"+s.addr+"/v1/publish", "application/json",
		strings.NewReader(`{"ownerId":"acct_emulator","event":{"type":"job_complete","jobId":"job_e","status":"completed","organized":1,"failed":0}}`))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(answer), `"delivered":1`) {
		t.Fatalf("POST /v1/publish answered %d %s\n%s", resp.StatusCode, answer, s.out)
	}
	if _, data, err := c.Read(ctx); err != nil || !strings.Contains(string(data), `"jobId":"job_e"`) {
		t.Fatalf("the client got %s, %v; want the published job_complete", data, err)
	}
	// Handed off (HANDOFF_ABOVE=0): the publish was two invocations,
	// PublishFunction's and FanoutFunction's (the emulators' output is one
	// file: their REPORT lines are counted).
	testenv.Eventually(t, 30*time.Second, "FanoutFunction's invocation beside PublishFunction's", func() bool {
		return strings.Count(s.out.String()[before:], "REPORT RequestId:") >= 2
	})
	published := func() float64 {
		var n float64
		out := s.out.String()
		out = out[:strings.LastIndex(out, "\n")+1] // whole lines only: a line may be half written
		for _, d := range emftest.Parse(t, out) {
			if d.Dims[metrics.DimPath] == "api" && d.Dims[metrics.DimType] == "job_complete" {
				n += d.Values[metrics.EventsPublished.Name][0]
			}
		}
		return n
	}
	for published() != 1 { // the binary's output reaches the file after its answer
		select {
		case <-ctx.Done():
			t.Fatalf("no EMF line of PublishFunction counted the publish by api:\n%s", s.out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	resp, err = http.Get("http://" + s.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	scrape, err := prom.ParseText(resp.Body)
	resp.Body.Close()
	if err != nil || scrape.Get(metrics.EventsPublished) != 0 {
		t.Fatalf("local mode counted %v publishes itself (%v)", scrape.Get(metrics.EventsPublished), err)
	}

	if err := syscall.Kill(-s.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	s.wait(t, time.Minute)
	if !strings.Contains(s.out.String(), `msg="shutting down"`) {
		t.Fatalf("local mode did not shut down:\n%s", s.out)
	}
	s.checkNothingLeft(t)
}
