package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/infra/local/server"
	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/metrics"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/push/hub"
	"github.com/wsnotify/wsnotify/shared/store"
	"github.com/wsnotify/wsnotify/shared/store/memory"
)

// logLine is one record a logRecorder kept: its message and its attributes,
// those of the logger's With included, as strings.
type logLine struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// logRecorder is a slog.Handler that keeps every record, so a test can wait
// for what the server logs.
type logRecorder struct {
	*logLines // shared with the recorders WithAttrs makes
	attrs     []slog.Attr
}

type logLines struct {
	mu    sync.Mutex
	lines []logLine
	added chan struct{} // closed by the next Handle; nil: nobody waits
}

func newLogRecorder() *logRecorder {
	return &logRecorder{logLines: &logLines{}}
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	line := logLine{Level: rec.Level, Msg: rec.Message, Attrs: map[string]string{}}
	for _, a := range r.attrs {
		line.Attrs[a.Key] = a.Value.String()
	}
	rec.Attrs(func(a slog.Attr) bool {
		line.Attrs[a.Key] = a.Value.String()
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, line)
	if r.added != nil {
		close(r.added)
		r.added = nil
	}
	return nil
}

func (r *logRecorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logRecorder{logLines: r.logLines, attrs: append(append([]slog.Attr{}, r.attrs...), attrs...)}
}

func (r *logRecorder) WithGroup(string) slog.Handler { return r }

// find returns the first line with msg whose attributes include want, or
// a channel the next line closes.
func (r *logLines) find(msg string, want map[string]string) (logLine, bool, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if l.Msg != msg {
			continue
		}
		match := true
		for k, v := range want {
			if l.Attrs[k] != v {
				match = false
				break
			}
		}
		if match {
			return l, true, nil
		}
	}
	if r.added == nil {
		r.added = make(chan struct{})
	}
	return logLine{}, false, r.added
}

// waitLog waits until the server has logged msg with the attributes want,
// looking again at each line it logs, for at most wait.
func (r *logRecorder) waitLog(t *testing.T, msg string, want map[string]string) logLine {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		line, ok, added := r.find(msg, want)
		if ok {
			return line
		}
		select {
		case <-added:
		case <-deadline.C:
			t.Fatalf("timed out waiting for the log line %q %v", msg, want)
		}
	}
}

// hasRecord reports whether owner's clientID has a connection record.
func (h *harness) hasRecord(t *testing.T, owner, clientID string) bool {
	t.Helper()
	_, ok := h.record(t, owner, clientID)
	return ok
}

