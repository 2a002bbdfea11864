package wsnotify_test

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/testenv"
)

// stopWait bounds the wait for a server to end after SIGINT.
const stopWait = 30 * time.Second

// makeWaitRace is what GNU make 4.3 prints when it loses the race between
// SIGINT and reaping its command (see TestMakeServersEndCleanlyOnInterrupt).
const makeWaitRace = "make: *** wait: No child processes.  Stop."

// TestMakeServersEndCleanlyOnInterrupt runs `make run` and `make demo` from
// the repository root and interrupts each as a user does, with SIGINT to
// its whole process group: the server must shut down and make must report
// no error. A terminal's Ctrl-C reaches a make that handles SIGINT, which
// waits for its command and then ends by the same signal; a make that a
// script started in the background ignores SIGINT and exits with its
// command's status, which must be 0. (`go run` would end with status 1 on
// the interrupt, which make reports as an error: the targets build, then run.)
func TestMakeServersEndCleanlyOnInterrupt(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is not on PATH: install it (see README, Set-up)")
	}
	targets := []struct {
		target  string
		ready   string // printed once it serves
		stopped string // printed once it has shut down, if it says so
	}{
		{target: "run", ready: "  Store:", stopped: `msg="shutting down"`},
		{target: "demo", ready: "  Open the page: "},
	}
	for _, target := range targets {
		for _, background := range []bool{false, true} { // in turn: each builds under build/
			name := target.target + ", Ctrl-C in a terminal"
			if background {
				name = target.target + ", SIGINT in the background of a script" // SIGINT ignored, as for `make run &`
			}
			t.Run(name, func(t *testing.T) {
				cmd := exec.Command("make", "--no-print-directory", target.target)
				if background {
					cmd = exec.Command("sh", "-c", "trap '' INT; exec make --no-print-directory "+target.target)
				}
				cmd.Dir = testenv.RepoRoot(t)
				cmd.Env = testenv.UserEnv("WSNOTIFY_ADDR=127.0.0.1:0")
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				out := &testenv.SyncBuffer{}
				cmd.Stdout, cmd.Stderr = out, out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				var err error // cmd.Wait's, set before done closes
				done := make(chan struct{})
				go func() { err = cmd.Wait(); close(done) }()
				t.Cleanup(func() {
					select {
					case <-done:
					default:
						_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
						<-done
					}
				})

				// The first run may compile: give it time.
				if _, ok := out.WaitFor(3*time.Minute, done, func(text string) bool { return strings.Contains(text, target.ready) }); !ok {
					select {
					case <-done:
						t.Fatalf("make %s ended before it served (%v):\n%s", target.target, err, out)
					default:
						t.Fatalf("make %s printed no %q:\n%s", target.target, target.ready, out)
					}
				}

				if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
					t.Fatal(err)
				}
				select {
				case <-done:
				case <-time.After(stopWait):
					t.Fatalf("make %s did not end after SIGINT:\n%s", target.target, out)
				}
				text := out.String()
				if !background && strings.Contains(text, makeWaitRace) {
					// GNU make 4.3 (Debian 12's) can lose this race with
					// its own SIGCHLD handling when SIGINT reaches it and
					// its command together: it then says so and exits 2
					// although the command ended cleanly. Seen once in
					// three busy make test runs (not reproduced in 14 runs alone or
					// beside four busy loops); the server's own
					// shutdown is still checked below.
					t.Logf("make %s: GNU make's wait race on SIGINT (not ours):\n%s", target.target, text)
					text = strings.NewReplacer(makeWaitRace, "", "make: *** Waiting for unfinished jobs....", "").Replace(text)
					if !strings.Contains(text, target.stopped) {
						t.Fatalf("make %s: the server did not say it stopped:\n%s", target.target, out)
					}
					return
				}
				if strings.Contains(text, "make: ***") || !strings.Contains(text, target.stopped) {
					t.Fatalf("make %s ended with %v:\n%s", target.target, err, text)
				}
				state := cmd.ProcessState
				ws, _ := state.Sys().(syscall.WaitStatus)
				interrupted := ws.Signaled() && ws.Signal() == syscall.SIGINT
				if state.ExitCode() != 0 && (background || !interrupted) {
					t.Fatalf("make %s ended with %v; want exit status 0%s:\n%s", target.target, err,
						map[bool]string{false: " or the interrupt itself", true: ""}[background], text)
				}
			})
		}
	}
}
