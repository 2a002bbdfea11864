package main

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/testenv"
)

// TestMakeRunEndsCleanlyOnInterrupt runs `make run` from the repository root
// and interrupts it as a user does, with SIGINT to its whole process group:
// local mode must shut down and make must report no error. A terminal's
// Ctrl-C reaches a make that handles SIGINT, which waits for its command and
// then ends by the same signal; a make that a script started in the
// background ignores SIGINT and exits with its command's status, which must
// be 0.
func TestMakeRunEndsCleanlyOnInterrupt(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is not on PATH: install it (see README, Set-up)")
	}
	tests := []struct {
		name       string
		background bool // SIGINT ignored, as for `make run &` in a script
	}{
		{name: "Ctrl-C in a terminal"},
		{name: "SIGINT to make run in the background of a script", background: true},
	}
	for _, tt := range tests { // in turn: both build build/local
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("make", "--no-print-directory", "run")
			if tt.background {
				cmd = exec.Command("sh", "-c", "trap '' INT; exec make --no-print-directory run")
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

			// The first run may compile local mode: give it time.
			if _, ok := out.WaitFor(3*time.Minute, done, func(text string) bool { return strings.Contains(text, "  Store:") }); !ok {
				select {
				case <-done:
					t.Fatalf("make run ended before its banner (%v):\n%s", err, out)
				default:
					t.Fatalf("make run printed no banner:\n%s", out)
				}
			}

			if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(processWait):
				t.Fatalf("make run did not end after SIGINT:\n%s", out)
			}
			text := out.String()
			if strings.Contains(text, "make: ***") || !strings.Contains(text, `msg="shutting down"`) {
				t.Fatalf("make run ended with %v:\n%s", err, text)
			}
			state := cmd.ProcessState
			ws, _ := state.Sys().(syscall.WaitStatus)
			interrupted := ws.Signaled() && ws.Signal() == syscall.SIGINT
			if state.ExitCode() != 0 && (tt.background || !interrupted) {
				t.Fatalf("make run ended with %v; want exit status 0%s:\n%s", err,
					map[bool]string{false: " or the interrupt itself", true: ""}[tt.background], text)
			}
		})
	}
}
