package notify_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/notify/notifytest"
	"github.com/wsnotify/wsnotify/shared/store"
	"github.com/wsnotify/wsnotify/shared/store/memory"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	n     *notify.Notifier
	store *memory.Store
	push  *notifytest.Recorder
	clock *clock
}

var keys = map[string]string{"key-a": "owner-a", "key-b": "owner-b"}

func newFixture(t testing.TB, cfg notify.Config) *fixture {
	t.Helper()
	s := memory.New()
	for k, owner := range keys {
		if err := s.PutKey(context.Background(), auth.Key{Hash: auth.Hash(k), OwnerID: owner}); err != nil {
			t.Fatal(err)
		}
	}
	c := &clock{now: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	cfg.Now = c.Now
	p := notifytest.NewRecorder()
	n := notify.New(auth.NewAuthenticator(s), s, p, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)
	return &fixture{n: n, store: s, push: p, clock: c}
}

func (f *fixture) connect(t testing.TB, key, client, conn string) {
	t.Helper()
	if _, err := f.n.Connect(context.Background(), notify.ConnectRequest{Token: key, ClientID: client, ConnectionID: conn}); err != nil {
		t.Fatalf("connect %s/%s: %v", client, conn, err)
	}
}

var progress = event.JobProgress{Type: event.TypeJobProgress, JobID: "job_1", Progress: 50, ProcessedCount: 1, TotalCount: 2, CurrentFile: "a.pdf"}

const progressJSON = `{"type":"job_progress","jobId":"job_1","progress":50,"processedCount":1,"totalCount":2,"currentFile":"a.pdf"}`

func TestConnect(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		setup    func(f *fixture)
		req      notify.ConnectRequest
		wantCode notify.Code // "" means success
	}{
		{name: "a good key and client id register the connection",
			req: notify.ConnectRequest{Token: "key-a", ClientID: "c1", ConnectionID: "conn1"}},
		{name: "a bad client id is refused before the key is checked",
			req:      notify.ConnectRequest{Token: "nope", ClientID: "a/b", ConnectionID: "conn1"},
			wantCode: notify.CodeInvalid},
		{name: "a missing token is unauthorized",
			req:      notify.ConnectRequest{ClientID: "c1", ConnectionID: "conn1"},
			wantCode: notify.CodeUnauthorized},
		{name: "a wrong token is unauthorized",
			req:      notify.ConnectRequest{Token: "key-z", ClientID: "c1", ConnectionID: "conn1"},
			wantCode: notify.CodeUnauthorized},
		{name: "a live client id of the same owner is a conflict",
			setup: func(f *fixture) {
				f.connect(t, "key-a", "c1", "old")
				f.clock.Advance(time.Hour)
			},
			req:      notify.ConnectRequest{Token: "key-a", ClientID: "c1", ConnectionID: "new"},
			wantCode: notify.CodeConflict},
		{name: "a just-connected client id is a conflict even if the API says gone (handshake window)",
			setup: func(f *fixture) {
				f.connect(t, "key-a", "c1", "old")
				f.push.SetGone("old")
			},
			req:      notify.ConnectRequest{Token: "key-a", ClientID: "c1", ConnectionID: "new"},
			wantCode: notify.CodeConflict},
		{name: "a client id whose connection is gone is taken over",
			setup: func(f *fixture) {
				f.connect(t, "key-a", "c1", "old")
				f.push.SetGone("old")
				f.clock.Advance(time.Minute)
			},
			req: notify.ConnectRequest{Token: "key-a", ClientID: "c1", ConnectionID: "new"}},
		{name: "a client id whose record expired is taken over",
			setup: func(f *fixture) {
				f.connect(t, "key-a", "c1", "old")
				f.clock.Advance(3 * time.Hour)
			},
			req: notify.ConnectRequest{Token: "key-a", ClientID: "c1", ConnectionID: "new"}},
		{name: "the same client id under another owner is fine",
			setup: func(f *fixture) { f.connect(t, "key-b", "c1", "other") },
			req:   notify.ConnectRequest{Token: "key-a", ClientID: "c1", ConnectionID: "new"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, notify.Config{})
			if tt.setup != nil {
				tt.setup(f)
			}
			c, err := f.n.Connect(ctx, tt.req)
			if tt.wantCode != "" {
				if notify.ErrorCode(err) != tt.wantCode {
					t.Fatalf("Connect error = %v, want code %s", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			conns, _ := f.store.ListConnections(ctx, c.OwnerID, f.clock.Now())
			if len(conns) != 1 || conns[0].ConnectionID != tt.req.ConnectionID {
				t.Fatalf("owner's records = %+v, want only %s", conns, tt.req.ConnectionID)
			}
		})
	}
}

func TestDisconnectFreesTheClientIDAndToleratesUnknownIDs(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, notify.Config{})
	f.connect(t, "key-a", "c1", "conn1")
	if err := f.n.Disconnect(ctx, "conn1"); err != nil {
		t.Fatal(err)
	}
	if err := f.n.Disconnect(ctx, "conn1"); err != nil {
		t.Fatalf("second disconnect: %v", err)
	}
	f.connect(t, "key-a", "c1", "conn2")
}

func TestPublishReachesOnlyTheOwnersConnections(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, notify.Config{})
	f.connect(t, "key-a", "c1", "a1")
	f.connect(t, "key-a", "c2", "a2")
	f.connect(t, "key-b", "c1", "b1")

	res, err := f.n.Publish(ctx, "owner-a", "", "", progress)
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivered != 2 || res.Gone+res.Connecting+res.Failed != 0 || res.Seq != 1 || !strings.HasPrefix(res.ID, "evt_") {
		t.Fatalf("result = %+v, want 2 delivered as the owner's event 1", res)
	}
	for _, id := range []string{"a1", "a2"} {
		if got := f.push.Sent(id); len(got) != 1 || got[0] != string(event.Stamp([]byte(progressJSON), res.ID, 1)) {
			t.Errorf("%s got %q", id, got)
		}
	}
	if got := f.push.Sent("b1"); len(got) != 0 {
		t.Fatalf("another owner's connection got %q", got)
	}

	t.Run("a client id narrows it to that client", func(t *testing.T) {
		res, err := f.n.Publish(ctx, "owner-a", "c2", "", progress)
		if err != nil || res.Delivered != 1 {
			t.Fatalf("Publish = %+v, %v", res, err)
		}
		if len(f.push.Sent("a1")) != 1 || len(f.push.Sent("a2")) != 2 || len(f.push.Sent("b1")) != 0 {
			t.Fatal("a targeted event reached a connection it was not for")
		}
	})
	t.Run("an owner with no connections is not an error", func(t *testing.T) {
		res, err := f.n.Publish(ctx, "owner-nobody", "", "", progress)
		if err != nil || res.Delivered+res.Gone+res.Connecting+res.Failed != 0 {
			t.Fatalf("Publish = %+v, %v", res, err)
		}
	})
}