// appPing sends {"action":"ping"} and reads the pong: a data message, the
// kind that keeps a connection from being idle.
func appPing(t *testing.T, c *asyncapi.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"action":"ping"}`)); err != nil {
		t.Fatalf("send ping: %v", err)
	}
	if m := read(t, c); m["type"] != "pong" {
		t.Fatalf("got %v, want pong", m)
	}
}

func TestAnIdleConnectionClosesAndOnlyDataMessagesKeepItOpen(t *testing.T) {
	t.Parallel()
	// Long enough that a noisy machine never starves the active client of a
	// ping for that long (it pings every 100 ms), short enough for a test.
	const idle = 1500 * time.Millisecond
	cfg := twoOwners()
	cfg.Connections.IdleTimeout = idle
	h := start(t, cfg)

	active := h.connect(t, "active", keyA)
	pinger := h.connect(t, "pinger", keyA)
	connected := time.Now()
	// The pinger sends only WebSocket pings. Its reader answers them (a
	// coder/websocket Ping needs one) and reports how the connection ended.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ended := make(chan error, 1)
	go func() {
		_, _, err := pinger.Read(ctx)
		ended <- err
	}()
	pingerEnded := ended // nil once received: a nil channel is never ready

	var pingerErr error
	var pingerClosedAfter time.Duration
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(idle + wait)
	for pingerErr == nil || time.Since(connected) < 2*idle {
		select {
		case <-deadline:
			t.Fatal("the pinger, sending only protocol pings, was never closed as idle")
		case pingerErr = <-pingerEnded:
			pingerClosedAfter = time.Since(connected)
			pingerEnded = nil // closed: never ready again
		case <-tick.C:
			appPing(t, active)
			if pingerErr == nil {
				pctx, pcancel := context.WithTimeout(ctx, wait)
				_ = pinger.Ping(pctx) // fails once the server has closed it
				pcancel()
			}
		}
	}

	t.Run("the client sending only protocol pings is closed with 1001 idle timeout", func(t *testing.T) {
		if ce := closeOf(t, pingerErr); ce.Code != websocket.StatusGoingAway || ce.Reason != "idle timeout" {
			t.Fatalf("closed with %v, want 1001 idle timeout", ce)
		}
		if pingerClosedAfter < idle/2 || pingerClosedAfter > 2*idle {
			t.Fatalf("closed after %v; want it within a factor 2 of the %v idle timeout", pingerClosedAfter, idle)
		}
	})
	t.Run("its $disconnect ran and its client id is free again", func(t *testing.T) {
		eventually(t, "the pinger's record to go", func() bool { return !h.hasRecord(t, ownerA, "pinger") })
		appPing(t, h.connect(t, "pinger", keyA))
	})
	t.Run("the client sending ping actions is still open after twice the idle timeout", func(t *testing.T) {
		appPing(t, active)
	})
}

func TestEveryConnectionClosesAtItsMaximumAgeWhateverItsTraffic(t *testing.T) {
	t.Parallel()
	const age = time.Second
	cfg := twoOwners()
	cfg.Connections.MaxAge = age
	h := start(t, cfg)
	c := h.connect(t, "old", keyA)
	connected := time.Now()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ended := make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.Read(ctx); err != nil {
				ended <- err
				return
			}
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(age + wait)
	var err error
	for err == nil {
		select {
		case err = <-ended:
		case <-tick.C:
			// Activity does not matter: API Gateway ends every connection at 2 h.
			_ = c.Write(ctx, websocket.MessageText, []byte(`{"action":"ping"}`))
		case <-deadline:
			t.Fatal("the connection was not closed at its maximum age")
		}
	}
	closedAfter := time.Since(connected)
	if ce := closeOf(t, err); ce.Code != websocket.StatusGoingAway || ce.Reason != "maximum connection age" {
		t.Fatalf("closed with %v, want 1001 maximum connection age", ce)
	}
	if closedAfter < age/2 || closedAfter > 2*age {
		t.Fatalf("closed after %v; want it within a factor 2 of its maximum age %v", closedAfter, age)
	}
	eventually(t, "the record to go", func() bool { return !h.hasRecord(t, ownerA, "old") })
	appPing(t, h.connect(t, "old", keyA))
}

// seqEvent is job event number n of a sequence, as a trigger envelope for
// owner: processedCount carries n. Each is a job of its own, so that none
// supersedes another in its batch.
func seqEvent(owner string, n int) string {
	return envelope(owner, "", fmt.Sprintf(
		`{"type":"job_progress","jobId":"job_seq_%d","progress":0,"processedCount":%d,"totalCount":1000000,"currentFile":"f.pdf"}`, n, n))
}

// seqReader reads a client's events in a goroutine and checks they are
// seqEvents 1, 2, 3… in order, with none missing.
type seqReader struct {
	last atomic.Int64
	err  atomic.Pointer[error]
	done chan struct{}
}

func readSeq(ctx context.Context, c *asyncapi.Conn) *seqReader {
	r := &seqReader{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for want := int64(1); ; want++ {
			_, data, err := c.Read(ctx)
			if err != nil {
				if ctx.Err() == nil {
					r.err.Store(&err)
				}
				return
			}
			var ev struct {
				ProcessedCount int64 `json:"processedCount"`
			}
			if err := json.Unmarshal(data, &ev); err != nil || ev.ProcessedCount != want {
				err = fmt.Errorf("got %s, want event %d", data, want)
				r.err.Store(&err)
				return
			}
			r.last.Store(want)
		}
	}()
	return r
}

func (r *seqReader) failure() error {
	if p := r.err.Load(); p != nil {
		return *p
	}
	return nil
}

func TestAStalledClientIsClosedWhileTwentyHealthyOnesGetEveryEventInOrder(t *testing.T) {
	t.Parallel()
	logs := newLogRecorder()
	h := start(t, server.Config{
		APIKeys: map[string]string{keyA: ownerA},
		// Small bounds, so that once the stalled client's socket buffers
		// are full (a few MB on loopback) its queue overflows quickly; the
		// byte bound, two messages of the largest size, is the one reached.
		// The write timeout is far longer than the wait for the close: the
		// socket of a client closed as a slow consumer is dropped after the
		// 2 s cutoff, not after a write times out.
		Connections: hub.Config{QueueMessages: 64, QueueBytes: 2 * notify.MaxMessageBytes, WriteTimeout: 5 * time.Minute},
		Logger:      slog.New(logs),
	})
	const healthy = 20
	ctx, cancel := context.WithCancel(context.Background())
	readers := make([]*seqReader, healthy)
	for i := range healthy {
		readers[i] = readSeq(ctx, h.connect(t, fmt.Sprintf("healthy-%02d", i), keyA))
	}
	defer func() {
		cancel()
		for _, r := range readers {
			<-r.done
		}
	}()
	// The stalled client never reads: what the server sends piles up in the
	// kernel's socket buffers until its writes block, then in its queue.
	h.connect(t, "stalled", keyA)
	stalledID := h.connectionID(t, ownerA, "stalled")

	// Each round publishes five events to every connection of the owner and
	// posts a message of the largest size to the stalled one, until the
	// Management API answers that it is gone.
	filler := `"` + strings.Repeat("x", notify.MaxMessageBytes-2) + `"`
	post := func() int {
		resp, err := http.Post(h.base+"/@connections/"+url.PathEscape(stalledID), "application/json", strings.NewReader(filler))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	sent := 0
	publish := func(n int) {
		t.Helper()
		var bodies []string
		for range n {
			sent++
			bodies = append(bodies, seqEvent(ownerA, sent))
		}
		if failed := h.publishJobs(t, bodies...); len(failed) > 0 {
			t.Fatalf("batchItemFailures %v: a slow consumer must not fail the publish", failed)
		}
	}
	rounds := 0
	for status := http.StatusOK; status != http.StatusGone; rounds++ {
		if status != http.StatusOK {
			t.Fatalf("post to the stalled client: status %d", status)
		}
		if rounds == 500 {
			t.Fatal("the stalled client was never closed")
		}
		publish(5)
		status = post()
	}
	publish(10) // after the stalled client was cut off
	t.Logf("the stalled client was closed after %d rounds; %d events published", rounds, sent)

	t.Run("every healthy client gets every event, in order", func(t *testing.T) {
		eventually(t, "every healthy client to read every event", func() bool {
			for i, r := range readers {
				if err := r.failure(); err != nil {
					t.Fatalf("healthy-%02d: %v", i, err)
				}
				if r.last.Load() != int64(sent) {
					return false
				}
			}
			return true
		})
	})
	t.Run("the stalled client is closed as a slow consumer and its $disconnect runs", func(t *testing.T) {
		logs.waitLog(t, "websocket closed", map[string]string{"connectionId": stalledID, "code": "1013", "reason": "slow consumer"})
		// That line comes once $disconnect has run; the hub lets the
		// connection go just after it.
		if h.hasRecord(t, ownerA, "stalled") {
			t.Error("the stalled client's record is left")
		}
		eventually(t, "the hub to hold only the healthy connections", func() bool { return h.srv.Hub().Len() == healthy })
	})
	t.Run("/metrics counts the slow-consumer close", func(t *testing.T) {
		s := h.scrape(t)
		if s.Get(metrics.SlowConsumerCloses) != 1 || s.Get(metrics.LiveConnections) != healthy {
			t.Fatalf("slow consumer closes %v, live %v; want 1 and %d", s.Get(metrics.SlowConsumerCloses), s.Get(metrics.LiveConnections), healthy)
		}
	})
	t.Run("its client id is free again", func(t *testing.T) {
		appPing(t, h.connect(t, "stalled", keyA))
	})
}

// countingStore is the memory store counting the writes that register a
// connection (stored: those that did), and the key lookups, the first thing
// $connect does.
type countingStore struct {
	*memory.Store
	writes  atomic.Int64
	stored  atomic.Int64
	lookups atomic.Int64
}

func (s *countingStore) LookupKey(ctx context.Context, hash string) (auth.Key, error) {
	s.lookups.Add(1)
	return s.Store.LookupKey(ctx, hash)
}

func (s *countingStore) PutConnection(ctx context.Context, c store.Connection, now time.Time) error {
	s.writes.Add(1)
	err := s.Store.PutConnection(ctx, c, now)
	if err == nil {
		s.stored.Add(1)
	}
	return err
}

func (s *countingStore) ReplaceConnection(ctx context.Context, c store.Connection, old string) error {
	s.writes.Add(1)
	err := s.Store.ReplaceConnection(ctx, c, old)
	if err == nil {
		s.stored.Add(1)
	}
	return err
}

// refusal dials and returns the refused handshake's status and error event.
func refusal(t *testing.T, h *harness, clientID, token string) (int, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, resp, err := h.dial(ctx, clientID, token)
	if err == nil {
		c.CloseNow()
		t.Fatalf("%s connected, want a refusal", clientID)
	}
	if resp == nil {
		t.Fatalf("%s: no response: %v", clientID, err)
	}
	body, _ := io.ReadAll(resp.Body)
	var e map[string]any
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("%s: status %d, body %q is not JSON", clientID, resp.StatusCode, body)
	}
	return resp.StatusCode, e
}

func TestConnectsOverTheBurstAreRefusedWith429BeforeAnyStoreWrite(t *testing.T) {
	t.Parallel()
	st := &countingStore{Store: memory.New()}
	cfg := twoOwners()
	cfg.Store = st
	// A rate so low that no token comes back during the test.
	cfg.Notify = notify.Config{ConnectRate: 0.001, ConnectBurst: 3}
	h := start(t, cfg)
	for i := range 3 {
		h.connect(t, fmt.Sprintf("c%d", i), keyA)
	}
	if n := st.writes.Load(); n != 3 {
		t.Fatalf("%d store writes for 3 connects", n)
	}

	status, e := refusal(t, h, "c3", keyA)
	if status != http.StatusTooManyRequests || e["code"] != "RATE_LIMITED" || e["type"] != "error" {
		t.Fatalf("4th connect: %d %v, want 429 RATE_LIMITED", status, e)
	}
	if n := st.writes.Load(); n != 3 {
		t.Errorf("%d store writes after the refused connect, want 3", n)
	}
	if h.hasRecord(t, ownerA, "c3") {
		t.Error("the refused client has a record")
	}
	t.Run("the limit is per API key: another key still connects", func(t *testing.T) {
		h.connect(t, "c3", keyB)
	})
}

func TestConnectsOverTheOwnerCapAreRefusedWith403AndAReason(t *testing.T) {
	t.Parallel()
	cfg := twoOwners()
	cfg.Notify = notify.Config{MaxConnectionsPerOwner: 2}
	h := start(t, cfg)
	first := h.connect(t, "one", keyA)
	h.connect(t, "two", keyA)

	status, e := refusal(t, h, "three", keyA)
	reason, _ := e["error"].(string)
	if status != http.StatusForbidden || e["code"] != "FORBIDDEN" || !strings.Contains(reason, "limit of 2 live connections") {
		t.Fatalf("3rd connect: %d %v, want 403 FORBIDDEN naming the limit", status, e)
	}
	t.Run("another owner is not affected", func(t *testing.T) {
		h.connect(t, "three", keyB)
	})
	t.Run("a place freed by a disconnect can be taken", func(t *testing.T) {
		if err := first.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the disconnect", func() bool { return !h.hasRecord(t, ownerA, "one") })
		h.connect(t, "three", keyA)
	})
}

func TestAPostOverTheMessageLimitIsRefusedWith413AndLogged(t *testing.T) {
	t.Parallel()
	logs := newLogRecorder()
	cfg := twoOwners()
	cfg.Logger = slog.New(logs)
	h := start(t, cfg)
	c := h.connect(t, "big", keyA)
	id := h.connectionID(t, ownerA, "big")
	post := func(size int) *http.Response {
		t.Helper()
		body := `"` + strings.Repeat("x", size-2) + `"`
		resp, err := http.Post(h.base+"/local/@connections/"+url.PathEscape(id), "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	t.Run("a message of exactly 128 KB is delivered", func(t *testing.T) {
		if resp := post(notify.MaxMessageBytes); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if _, data, err := c.ReadUnchecked(ctx); err != nil || len(data) != notify.MaxMessageBytes { // the posted bytes
			t.Fatalf("read %d bytes, %v", len(data), err)
		}
	})
	t.Run("one byte more is a PayloadTooLargeException", func(t *testing.T) {
		resp := post(notify.MaxMessageBytes + 1)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("x-amzn-ErrorType") != "PayloadTooLargeException" {
			t.Fatalf("status %d, error type %q", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
		}
	})
	t.Run("the pusher logs the refusal with the connection and the size", func(t *testing.T) {
		line := logs.waitLog(t, "message over the size limit not sent", map[string]string{"connectionId": id})
		if line.Level != slog.LevelError || line.Attrs["bytes"] != fmt.Sprint(notify.MaxMessageBytes+1) || line.Attrs["limit"] != fmt.Sprint(notify.MaxMessageBytes) {
			t.Fatalf("log line %+v", line)
		}
	})
	t.Run("the connection stays open", func(t *testing.T) {
		appPing(t, c)
	})
}
