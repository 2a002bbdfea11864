package js_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/local/server"
	"github.com/wsnotify/wsnotify/shared/push/hub"
	"github.com/wsnotify/wsnotify/shared/store/memory"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// wait bounds every wait for something a client or the server does.
const wait = 30 * time.Second

const key, owner = "wsn_js_client_test_key", "acct_js"

func dir(t *testing.T) string { return filepath.Join(testenv.RepoRoot(t), "clients", "js") }

// unitTestTimeout bounds the module's unit tests as a whole, and
// unitTestEach each of them: a test that hangs fails the run within
// minutes, not at go test's own ten-minute limit.
const (
	unitTestTimeout = 3 * time.Minute
	unitTestEach    = 60 * time.Second
)

// declaredTest matches a test declared at the top level of a test file;
// tests declared in a loop are more, so it gives a lower bound.
var declaredTest = regexp.MustCompile(`(?m)^test\(`)

func TestTheModuleUnitTestsPass(t *testing.T) {
	const file = "test/wsnotify.test.mjs"
	src, err := os.ReadFile(filepath.Join(dir(t), file))
	if err != nil {
		t.Fatal(err)
	}
	declared := len(declaredTest.FindAll(src, -1))
	if declared == 0 {
		t.Fatalf("%s declares no test", file)
	}
	ctx, cancel := context.WithTimeout(context.Background(), unitTestTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.Node(t), "--test", "--test-reporter=tap",
		fmt.Sprintf("--test-timeout=%d", unitTestEach.Milliseconds()), file)
	cmd.Dir = dir(t)
	cmd.WaitDelay = 5 * time.Second // the pipes of anything node left behind
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("node --test %s did not end within %v:\n%s", file, unitTestTimeout, out)
	}
	if err != nil {
		t.Fatalf("node --test %s: %v\n%s", file, err, out)
	}
	counts, err := tapCounts(out)
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	// Every test ran and passed: none failed, was skipped, cancelled or
	// left to do, and at least the ones declared at the top level ran.
	if counts["tests"] < declared || counts["pass"] != counts["tests"] {
		t.Fatalf("node --test ran %d tests of the %d or more %s declares, %d passed:\n%s",
			counts["tests"], declared, file, counts["pass"], out)
	}
	t.Logf("%d tests ran and passed", counts["tests"])
}

// tapCounts reads the summary that node's TAP reporter ends with
// ("# tests 19", "# pass 19", "# fail 0", …).
func tapCounts(out []byte) (map[string]int, error) {
	counts := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^# (tests|suites|pass|fail|cancelled|skipped|todo) (\d+)$`).FindAllSubmatch(out, -1) {
		n, _ := strconv.Atoi(string(m[2]))
		counts[string(m[1])] = n
	}
	for _, k := range []string{"tests", "pass", "fail", "cancelled", "skipped", "todo"} {
		if _, ok := counts[k]; !ok {
			return nil, fmt.Errorf("node --test printed no %q count", k)
		}
	}
	return counts, nil
}

func TestThePackagePublishesTheModuleAndItsTypes(t *testing.T) {
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatal("npm is not on PATH: install Node.js 20 with npm (see README, Set-up)")
	}
	cmd := exec.Command(npm, "pack", "--dry-run", "--json", "--ignore-scripts")
	cmd.Dir = dir(t)
	cmd.Env = append(os.Environ(), "npm_config_cache="+t.TempDir(), "npm_config_update_notifier=false")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("npm pack --dry-run: %v", err)
	}
	var packs []struct {
		Name  string `json:"name"`
		Files []struct {
			Path string `json:"path"`
		} `json:"files"`
	}
	if err := json.Unmarshal(out, &packs); err != nil || len(packs) != 1 {
		t.Fatalf("npm pack answered %s: %v", out, err)
	}
	var files []string
	for _, f := range packs[0].Files {
		files = append(files, f.Path)
	}
	slices.Sort(files)
	want := "README.md package.json wsnotify.d.ts wsnotify.js"
	if got := strings.Join(files, " "); got != want {
		t.Fatalf("the package holds %s, want %s", got, want)
	}
}

// ---- the module in Node.js against local mode ----

// localMode is local mode running in-process; addr is the loopback
// address it serves once listen has run.
type localMode struct {
	addr     string
	store    *memory.Store
	srv      *server.Server
	errc     chan error
	log      *logCounter
	stopOnce sync.Once
}

