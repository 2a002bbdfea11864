package notify_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
)

// farSide is a notify.Handoff that runs the fan-out on a second Notifier
// over the same store and pusher, as the fan-out function does over the
// same table and Management API; err, when set, fails the hand-off instead.
type farSide struct {
	n       *notify.Notifier
	metrics *metricsLog
	err     error
	mu      sync.Mutex
	calls   []notify.Fanout
}

func (h *farSide) FanOut(ctx context.Context, f notify.Fanout) (notify.Result, error) {
	h.mu.Lock()
	h.calls = append(h.calls, f)
	h.mu.Unlock()
	if h.err != nil {
		return notify.Result{}, h.err
	}
	return h.n.FanOut(ctx, f)
}

// handoffFixture is a publisher that hands off above 2 connections.
func handoffFixture(t *testing.T) (*fixture, *farSide, *metricsLog) {
	t.Helper()
	far := &farSide{metrics: &metricsLog{}}
	m := &metricsLog{}
	f := newFixture(t, notify.Config{Handoff: far, HandoffAbove: 2, Metrics: m})
	far.n = notify.New(auth.NewAuthenticator(f.store), f.store, f.push, slog.New(slog.NewTextHandler(io.Discard, nil)),
		notify.Config{Metrics: far.metrics, Now: f.clock.Now})
	return f, far, m
}

func TestAPublishToMoreConnectionsThanTheThresholdIsHandedOff(t *testing.T) {
	ctx := context.Background()
	f, far, m := handoffFixture(t)
	for _, c := range []string{"c1", "c2", "c3"} {
		f.connect(t, "key-a", c, "conn-"+c)
	}
	f.connect(t, "key-b", "c1", "conn-b") // another owner's: never reached
	f.clock.Advance(time.Minute)          // past the connect grace: a 410 is gone
	f.push.SetGone("conn-c3")

	res, err := f.n.Publish(ctx, "owner-a", "", "rec-1", progress)
	if err != nil {
		t.Fatal(err)
	}
	if len(far.calls) != 1 {
		t.Fatalf("%d hand-offs, want 1", len(far.calls))
	}
	h := far.calls[0]
	if h.OwnerID != "owner-a" || h.ClientID != "" || h.Type != event.TypeJobProgress || h.ID != "rec-1" || h.Seq != 1 || h.Seq != res.Seq {
		t.Fatalf("hand-off %+v for result %+v", h, res)
	}
	want := `{"type":"job_progress","jobId":"job_1","progress":50,"processedCount":1,"totalCount":2,"currentFile":"a.pdf","id":"rec-1","seq":1}`
	for _, c := range []string{"conn-c1", "conn-c2"} {
		if got := f.push.Sent(c); len(got) != 1 || got[0] != want || string(h.Frame) != want {
			t.Fatalf("%s got %q, frame %s; want %s", c, got, h.Frame, want)
		}
	}
	if got := f.push.Sent("conn-b"); len(got) != 0 {
		t.Fatalf("another owner's connection got %q", got)
	}
	// The far side's counts come back; the gone record is removed there.
	if res.Delivered != 2 || res.Gone != 1 || res.Failed != 0 || res.ID != "rec-1" {
		t.Fatalf("result %+v, want 2 delivered, 1 gone", res)
	}
	if conns, _ := f.store.ListConnections(ctx, "owner-a", f.clock.Now()); len(conns) != 2 {
		t.Fatalf("%d records left, want 2 (the gone one removed)", len(conns))
	}
	// Reported once, by the publisher, with the far side's counts.
	if len(m.published) != 1 || m.published[0].Result.Delivered != 2 || m.published[0].Result.Gone != 1 {
		t.Fatalf("publisher's metrics %+v, want one publish of 2 delivered, 1 gone", m.published)
	}
	if len(far.metrics.published) != 0 {
		t.Fatalf("far side reported %d publishes, want none (the publisher reports them)", len(far.metrics.published))
	}

	// Down to 2 connections: sent from here, no hand-off.
	res, err = f.n.Publish(ctx, "owner-a", "", "rec-2", progress)
	if err != nil || res.Delivered != 2 || res.Seq != 2 {
		t.Fatalf("Publish = %+v, %v; want 2 delivered, seq 2", res, err)
	}
	if len(far.calls) != 1 {
		t.Fatalf("%d hand-offs after a publish to 2 connections, want still 1", len(far.calls))
	}
}

