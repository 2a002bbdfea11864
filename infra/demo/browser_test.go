package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// browserWait bounds each exchange with Chromium and each wait for the page.
const browserWait = 20 * time.Second

// browser is a headless Chromium driven through the Chrome DevTools
// Protocol over its WebSocket: a request is {"id","method","params"} and,
// for a page, "sessionId"; its answer carries the same id.
type browser struct {
	conn    *websocket.Conn
	mu      sync.Mutex
	nextID  int64
	replies map[int64]chan cdpMessage
	// problems are the errors pages reported: uncaught exceptions, console
	// errors, Content-Security-Policy violations.
	problems []string
	done     chan struct{} // closed when the reader stops
}

type cdpMessage struct {
	ID        int64           `json:"id,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// devToolsLine is what Chromium prints on stderr once it listens.
var devToolsLine = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// stderrWatch keeps Chromium's stderr and reports its DevTools URL once.
type stderrWatch struct {
	mu  sync.Mutex
	buf bytes.Buffer
	url chan string
}

func (w *stderrWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	had := devToolsLine.Match(w.buf.Bytes())
	if w.buf.Len() < 1<<20 {
		w.buf.Write(p)
	}
	if m := devToolsLine.FindSubmatch(w.buf.Bytes()); m != nil && !had {
		w.url <- string(m[1])
	}
	return len(p), nil
}

func (w *stderrWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// startBrowser starts Debian's chromium headless with a fresh profile and
// connects to it; both end with the test.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: `apt-get install -y chromium` (Debian's package; .ci/run installs it, see README, Set-up)")
	}
	profile := t.TempDir()
	cmd := exec.Command(path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--user-data-dir="+profile, "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
		"--hide-scrollbars", "--force-color-profile=srgb", "about:blank")
	// Its own process group: the helpers it starts end with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr := &stderrWatch{url: make(chan string, 1)}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	var url string
	select {
	case url = <-stderr.url:
	case <-exited:
		t.Fatalf("chromium exited before listening: %s", stderr)
	case <-time.After(browserWait):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		t.Fatalf("chromium did not listen within %v: %s", browserWait, stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		t.Fatalf("connect to chromium: %v", err)
	}
	conn.SetReadLimit(64 << 20) // screenshots
	b := &browser{conn: conn, replies: map[int64]chan cdpMessage{}, done: make(chan struct{})}
	go b.read()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.call(ctx, "", "Browser.close", nil, nil)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
		// Whatever is left of its process group (Chromium is ours).
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		_ = conn.CloseNow()
		<-b.done
	})
	return b
}

// read dispatches answers to their callers and keeps the pages' problems.
func (b *browser) read() {
	defer close(b.done)
	for {
		_, data, err := b.conn.Read(context.Background())
		if err != nil {
			b.mu.Lock()
			for id, ch := range b.replies {
				close(ch)
				delete(b.replies, id)
			}
			b.mu.Unlock()
			return
		}
		var msg cdpMessage
		if json.Unmarshal(data, &msg) != nil {
			continue
		}
		b.mu.Lock()
		if ch, ok := b.replies[msg.ID]; ok && msg.Method == "" {
			delete(b.replies, msg.ID)
			ch <- msg
		} else if p := problem(msg); p != "" {
			b.problems = append(b.problems, p)
		}
		b.mu.Unlock()
	}
}

// problem describes an event that reports a page error, or is "".
func problem(msg cdpMessage) string {
	switch msg.Method {
	case "Runtime.exceptionThrown":
		var p struct {
			ExceptionDetails struct {
				Text      string `json:"text"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		_ = json.Unmarshal(msg.Params, &p)
		return "exception: " + p.ExceptionDetails.Text + " " + p.ExceptionDetails.Exception.Description
	case "Log.entryAdded":
		var p struct {
			Entry struct{ Level, Source, Text string } `json:"entry"`
		}
		_ = json.Unmarshal(msg.Params, &p)
		if p.Entry.Level == "error" {
			return p.Entry.Source + ": " + p.Entry.Text
		}
	case "Runtime.consoleAPICalled":
		var p struct {
			Type string            `json:"type"`
			Args []json.RawMessage `json:"args"`
		}
		_ = json.Unmarshal(msg.Params, &p)
		if p.Type == "error" {
			return fmt.Sprintf("console.error: %s", p.Args)
		}
	}
	return ""
}

