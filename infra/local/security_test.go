package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// The secrets of the log test: the key local mode runs with and a wrong one
// a client tries. Neither may appear in any line local mode writes.
const (
	secretKey   = "wsn_SECRET_session_key_4f9a1c"
	wrongToken  = "wsn_WRONG_token_e7b2d0"
	secretOwner = "acct_secret"
)

// secretSession drives a whole local mode session at addr through every
// entry point that sees a key or a query string: connects with the key in
// the query (seed path, raw API Gateway URL, a plain GET), a wrong token,
// events through both functions, bad client messages, bad invocations,
// Management API calls that carry the key in a header, and a disconnect.
// logs returns what local mode has logged so far.
func secretSession(t *testing.T, addr string, logs *testenv.SyncBuffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), processWait)
	defer cancel()
	base := "http://" + addr
	do := func(method, path, body string, header http.Header) int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	expect := func(what string, got, want int) {
		t.Helper()
		if got != want {
			t.Fatalf("%s: status %d, want %d", what, got, want)
		}
	}

	tab := dialLocal(t, addr, "tab-1", url.QueryEscape(secretKey))
	raw, _, err := asyncapi.Dial(ctx, "ws://"+addr+"/local?client_id=raw-1&token="+url.QueryEscape(secretKey), nil)
	if err != nil {
		t.Fatalf("raw URL: %v", err)
	}
	defer raw.CloseNow()
	if c, resp, err := asyncapi.Dial(ctx, "ws://"+addr+"/api/v1/ws/tab-2?token="+wrongToken, nil); err == nil {
		c.CloseNow()
		t.Fatal("a wrong token connected")
	} else if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %v", err)
	}
	expect("a plain GET with the key", do(http.MethodGet, "/api/v1/ws/tab-3?token="+secretKey, "", nil), http.StatusUpgradeRequired)

	job := fmt.Sprintf(`{"Records":[{"messageId":"m1","body":%q},{"messageId":"m2","body":"not json"}]}`,
		`{"ownerId":"`+secretOwner+`","event":{"type":"job_progress","jobId":"job_1","progress":50,"processedCount":1,"totalCount":2}}`)
	expect("job events", do(http.MethodPost, "/2015-03-31/functions/JobEventsFunction/invocations", job, nil), http.StatusOK)
	upload := `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"uploads/` + secretOwner + `/a+file.pdf","size":1,"eTag":"e","sequencer":"01"}}}]}`
	expect("upload", do(http.MethodPost, "/2015-03-31/functions/S3UploadFunction/invocations?token="+secretKey, upload, nil), http.StatusOK)
	expect("a payload that is not JSON", do(http.MethodPost, "/2015-03-31/functions/JobEventsFunction/invocations", "{", nil), http.StatusBadRequest)
	for _, want := range []string{"job_progress", "file_uploaded"} {
		if _, data, err := tab.Read(ctx); err != nil || !strings.Contains(string(data), want) {
			t.Fatalf("read %s: %s %v", want, data, err)
		}
	}

	for _, msg := range []string{`hello`, `{"action":"dance"}`, `{"action":"ping","token":"` + secretKey + `"}`} {
		if err := tab.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := tab.Read(ctx); err != nil {
			t.Fatal(err)
		}
	}

	id := ""
	waitLogged(t, logs, "msg=connected", "clientId=tab-1 ")
	id = loggedConnectionID(logs.String(), secretOwner, "tab-1")
	// Management API calls with the key where a careless client might put
	// it: an Authorization header and the query string.
	auth := http.Header{"Authorization": {"Bearer " + secretKey}}
	path := "/local/@connections/" + url.PathEscape(id)
	expect("GetConnection", do(http.MethodGet, path+"?token="+secretKey, "", auth), http.StatusOK)
	expect("PostToConnection", do(http.MethodPost, path, `{"type":"pong"}`, auth), http.StatusOK)
	expect("PostToConnection of an unknown id", do(http.MethodPost, "/local/@connections/bm9TdWNoQ29ubj0%3D?token="+secretKey, `{}`, auth), http.StatusGone)
	if _, _, err := tab.Read(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tab.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	waitLogged(t, logs, "msg=\"websocket closed\"", "clientId=tab-1 ")
	// raw-1 stays open: the shutdown closes it.
}

// requestPath matches the path attribute of a request log line.
var requestPath = regexp.MustCompile(`\bpath=("(?:[^"\\]|\\.)*"|\S+)`)

// checkNoSecrets fails the test for any line of output that holds a secret
// or a logged request URL with a query string.
func checkNoSecrets(t *testing.T, name, output string) {
	t.Helper()
	requests := 0
	for i, line := range strings.Split(output, "\n") {
		for _, secret := range []string{secretKey, wrongToken, url.QueryEscape(secretKey)} {
			if strings.Contains(line, secret) {
				t.Errorf("%s line %d holds a secret: %s", name, i+1, line)
			}
		}
		if name == "log" && strings.Contains(line, "token=") { // the banner shows the URL's shape
			t.Errorf("%s line %d holds a token parameter: %s", name, i+1, line)
		}
		if m := requestPath.FindStringSubmatch(line); m != nil {
			requests++
			if strings.ContainsAny(m[1], "?") {
				t.Errorf("%s line %d logs a URL with its query: %s", name, i+1, line)
			}
		}
	}
	if name == "log" && requests < 10 {
		t.Errorf("only %d request lines logged: the session did not run as meant\n%s", requests, output)
	}
}

func TestNoSecretReachesTheLogsOfAWholeSession(t *testing.T) {
	t.Parallel()
	t.Run("in process, at debug level", func(t *testing.T) {
		t.Parallel()
		r := runLocalMode(t, map[string]string{envAPIKeys: secretKey + "=" + secretOwner})
		secretSession(t, r.addr, r.logs)
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		checkNoSecrets(t, "log", r.logs.String())
		checkNoSecrets(t, "stdout", r.stdout.String())
	})
	t.Run("the built command, all it writes until SIGTERM", func(t *testing.T) {
		t.Parallel()
		p := startLocalModeProcess(t, testenv.LocalMode(t), []string{envAPIKeys + "=" + secretKey + "=" + secretOwner})
		secretSession(t, p.addr, p.stderr)
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := p.waitExit(t); code != 0 {
			t.Fatalf("exit code %d", code)
		}
		checkNoSecrets(t, "log", p.stderr.String())
		checkNoSecrets(t, "stdout", p.stdout.String())
	})
}
