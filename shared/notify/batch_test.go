package notify_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/store"
	"github.com/wsnotify/wsnotify/shared/store/memory"
)

// listingStore counts the lists of each owner's records, and runs
// onRecord (when set) as each event is recorded, before the record.
type listingStore struct {
	*memory.Store
	mu       sync.Mutex
	lists    map[string]int
	onRecord func(e store.Event)
}

func (s *listingStore) ListConnections(ctx context.Context, owner string, now time.Time) ([]store.Connection, error) {
	s.mu.Lock()
	s.lists[owner]++
	s.mu.Unlock()
	return s.Store.ListConnections(ctx, owner, now)
}

func (s *listingStore) RecordEvent(ctx context.Context, e store.Event, keep int, now time.Time) (store.Event, bool, error) {
	if s.onRecord != nil {
		s.onRecord(e)
	}
	return s.Store.RecordEvent(ctx, e, keep, now)
}

func newListingFixture(t *testing.T) (*fixture, *listingStore) {
	t.Helper()
	f := newFixture(t, notify.Config{})
	ls := &listingStore{Store: f.store, lists: map[string]int{}}
	f.n = notify.New(auth.NewAuthenticator(f.store), ls, f.push, slog.New(slog.DiscardHandler), notify.Config{Now: f.clock.Now})
	return f, ls
}

func progressOf(job string, pct float64) event.JobProgress {
	return event.JobProgress{Type: event.TypeJobProgress, JobID: job, Progress: pct, ProcessedCount: 1, TotalCount: 2}
}

func TestPublishBatchListsEachOwnersConnectionsOnce(t *testing.T) {
	f, ls := newListingFixture(t)
	f.connect(t, "key-a", "a1", "conn-a1")
	f.connect(t, "key-a", "a2", "conn-a2")
	f.connect(t, "key-b", "b1", "conn-b1")
	var items []notify.BatchItem
	for i := range 10 {
		owner := "owner-a"
		if i%3 == 2 {
			owner = "owner-b"
		}
		items = append(items, notify.BatchItem{OwnerID: owner, ID: fmt.Sprint("evt-", i), Event: progressOf(fmt.Sprint("job_", i), float64(10*i)), Group: fmt.Sprint("job_", i)})
	}
	items = append(items, notify.BatchItem{OwnerID: "owner-a", ClientID: "a2", ID: "evt-to-a2", Event: progressOf("job_x", 1)})
	res, errs := f.n.PublishBatch(context.Background(), items)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
	}
	if ls.lists["owner-a"] != 1 || ls.lists["owner-b"] != 1 {
		t.Fatalf("lists %v, want one per owner", ls.lists)
	}
	// Each connection got its owner's events in batch order, numbered in
	// that order; the client-addressed one reached its client only.
	want := map[string][]string{}
	for i, it := range items {
		switch {
		case it.ClientID == "a2":
			want["conn-a2"] = append(want["conn-a2"], it.ID)
		case it.OwnerID == "owner-a":
			want["conn-a1"] = append(want["conn-a1"], it.ID)
			want["conn-a2"] = append(want["conn-a2"], it.ID)
		default:
			want["conn-b1"] = append(want["conn-b1"], it.ID)
		}
		if it.ClientID == "" && (res[i].Seq == 0 || i > 0 && items[i-1].OwnerID == it.OwnerID && res[i].Seq != res[i-1].Seq+1) {
			t.Errorf("item %d: seq %d after %d", i, res[i].Seq, res[i-1].Seq)
		}
	}
	for conn, ids := range want {
		got := f.push.Sent(conn)
		if len(got) != len(ids) {
			t.Fatalf("%s got %d messages, want %d", conn, len(got), len(ids))
		}
		for k, id := range ids {
			if !strings.Contains(got[k], `"id":"`+id+`"`) {
				t.Errorf("%s message %d = %s, want %s", conn, k, got[k], id)
			}
		}
	}
}

