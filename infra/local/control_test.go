package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/wsnotify/wsnotify/shared/testenv"
)

// TestBeyondLoopbackTheControlPlaneNeedsItsToken runs the built command on
// every interface, as a developer sharing local mode on a LAN would: it
// starts only with a control token, warns that the WebSocket endpoint is
// reachable from the network, and answers control-plane requests only with
// the token. The token appears in nothing it writes.
func TestBeyondLoopbackTheControlPlaneNeedsItsToken(t *testing.T) {
	t.Parallel()
	const token = "ctl_SECRET_control_token_91c2"
	bin := testenv.LocalMode(t)

	p := startLocalModeProcess(t, bin, []string{envControlToken + "=" + token}, "--addr", "0.0.0.0:0")
	_, port, _ := net.SplitHostPort(p.addr)
	// Requests go to loopback: the test sends nothing beyond this machine.
	invoke := "http://127.0.0.1:" + port + "/2015-03-31/functions/JobEventsFunction/invocations"
	post := func(header string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, invoke, strings.NewReader(`{"Records":[]}`))
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(""); got != http.StatusForbidden {
		t.Fatalf("without the token: %d, want 403", got)
	}
	if got := post("Bearer " + token); got != http.StatusOK {
		t.Fatalf("with the token: %d, want 200", got)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.waitExit(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if !strings.Contains(p.stderr.String(), "the WebSocket endpoint is reachable from the network") {
		t.Errorf("no warning in the log:\n%s", p.stderr)
	}
	for name, out := range map[string]string{"log": p.stderr.String(), "banner": p.stdout.String()} {
		if strings.Contains(out, token) {
			t.Errorf("the %s holds the control token:\n%s", name, out)
		}
	}

	t.Run("without a token it does not start", func(t *testing.T) {
		cmd := exec.Command(bin, "--addr", "0.0.0.0:0")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "--control-token") {
			t.Fatalf("got %v:\n%s", err, out)
		}
	})
}