// logCounter counts the handshakes local mode refused, by status, from its
// request log.
type logCounter struct {
	slog.Handler
	mu      *sync.Mutex // shared by the handlers WithAttrs and WithGroup derive
	refused map[int]int
}

func (l *logCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "request" {
		var path string
		var status int
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "path":
				path = a.Value.String()
			case "status":
				status = int(a.Value.Int64())
			}
			return true
		})
		if strings.HasPrefix(path, "/api/v1/ws/") && status >= 400 {
			l.mu.Lock()
			l.refused[status]++
			l.mu.Unlock()
		}
	}
	if !l.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return l.Handler.Handle(ctx, r)
}

// Enabled takes every line from Info up: the request lines are counted
// even when the log itself is discarded.
func (l *logCounter) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelInfo
}

func (l *logCounter) WithGroup(name string) slog.Handler {
	return &logCounter{Handler: l.Handler.WithGroup(name), mu: l.mu, refused: l.refused}
}

func (l *logCounter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logCounter{Handler: l.Handler.WithAttrs(attrs), mu: l.mu, refused: l.refused}
}

func (l *logCounter) count(status int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refused[status]
}

// startLocalMode serves local mode on addr ("127.0.0.1:0" for any port)
// over store, with connections idle-closed after idle (0: API Gateway's 10
// minutes), until stop or the end of the test.
func startLocalMode(t *testing.T, addr string, store *memory.Store, idle time.Duration) *localMode {
	t.Helper()
	m := newLocalMode(t, store, idle)
	m.listen(t, addr)
	return m
}

// newLocalMode is startLocalMode's server, not yet listening.
func newLocalMode(t *testing.T, store *memory.Store, idle time.Duration) *localMode {
	t.Helper()
	base := slog.DiscardHandler
	if testing.Verbose() {
		base = slog.NewTextHandler(os.Stderr, nil)
	}
	counter := &logCounter{Handler: base, mu: &sync.Mutex{}, refused: map[int]int{}}
	srv, err := server.New(server.Config{
		APIKeys:     map[string]string{key: owner},
		Store:       store,
		Connections: hub.Config{IdleTimeout: idle},
		Logger:      slog.New(counter),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &localMode{store: store, srv: srv, errc: make(chan error, 1), log: counter}
}

// listen serves m on addr until stop or the end of the test.
func (m *localMode) listen(t *testing.T, addr string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	m.addr = l.Addr().String()
	go func() { m.errc <- m.srv.Serve(l) }()
	t.Cleanup(m.stop)
}

func (m *localMode) stop() {
	m.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = m.srv.Shutdown(ctx)
		<-m.errc
	})
}

// publish sends job_progress events number from..to (processedCount) of a
// job of total events through the Invoke API, one SQS record each.
func (m *localMode) publish(t *testing.T, job string, from, to, total int) {
	t.Helper()
	publishTo(t, m.srv, m.addr, job, from, to, total)
}

// publishTo publishes through h's Invoke API. Local mode need not be
// listening: the request is served in-process, as from this machine.
func publishTo(t *testing.T, h http.Handler, addr, job string, from, to, total int) {
	t.Helper()
	if err := tryPublish(h, addr, job, from, to, total); err != nil {
		t.Fatal(err)
	}
}

// tryPublish is publishTo returning its failure, for a goroutine other than
// the test's, which must not end the test.
//
// A job ending in "/" names a job per event (job1, job2, …): each event is
// then its job's latest, which a replay keeps, where a replay sends a job's
// latest progress only.
func tryPublish(h http.Handler, addr, job string, from, to, total int) error {
	for i := from; i <= to; i++ {
		jobID := job
		if strings.HasSuffix(job, "/") {
			jobID = fmt.Sprint(job, i)
		}
		body := fmt.Sprintf(`{"ownerId":%q,"event":{"type":"job_progress","jobId":%q,"progress":%d,"processedCount":%d,"totalCount":%d,"currentFile":"file-%d.pdf"}}`,
			owner, jobID, i*100/total, i, total, i)
		payload, _ := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{{MessageId: fmt.Sprintf("%s-%d", job, i), Body: body}}})
		req := httptest.NewRequest(http.MethodPost, "http://"+addr+"/2015-03-31/functions/JobEventsFunction/invocations", bytes.NewReader(payload))
		req.RemoteAddr = "127.0.0.1:1"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), `"itemIdentifier"`) {
			return fmt.Errorf("publish %s #%d: %d %s", job, i, rec.Code, rec.Body)
		}
	}
	return nil
}