func TestPublishCleansUpGoneConnectionsAndCountsFailures(t *testing.T) {
	ctx := context.Background()
	m := &metricsLog{}
	f := newFixture(t, notify.Config{Metrics: m})
	f.connect(t, "key-a", "old-gone", "g1")
	f.clock.Advance(time.Minute)
	f.connect(t, "key-a", "young-gone", "g2")
	f.connect(t, "key-a", "broken", "x1")
	f.connect(t, "key-a", "fine", "ok1")
	f.push.SetGone("g1")
	f.push.SetGone("g2")
	f.push.Fail = func(id string) error {
		if id == "x1" {
			return errors.New("throttled after retries")
		}
		return nil
	}

	res, err := f.n.Publish(ctx, "owner-a", "", "", progress)
	if err != nil {
		t.Fatal(err)
	}
	if want := (notify.Result{ID: res.ID, Seq: res.Seq, Delivered: 1, Gone: 1, Connecting: 1, Failed: 1}); res != want {
		t.Fatalf("result = %+v, want %+v", res, want)
	}
	// Counted once, with its outcome and the bytes delivered.
	size := int64(len(f.push.Sent("ok1")[0]))
	if len(m.published) != 1 {
		t.Fatalf("%d publishes counted, want 1", len(m.published))
	}
	if p := m.published[0]; p.Type != event.TypeJobProgress || p.Result != res || p.Bytes != size || p.Duration <= 0 {
		t.Fatalf("counted %+v, want job_progress, the result %+v, %d bytes (one delivery) and a duration", p, res, size)
	}
	conns, _ := f.store.ListConnections(ctx, "owner-a", f.clock.Now())
	var ids []string
	for _, c := range conns {
		ids = append(ids, c.ConnectionID)
	}
	if got := strings.Join(ids, ","); got != "x1,ok1,g2" && !sameSet(ids, []string{"x1", "ok1", "g2"}) {
		t.Fatalf("records left = %s: want the gone one removed, the young and the failing ones kept", got)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}

func TestPublishRefusesInvalidAndOversizedEvents(t *testing.T) {
	m := &metricsLog{}
	f := newFixture(t, notify.Config{MaxMessageBytes: 200, Metrics: m})
	f.connect(t, "key-a", "c1", "a1")
	for name, ev := range map[string]event.Event{
		"invalid":   event.JobProgress{Type: event.TypeJobProgress, JobID: "j", Progress: 200},
		"oversized": event.FileUploaded{Type: event.TypeFileUploaded, FileID: "f", Name: strings.Repeat("n", 200), Size: 1},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := f.n.Publish(context.Background(), "owner-a", "", "", ev)
			if notify.ErrorCode(err) != notify.CodeInvalid {
				t.Fatalf("err = %v, want BAD_REQUEST", err)
			}
		})
	}
	if f.push.Total() != 0 || len(m.published) != 0 {
		t.Fatalf("a refused event was sent (%d) or counted as published (%d)", f.push.Total(), len(m.published))
	}
	// Nor kept for a resume to replay.
	if held, w, err := f.store.EventsSince(context.Background(), "owner-a", 0, 10, 100, f.clock.Now()); err != nil || len(held) != 0 || w.Head != 0 {
		t.Fatalf("the owner's history holds %d events (head %d, %v) after refusals", len(held), w.Head, err)
	}
}