func TestAnEventToOneClientOfALargeOwnerReachesThatClientOnly(t *testing.T) {
	ctx := context.Background()
	f, far, _ := handoffFixture(t)
	for _, c := range []string{"c1", "c2", "c3"} {
		f.connect(t, "key-a", c, "conn-"+c)
	}
	res, err := f.n.Publish(ctx, "owner-a", "c2", "", progress)
	if err != nil || res.Delivered != 1 || res.Seq != 0 {
		t.Fatalf("Publish = %+v, %v; want 1 delivered, no seq", res, err)
	}
	if len(far.calls) != 1 || far.calls[0].ClientID != "c2" {
		t.Fatalf("hand-offs %+v, want one for c2", far.calls)
	}
	if f.push.Total() != 1 || len(f.push.Sent("conn-c2")) != 1 {
		t.Fatalf("%d posts, c2 got %q; want c2's one", f.push.Total(), f.push.Sent("conn-c2"))
	}
}

func TestAFailedHandOffFailsThePushes(t *testing.T) {
	ctx := context.Background()
	f, far, m := handoffFixture(t)
	for _, c := range []string{"c1", "c2", "c3"} {
		f.connect(t, "key-a", c, "conn-"+c)
	}
	far.err = errors.New("function error: Runtime.ExitError")

	res, err := f.n.Publish(ctx, "owner-a", "", "", progress)
	if err != nil || res.Failed != 3 || res.Delivered != 0 || res.Seq != 1 {
		t.Fatalf("Publish = %+v, %v; want 3 failed, seq 1 (kept before the hand-off)", res, err)
	}
	if len(m.published) != 1 || m.published[0].Result.Failed != 3 {
		t.Fatalf("metrics %+v, want one publish of 3 failed", m.published)
	}

	// In a batch, as failed pushes: the item is to be retried and the
	// rest of its group is held back.
	items := []notify.BatchItem{
		{OwnerID: "owner-a", ID: "r1", Event: progressOf("job_1", 10), Group: "job_1"},
		{OwnerID: "owner-a", ID: "r2", Event: progressOf("job_1", 20), Group: "job_1"},
	}
	results, errs := f.n.PublishBatch(ctx, items)
	if !errors.Is(errs[0], notify.ErrPushesFailed) || results[0].Failed != 3 || !errors.Is(errs[1], notify.ErrHeldBack) {
		t.Fatalf("batch = %+v, %v; want the first failed pushes, the second held back", results, errs)
	}
	if f.push.Total() != 0 {
		t.Fatalf("%d posts, want none", f.push.Total())
	}
}

func TestABatchHandsOffEachItemOfALargeOwner(t *testing.T) {
	ctx := context.Background()
	f, far, _ := handoffFixture(t)
	for _, c := range []string{"c1", "c2", "c3"} {
		f.connect(t, "key-a", c, "conn-"+c)
	}
	f.connect(t, "key-b", "c1", "conn-b")
	items := []notify.BatchItem{
		{OwnerID: "owner-a", ID: "r1", Event: progressOf("job_1", 10)},
		{OwnerID: "owner-b", ID: "r2", Event: progressOf("job_2", 10)},
		{OwnerID: "owner-a", ID: "r3", Event: progressOf("job_1", 20)},
	}
	results, errs := f.n.PublishBatch(ctx, items)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if len(far.calls) != 2 || far.calls[0].ID != "r1" || far.calls[1].ID != "r3" {
		t.Fatalf("hand-offs %+v, want r1 then r3", far.calls)
	}
	if results[0].Delivered != 3 || results[1].Delivered != 1 || results[2].Delivered != 3 {
		t.Fatalf("results %+v, want 3, 1 (sent from here), 3 delivered", results)
	}
	for _, c := range []string{"conn-c1", "conn-c2", "conn-c3"} {
		if got := f.push.Sent(c); len(got) != 2 {
			t.Fatalf("%s got %d events, want 2", c, len(got))
		}
	}
}

func TestFanOutRefusesAnIncompleteRequest(t *testing.T) {
	f := newFixture(t, notify.Config{})
	for _, fo := range []notify.Fanout{{ID: "x", Frame: []byte("{}")}, {OwnerID: "owner-a", Frame: []byte("{}")}, {OwnerID: "owner-a", ID: "x"}} {
		if _, err := f.n.FanOut(context.Background(), fo); notify.ErrorCode(err) != notify.CodeInvalid {
			t.Fatalf("FanOut(%+v) = %v, want CodeInvalid", fo, err)
		}
	}
}