// call sends one command (to a page when session is set) and decodes its
// result into out.
func (b *browser) call(ctx context.Context, session, method string, params, out any) error {
	raw, err := json.Marshal(params)
	if err != nil {
		return err
	}
	if params == nil {
		raw = []byte("{}")
	}
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpMessage, 1)
	b.replies[id] = ch
	b.mu.Unlock()
	req, _ := json.Marshal(cdpMessage{ID: id, SessionID: session, Method: method, Params: raw})
	if err := b.conn.Write(ctx, websocket.MessageText, req); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case msg, ok := <-ch:
		if !ok {
			return fmt.Errorf("%s: the browser closed the connection", method)
		}
		if msg.Error != nil {
			return fmt.Errorf("%s: %s (%d)", method, msg.Error.Message, msg.Error.Code)
		}
		if out != nil {
			return json.Unmarshal(msg.Result, out)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// Problems returns what the pages reported so far.
func (b *browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// page is one tab.
type page struct {
	b       *browser
	session string
}

// newPage opens a tab with a fixed viewport, its errors reported.
func (b *browser) newPage(t *testing.T, width, height int) *page {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		t.Fatal(err)
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached); err != nil {
		t.Fatal(err)
	}
	p := &page{b: b, session: attached.SessionID}
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable"} {
		p.do(t, m, nil, nil)
	}
	p.do(t, "Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, nil)
	return p
}

func (p *page) do(t *testing.T, method string, params, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	if err := p.b.call(ctx, p.session, method, params, out); err != nil {
		t.Fatal(err)
	}
}

// navigate loads url and waits until its document is complete.
func (p *page) navigate(t *testing.T, url string) {
	t.Helper()
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	p.do(t, "Page.navigate", map[string]any{"url": url}, &nav)
	if nav.ErrorText != "" {
		t.Fatalf("navigate to the page: %s", nav.ErrorText)
	}
	p.waitFor(t, "the page to load", `document.readyState === 'complete'`)
}

// errEval is an expression that threw, or a promise that was rejected.
var errEval = errors.New("evaluation failed")

// eval evaluates expr in the page (awaiting a promise) and decodes its value.
func (p *page) eval(t *testing.T, expr string, out any) error {
	t.Helper()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	p.do(t, "Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true}, &r)
	if r.ExceptionDetails != nil {
		return fmt.Errorf("%w: %s %s", errEval, r.ExceptionDetails.Text, r.ExceptionDetails.Exception.Description)
	}
	if out != nil && len(r.Result.Value) > 0 {
		return json.Unmarshal(r.Result.Value, out)
	}
	return nil
}

// waitFor waits until the JavaScript condition cond holds in the page,
// checking it every 15 ms in the page, for at most 10 s; then it fails
// the test with what the page shows.
func (p *page) waitFor(t *testing.T, what, cond string) {
	t.Helper()
	expr := fmt.Sprintf(`new Promise((resolve, reject) => {
		const deadline = Date.now() + 10000;
		const check = () => {
			let ok = false;
			try { ok = Boolean(%s); } catch (e) {}
			if (ok) return resolve(true);
			if (Date.now() > deadline) return reject(new Error('not met'));
			setTimeout(check, 15);
		};
		check();
	})`, cond)
	if err := p.eval(t, expr, nil); err != nil {
		var shown string
		_ = p.eval(t, `document.body ? document.body.innerText : ''`, &shown)
		t.Fatalf("waiting for %s (%s): %v\nthe page shows:\n%s", what, cond, err, shown)
	}
}

// screenshot saves a PNG of the viewport at path.
func (p *page) screenshot(t *testing.T, path string) {
	t.Helper()
	var shot struct {
		Data string `json:"data"`
	}
	p.do(t, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}