// blockingPusher holds every post until released, tracks how many are in
// flight, and reports each one's start on started.
type blockingPusher struct {
	inFlight, peak atomic.Int64
	started        chan struct{}
	release        chan struct{}
}

func (p *blockingPusher) Post(ctx context.Context, _ string, _ []byte) error {
	n := p.inFlight.Add(1)
	p.started <- struct{}{}
	for {
		peak := p.peak.Load()
		if n <= peak || p.peak.CompareAndSwap(peak, n) {
			break
		}
	}
	defer p.inFlight.Add(-1)
	select {
	case <-p.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *blockingPusher) Alive(context.Context, string) (bool, error) { return true, nil }

func TestPublishBoundsConcurrentPushes(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	_ = s.PutKey(ctx, auth.Key{Hash: auth.Hash("k"), OwnerID: "o"})
	p := &blockingPusher{started: make(chan struct{}, 10), release: make(chan struct{})}
	n := notify.New(auth.NewAuthenticator(s), s, p, slog.New(slog.NewTextHandler(io.Discard, nil)), notify.Config{Concurrency: 3})
	for i := range 10 {
		if _, err := n.Connect(ctx, notify.ConnectRequest{Token: "k", ClientID: fmt.Sprint("c", i), ConnectionID: fmt.Sprint("id", i)}); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan notify.Result)
	go func() {
		res, _ := n.Publish(ctx, "o", "", "", progress)
		done <- res
	}()
	deadline := time.After(5 * time.Second)
	for i := range 3 {
		select {
		case <-p.started:
		case <-deadline:
			t.Fatalf("only %d pushes started", i)
		}
	}
	close(p.release)
	res := <-done
	if res.Delivered != 10 {
		t.Fatalf("delivered %d, want 10", res.Delivered)
	}
	if peak := p.peak.Load(); peak != 3 {
		t.Fatalf("peak concurrency %d, want exactly the limit 3", peak)
	}
}

type discardPusher struct{}

func (discardPusher) Post(context.Context, string, []byte) error  { return nil }
func (discardPusher) Alive(context.Context, string) (bool, error) { return true, nil }

// BenchmarkPublish measures one publish to an owner holding n connections,
// with the memory store and a pusher that discards: the notifier's own cost.
func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{1, 100, 5000} {
		b.Run(fmt.Sprintf("connections=%d", n), func(b *testing.B) {
			ctx := context.Background()
			s := memory.New()
			_ = s.PutKey(ctx, auth.Key{Hash: auth.Hash("k"), OwnerID: "o"})
			nt := notify.New(auth.NewAuthenticator(s), s, discardPusher{}, slog.New(slog.NewTextHandler(io.Discard, nil)), notify.Config{})
			for i := range n {
				if err := s.PutConnection(ctx, store.Connection{OwnerID: "o", ClientID: fmt.Sprint("c", i), ConnectionID: fmt.Sprint("id", i),
					ConnectedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := nt.Publish(ctx, "o", "", "", progress); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestConnectLimits(t *testing.T) {
	ctx := context.Background()
	t.Run("connects over a key's burst are refused with 429 before any write, and allowed again as tokens return", func(t *testing.T) {
		f := newFixture(t, notify.Config{ConnectRate: 2, ConnectBurst: 3})
		for i := range 3 {
			f.connect(t, "key-a", fmt.Sprint("c", i), fmt.Sprint("id", i))
		}
		_, err := f.n.Connect(ctx, notify.ConnectRequest{Token: "key-a", ClientID: "c3", ConnectionID: "id3"})
		if notify.ErrorCode(err) != notify.CodeRateLimited {
			t.Fatalf("fourth connect: %v, want RATE_LIMITED", err)
		}
		if f.store.Len() != 3 {
			t.Fatalf("%d records, want 3: a limited connect wrote", f.store.Len())
		}
		f.connect(t, "key-b", "c0", "other-key") // another key has its own bucket
		f.clock.Advance(500 * time.Millisecond)  // one token at 2/s
		f.connect(t, "key-a", "c3", "id3")
	})
	t.Run("an owner at its connection cap is refused with 403 until one disconnects", func(t *testing.T) {
		f := newFixture(t, notify.Config{MaxConnectionsPerOwner: 2})
		f.connect(t, "key-a", "c0", "id0")
		f.connect(t, "key-a", "c1", "id1")
		_, err := f.n.Connect(ctx, notify.ConnectRequest{Token: "key-a", ClientID: "c2", ConnectionID: "id2"})
		if notify.ErrorCode(err) != notify.CodeForbidden || !strings.Contains(err.Error(), "limit of 2") {
			t.Fatalf("third connect: %v, want FORBIDDEN naming the limit", err)
		}
		f.connect(t, "key-b", "c2", "other-owner") // the cap is per owner
		if err := f.n.Disconnect(ctx, "id0"); err != nil {
			t.Fatal(err)
		}
		f.connect(t, "key-a", "c2", "id2")
	})
}

// releaseCounter is a memory store that records each ReleaseConnections.
type releaseCounter struct {
	*memory.Store
	mu    sync.Mutex
	calls []int
}

func (s *releaseCounter) ReleaseConnections(ctx context.Context, owner string, k int) error {
	s.mu.Lock()
	s.calls = append(s.calls, k)
	s.mu.Unlock()
	return s.Store.ReleaseConnections(ctx, owner, k)
}

func TestAFanOutCountsOutItsGoneConnectionsInOneWrite(t *testing.T) {
	s := &releaseCounter{Store: memory.New()}
	if err := s.PutKey(context.Background(), auth.Key{Hash: auth.Hash("key-a"), OwnerID: "owner-a"}); err != nil {
		t.Fatal(err)
	}
	c := &clock{now: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	p := notifytest.NewRecorder()
	n := notify.New(auth.NewAuthenticator(s), s, p, slog.New(slog.DiscardHandler), notify.Config{Now: c.Now})
	for i := range 5 {
		if _, err := n.Connect(context.Background(), notify.ConnectRequest{Token: "key-a", ClientID: fmt.Sprintf("c%d", i), ConnectionID: fmt.Sprintf("conn%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(time.Minute) // past the connect grace: a 410 removes the record
	for i := range 3 {
		p.SetGone(fmt.Sprintf("conn%d", i))
	}
	res, err := n.Publish(context.Background(), "owner-a", "", "", progress)
	if err != nil || res.Gone != 3 || res.Delivered != 2 {
		t.Fatalf("Publish = %+v, %v; want 3 gone, 2 delivered", res, err)
	}
	if !slices.Equal(s.calls, []int{3}) {
		t.Errorf("releases %v, want one of 3 for the three gone connections", s.calls)
	}
	if got, err := s.ConnectionCount(context.Background(), "owner-a"); err != nil || got != 2 {
		t.Errorf("count %d (%v) after the fan-out, want the 2 live", got, err)
	}
}