// A connection that arrives while the batch's events are being recorded
// gets, live, every event recorded after it connected: the list is taken
// once the owner's last event is kept, as a Publish takes it after its own.
func TestPublishBatchListsAfterTheOwnersLastEventIsKept(t *testing.T) {
	f, ls := newListingFixture(t)
	f.connect(t, "key-a", "early", "conn-early")
	ls.onRecord = func(e store.Event) {
		if e.ID == "evt-1" {
			f.connect(t, "key-a", "late", "conn-late")
		}
	}
	var items []notify.BatchItem
	for i := range 3 {
		items = append(items, notify.BatchItem{OwnerID: "owner-a", ID: fmt.Sprint("evt-", i), Event: progressOf(fmt.Sprint("job_", i), 50)})
	}
	if _, errs := f.n.PublishBatch(context.Background(), items); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	if got := len(f.push.Sent("conn-early")); got != 3 {
		t.Fatalf("the early connection got %d events, want 3", got)
	}
	late := strings.Join(f.push.Sent("conn-late"), "\n")
	for _, id := range []string{"evt-1", "evt-2"} {
		if !strings.Contains(late, `"id":"`+id+`"`) {
			t.Errorf("the connection made as %s was recorded did not get it live: %s", "evt-1", late)
		}
	}
}

func TestPublishBatchPostsToAGoneConnectionOnce(t *testing.T) {
	f, _ := newListingFixture(t)
	f.connect(t, "key-a", "gone", "conn-gone")
	f.connect(t, "key-a", "live", "conn-live")
	f.clock.Advance(time.Minute) // past the connect grace
	f.push.SetGone("conn-gone")
	var posts atomic.Int64
	f.push.Fail = func(id string) error {
		if id == "conn-gone" {
			posts.Add(1)
		}
		return nil
	}
	var items []notify.BatchItem
	for i := range 5 {
		items = append(items, notify.BatchItem{OwnerID: "owner-a", ID: fmt.Sprint("evt-", i), Event: progressOf(fmt.Sprint("job_", i), 50)})
	}
	res, errs := f.n.PublishBatch(context.Background(), items)
	if errors.Join(errs...) != nil || res[0].Gone != 1 {
		t.Fatalf("results %+v, errors %v; want the first to find the connection gone", res, errs)
	}
	if posts.Load() != 1 || len(f.push.Sent("conn-live")) != 5 {
		t.Fatalf("%d posts to the gone connection, %d to the live one; want 1 and 5", posts.Load(), len(f.push.Sent("conn-live")))
	}
	if n, err := f.store.ConnectionCount(context.Background(), "owner-a"); err != nil || n != 1 {
		t.Fatalf("count %d, %v; want 1 (the gone one released once)", n, err)
	}
}

func TestPublishBatchHoldsBackTheRestOfAFailedGroup(t *testing.T) {
	f, _ := newListingFixture(t)
	f.connect(t, "key-a", "tab", "conn-a")
	f.push.Fail = func(string) error { return errors.New("throttled") }
	items := []notify.BatchItem{
		{OwnerID: "owner-a", ID: "evt-0", Event: progressOf("job_1", 10), Group: "g"},
		{OwnerID: "owner-a", ID: "evt-1", Event: progressOf("job_2", 10), Group: "h"},
		{OwnerID: "owner-a", ID: "evt-2", Event: progressOf("job_1", 20), Group: "g"},
		{OwnerID: "owner-a", ID: "evt-3", Event: event.JobProgress{Type: event.TypeJobProgress, JobID: "job_3", Progress: 500}, Group: "g"},
	}
	_, errs := f.n.PublishBatch(context.Background(), items)
	if !errors.Is(errs[0], notify.ErrPushesFailed) || !errors.Is(errs[1], notify.ErrPushesFailed) || !errors.Is(errs[2], notify.ErrHeldBack) {
		t.Fatalf("errors %v; want pushes failed, pushes failed, held back", errs)
	}
	// An invalid event can never go out: it says so wherever it stands.
	if notify.ErrorCode(errs[3]) != notify.CodeInvalid {
		t.Fatalf("error of an invalid item behind a failure: %v, want %s", errs[3], notify.CodeInvalid)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, errs = f.n.PublishBatch(ctx, items[:1])
	if !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("error past the deadline: %v", errs[0])
	}
}