// requireResume fails a test that needs the resume protocol (event ids,
// seq, {"action":"resume"}) when local mode answers a resume with
// BAD_REQUEST "unknown action", saying so rather than failing later on a
// missing event.
func requireResume(t *testing.T, m *localMode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+m.addr+"/api/v1/ws/resume-probe?token="+key, nil)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"action":"resume","since":0}`)); err != nil {
		t.Fatal(err)
	}
	_, data, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var reply struct{ Type, Code, Error string }
	_ = json.Unmarshal(data, &reply)
	if reply.Code == "BAD_REQUEST" && strings.Contains(reply.Error, "unknown action") {
		t.Fatalf("local mode answered a resume with %s: the client's resume cannot be tested", data)
	}
	c.Close(websocket.StatusNormalClosure, "")
}

// nodeClient is clients/js/test/harness.mjs: the module in Node.js with ws.
type nodeClient struct {
	lines    <-chan string
	stdin    io.WriteCloser
	stderr   *testenv.SyncBuffer
	events   []map[string]any
	states   []string
	deadline <-chan time.Time
	failed   <-chan error // a failure of the test's other goroutines: ends any wait
}

// startClient runs the module in Node.js with options (url and token set
// unless given).
func startClient(t *testing.T, m *localMode, options map[string]any) *nodeClient {
	t.Helper()
	opts := map[string]any{"url": "ws://" + m.addr, "token": key, "minDelay": 200, "maxDelay": 1000}
	for k, v := range options {
		opts[k] = v
	}
	js, _ := json.Marshal(opts)
	p := testenv.StartNode(t, []string{"WSNOTIFY_NODE_MODULES=" + testenv.NodeModules(t), "WSNOTIFY_OPTIONS=" + string(js)},
		filepath.Join(dir(t), "test", "harness.mjs"))
	c := &nodeClient{lines: p.Lines, stdin: p.Stdin, stderr: p.Stderr, deadline: time.After(2 * wait)}
	return c
}

// next reads the client's next line into its record; false at exit.
func (c *nodeClient) next(t *testing.T, what string) bool {
	t.Helper()
	select {
	case line, ok := <-c.lines:
		if !ok {
			return false
		}
		switch kind, rest, _ := strings.Cut(line, " "); kind {
		case "STATE":
			state, _, _ := strings.Cut(rest, " ")
			c.states = append(c.states, state)
		case "EVENT":
			var ev map[string]any
			if err := json.Unmarshal([]byte(rest), &ev); err != nil {
				t.Fatalf("event %q: %v", rest, err)
			}
			c.events = append(c.events, ev)
		}
		return true
	case err := <-c.failed:
		t.Fatalf("while waiting for %s: %v", what, err)
	case <-c.deadline:
		t.Fatalf("timed out waiting for %s; states %v, %d events; node stderr: %s", what, c.states, len(c.events), c.stderr)
	}
	return false
}

// until reads lines until cond holds.
func (c *nodeClient) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if !c.next(t, what) {
			t.Fatalf("node exited while waiting for %s; states %v; stderr: %s", what, c.states, c.stderr)
		}
	}
}

func (c *nodeClient) opens() int {
	n := 0
	for _, s := range c.states {
		if s == "open" {
			n++
		}
	}
	return n
}

// progressOf returns the processedCount of each job_progress event of job.
func (c *nodeClient) progressOf(job string) []int {
	var out []int
	for _, ev := range c.events {
		id, _ := ev["jobId"].(string)
		if ev["type"] == "job_progress" && (id == job || strings.HasSuffix(job, "/") && strings.HasPrefix(id, job)) {
			out = append(out, int(ev["processedCount"].(float64)))
		}
	}
	return out
}

// expectOnceInOrder checks that the client saw job's events 1..n, each
// once, in order, and with increasing seq.
func (c *nodeClient) expectOnceInOrder(t *testing.T, job string, n int) {
	t.Helper()
	got := c.progressOf(job)
	for i, p := range got {
		if p != i+1 {
			t.Fatalf("events of %s out of order, lost or repeated: %v", job, got)
		}
	}
	if len(got) != n {
		t.Fatalf("%d events of %s, want %d: %v", len(got), job, n, got)
	}
	last := 0.0
	for _, ev := range c.events {
		if seq, ok := ev["seq"].(float64); ok {
			if seq <= last {
				t.Fatalf("seq %v after %v", seq, last)
			}
			last = seq
		}
	}
}

func TestEveryEventArrivesOnceAndInOrderWhileTheIdleTimeoutForcesReconnects(t *testing.T) {
	t.Parallel()
	m := startLocalMode(t, "127.0.0.1:0", memory.New(), time.Second)
	requireResume(t, m)
	c := startClient(t, m, nil)
	c.until(t, "open", func() bool { return c.opens() == 1 })
	// About five seconds of events, one every 25 ms: the idle timeout
	// closes the connection every second, and events published while the
	// client is away come back through resume.
	const n = 200
	done, failed := make(chan struct{}), make(chan error, 1)
	c.failed = failed
	go func() {
		defer close(done)
		pace := time.NewTicker(125 * time.Millisecond)
		defer pace.Stop()
		for i := 1; i <= n; i += 5 {
			if err := tryPublish(m.srv, m.addr, "job_idle/", i, i+4, n); err != nil {
				failed <- err
				return
			}
			<-pace.C
		}
	}()
	c.until(t, "every event", func() bool { return len(c.progressOf("job_idle/")) >= n })
	<-done
	select {
	case err := <-failed:
		t.Fatal(err)
	default:
	}
	c.expectOnceInOrder(t, "job_idle/", n)
	if c.opens() < 4 {
		t.Fatalf("the client opened %d connections in 5 s with a 1 s idle timeout; want reconnects (states %v)", c.opens(), c.states)
	}
}

func TestPingsKeepTheConnectionPastTheIdleTimeout(t *testing.T) {
	t.Parallel()
	m := startLocalMode(t, "127.0.0.1:0", memory.New(), time.Second)
	c := startClient(t, m, map[string]any{"pingInterval": 250})
	c.until(t, "open", func() bool { return c.opens() == 1 })
	const n = 30
	pace := time.NewTicker(100 * time.Millisecond) // 3 s of events: three idle timeouts' worth
	defer pace.Stop()
	for i := 1; i <= n; i++ {
		m.publish(t, "job_ping", i, i, n)
		<-pace.C
	}
	c.until(t, "every event", func() bool { return len(c.progressOf("job_ping")) == n })
	c.expectOnceInOrder(t, "job_ping", n)
	if c.opens() != 1 || len(c.states) != 1 {
		t.Fatalf("states %v: the pings should have kept the first connection", c.states)
	}
}

func TestTheClientReconnectsAcrossAServerRestart(t *testing.T) {
	t.Parallel()
	store := memory.New() // what a durable store (DynamoDB) keeps across the restart
	m := startLocalMode(t, "127.0.0.1:0", store, 0)
	c := startClient(t, m, nil)
	c.until(t, "open", func() bool { return c.opens() == 1 })
	m.publish(t, "job_restart", 1, 5, 10)
	c.until(t, "events 1-5", func() bool { return len(c.progressOf("job_restart")) == 5 })

	m.stop()
	c.until(t, "the close", func() bool { return c.states[len(c.states)-1] == "connecting" })
	m2 := startLocalMode(t, m.addr, store, 0)
	c.until(t, "the reconnect", func() bool { return c.opens() == 2 })
	m2.publish(t, "job_restart", 6, 10, 10)
	c.until(t, "events 6-10", func() bool { return len(c.progressOf("job_restart")) == 10 })
	c.expectOnceInOrder(t, "job_restart", 10)
}

func TestTheClientResumesWhatWasPublishedWhileTheServerRestarted(t *testing.T) {
	t.Parallel()
	store := memory.New()
	m := startLocalMode(t, "127.0.0.1:0", store, 0)
	requireResume(t, m)
	c := startClient(t, m, nil)
	c.until(t, "open", func() bool { return c.opens() == 1 })
	m.publish(t, "job_away", 1, 3, 9)
	c.until(t, "events 1-3", func() bool { return len(c.progressOf("job_away")) == 3 })
	m.stop()
	c.until(t, "the close", func() bool { return c.states[len(c.states)-1] == "connecting" })

	// The new server takes events before it listens, so the client
	// cannot be back yet: they reach it only through resume.
	m2 := newLocalMode(t, store, 0)
	publishTo(t, m2.srv, m.addr, "job_away", 4, 6, 9)
	m2.listen(t, m.addr)
	c.until(t, "the reconnect", func() bool { return c.opens() == 2 })
	// The replay sends the job's latest progress, 6, not the steps 4 and 5
	// it superseded; the client passes over their seqs without an error.
	// (Once 7 is out, 6 is superseded too: the next events wait for it.)
	c.until(t, "event 6", func() bool { return len(c.progressOf("job_away")) == 4 })
	m2.publish(t, "job_away", 7, 9, 9)
	c.until(t, "events 7-9", func() bool { return len(c.progressOf("job_away")) == 7 })
	if got := fmt.Sprint(c.progressOf("job_away")); got != "[1 2 3 6 7 8 9]" {
		t.Fatalf("progress %s, want [1 2 3 6 7 8 9]", got)
	}
	last := 0.0
	for _, ev := range c.events {
		if ev["type"] == "error" {
			t.Fatalf("the client reported %v", ev)
		}
		if seq, ok := ev["seq"].(float64); ok {
			if seq <= last {
				t.Fatalf("seq %v after %v", seq, last)
			}
			last = seq
		}
	}
}

func TestA409MakesTheClientRetryWithAFreshClientID(t *testing.T) {
	t.Parallel()
	m := startLocalMode(t, "127.0.0.1:0", memory.New(), 0)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	// A previous connection of the same session, still registered.
	old, _, err := websocket.Dial(ctx, "ws://"+m.addr+"/api/v1/ws/tab-1?token="+key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer old.CloseNow()

	c := startClient(t, m, map[string]any{"clientId": "tab-1"})
	c.until(t, "open", func() bool { return c.opens() == 1 })
	testenv.Eventually(t, wait, "the 409 in the request log", func() bool { return m.log.count(http.StatusConflict) == 1 })
	m.publish(t, "job_409", 1, 1, 1)
	c.until(t, "the event", func() bool { return len(c.progressOf("job_409")) == 1 })
	conns, err := m.store.ListConnections(ctx, owner, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, conn := range conns {
		ids = append(ids, conn.ClientID)
	}
	if len(ids) != 2 || (ids[0] != "tab-1" && ids[1] != "tab-1") {
		t.Fatalf("connections of the owner: %v, want tab-1 and the client's fresh id", ids)
	}
}

func TestA401StopsTheClientWithoutAReconnectLoop(t *testing.T) {
	t.Parallel()
	m := startLocalMode(t, "127.0.0.1:0", memory.New(), 0)
	c := startClient(t, m, map[string]any{"token": "wsn_not_a_key", "minDelay": 1, "maxDelay": 2})
	// The harness exits by itself once the client has stopped and left no
	// timer: a reconnect loop would keep it running.
	for c.next(t, "the client to stop and Node to exit") {
	}
	if len(c.states) != 1 || c.states[0] != "closed" {
		t.Fatalf("states %v, want [closed]", c.states)
	}
	if len(c.events) != 1 || c.events[0]["code"] != "UNAUTHORIZED" {
		t.Fatalf("events %v, want one UNAUTHORIZED error", c.events)
	}
	testenv.Eventually(t, wait, "the 401 in the request log", func() bool { return m.log.count(http.StatusUnauthorized) >= 1 })
	if got := m.log.count(http.StatusUnauthorized); got != 1 {
		t.Fatalf("%d handshakes refused with 401, want 1", got)
	}
}

func TestCloseEndsTheClient(t *testing.T) {
	t.Parallel()
	m := startLocalMode(t, "127.0.0.1:0", memory.New(), 0)
	c := startClient(t, m, nil)
	c.until(t, "open", func() bool { return c.opens() == 1 })
	if _, err := io.WriteString(c.stdin, "close\n"); err != nil {
		t.Fatal(err)
	}
	for c.next(t, "Node to exit") {
	}
	if got := strings.Join(c.states, " "); got != "open closed" {
		t.Fatalf("states %s", got)
	}
	testenv.Eventually(t, wait, "the server to let the connection go", func() bool { return m.srv.Hub().Len() == 0 })
}

func TestTheTypeDeclarationsFitTheModulesUse(t *testing.T) {
	tsc := filepath.Join(testenv.NodeModules(t), "typescript", "bin", "tsc")
	if _, err := os.Stat(tsc); err != nil {
		t.Fatalf("the TypeScript compiler is not installed at %s: run `make test` (it runs `npm ci` in infra/node)", tsc)
	}
	cmd := exec.Command(testenv.Node(t), tsc, "--noEmit", "--strict", "--target", "es2022", "--lib", "es2022,dom",
		"--module", "nodenext", "--moduleResolution", "nodenext", "test/types.ts")
	cmd.Dir = dir(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tsc test/types.ts: %v\n%s", err, out)
	}
}
