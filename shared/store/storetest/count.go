package storetest

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/notify/notifytest"
	"github.com/wsnotify/wsnotify/shared/store"
)

// wantCount checks owner's connection count.
func wantCount(t *testing.T, s Store, owner string, want int) {
	t.Helper()
	got, err := s.ConnectionCount(ctxT(t), owner)
	if err != nil || got != want {
		t.Fatalf("ConnectionCount(%s) = %d, %v; want %d", owner, got, err, want)
	}
}

func mustReserve(t *testing.T, s Store, owner string, max int) {
	t.Helper()
	before, err := s.ConnectionCount(ctxT(t), owner)
	if err != nil {
		t.Fatal(err)
	}
	held, err := s.ReserveConnection(ctxT(t), owner, max)
	if err != nil || held != before {
		t.Fatalf("ReserveConnection(%s, %d) = %d, %v; want %d held before it", owner, max, held, err, before)
	}
}

// testCount pins the per-owner connection count that enforces the cap on
// connect (notify.ConnectionCounter).
func testCount(t *testing.T, newStore func(*testing.T) Store) {
	t.Run("an owner never counted counts 0", func(t *testing.T) {
		wantCount(t, newStore(t), "acct_1", 0)
	})
	t.Run("reservations count up to the cap and no further, per owner", func(t *testing.T) {
		s := newStore(t)
		for range 3 {
			mustReserve(t, s, "acct_1", 3)
		}
		if _, err := s.ReserveConnection(ctxT(t), "acct_1", 3); !errors.Is(err, store.ErrOwnerFull) {
			t.Fatalf("fourth ReserveConnection = %v, want store.ErrOwnerFull", err)
		}
		wantCount(t, s, "acct_1", 3)
		mustReserve(t, s, "acct_2", 3) // another owner counts apart
		wantCount(t, s, "acct_2", 1)
		mustReserve(t, s, "acct_1", 4) // a higher cap lets one more in
		wantCount(t, s, "acct_1", 4)
	})
	t.Run("a release counts its k connections out at once, never below zero", func(t *testing.T) {
		s := newStore(t)
		for range 5 {
			mustReserve(t, s, "acct_1", 10)
		}
		release := func(owner string, k, want int) {
			t.Helper()
			if err := s.ReleaseConnections(ctxT(t), owner, k); err != nil {
				t.Fatalf("ReleaseConnections(%s, %d): %v", owner, k, err)
			}
			wantCount(t, s, owner, want)
		}
		release("acct_1", 1, 4)
		release("acct_1", 3, 1)
		release("acct_1", 4, 0) // more than counted: a drifted count
		release("acct_1", 1, 0)
		release("acct_2", 3, 0) // an owner never counted
		mustReserve(t, s, "acct_1", 1)
		wantCount(t, s, "acct_1", 1)
	})
	t.Run("a correction applies only over the count it read", func(t *testing.T) {
		s := newStore(t)
		mustReserve(t, s, "acct_1", 10)
		mustReserve(t, s, "acct_1", 10)
		if err := s.CorrectConnectionCount(ctxT(t), "acct_1", 1, 5); !errors.Is(err, store.ErrConditionFailed) {
			t.Fatalf("CorrectConnectionCount over a changed count = %v, want store.ErrConditionFailed", err)
		}
		wantCount(t, s, "acct_1", 2)
		if err := s.CorrectConnectionCount(ctxT(t), "acct_1", 2, 5); err != nil {
			t.Fatalf("CorrectConnectionCount: %v", err)
		}
		wantCount(t, s, "acct_1", 5)
		if err := s.CorrectConnectionCount(ctxT(t), "acct_1", 5, 0); err != nil {
			t.Fatalf("CorrectConnectionCount to 0: %v", err)
		}
		wantCount(t, s, "acct_1", 0)
		// A missing count is 0, so the correction of an owner never counted applies.
		if err := s.CorrectConnectionCount(ctxT(t), "acct_2", 0, 7); err != nil {
			t.Fatalf("CorrectConnectionCount of an owner never counted: %v", err)
		}
		wantCount(t, s, "acct_2", 7)
		if _, err := s.ReserveConnection(ctxT(t), "acct_2", 7); !errors.Is(err, store.ErrOwnerFull) {
			t.Fatalf("ReserveConnection over a corrected count = %v, want store.ErrOwnerFull", err)
		}
	})
	t.Run("the count is neither a connection nor a key", func(t *testing.T) {
		s := newStore(t)
		mustReserve(t, s, "acct_1", 10)
		wantList(t, s, "acct_1", epoch)
		if keys, err := s.ListKeys(ctxT(t)); err != nil || len(keys) != 0 {
			t.Fatalf("ListKeys = %v, %v; want none", keys, err)
		}
	})
	t.Run("of 50 simultaneous reservations at a cap of 20, exactly 20 count", func(t *testing.T) {
		s := newStore(t)
		const max = 20
		ctx := ctxT(t)
		errs := simultaneously(50, func(int) error { _, err := s.ReserveConnection(ctx, "acct_1", max); return err })
		counted := 0
		for i, err := range errs {
			switch {
			case err == nil:
				counted++
			case !errors.Is(err, store.ErrOwnerFull):
				t.Fatalf("reservation %d: %v, want nil or store.ErrOwnerFull", i, err)
			}
		}
		if counted != max {
			t.Fatalf("%d reservations counted, want %d", counted, max)
		}
		wantCount(t, s, "acct_1", max)
	})
}

// testNotifierCount runs the notifier's per-owner cap over the store's count.
func testNotifierCount(t *testing.T, newStore func(*testing.T) Store) {
	setup := func(t *testing.T, max int) (Store, *notifytest.Recorder, *notify.Notifier, string) {
		return notifierOver(t, newStore, notify.Config{MaxConnectionsPerOwner: max, ConnectBurst: 1000})
	}
	connect := func(t *testing.T, n *notify.Notifier, key, client string, id int) error {
		_, err := n.Connect(ctxT(t), notify.ConnectRequest{Token: key, ClientID: client, ConnectionID: connectionID(id)})
		return err
	}
	progress := event.JobProgress{Type: event.TypeJobProgress, JobID: "job_1", Progress: 50, ProcessedCount: 1, TotalCount: 2}

	t.Run("of 50 simultaneous connects of one owner at a cap of 20, exactly 20 connect", func(t *testing.T) {
		s, _, n, key := setup(t, 20)
		errs := simultaneously(50, func(i int) error { return connect(t, n, key, fmt.Sprint("tab-", i), i) })
		connected := 0
		for i, err := range errs {
			switch {
			case err == nil:
				connected++
			case notify.ErrorCode(err) != notify.CodeForbidden:
				t.Fatalf("connect %d: %v, want success or %s", i, err, notify.CodeForbidden)
			}
		}
		if connected != 20 || len(mustList(t, s, "acct_1", epoch.Add(time.Hour))) != 20 {
			t.Fatalf("%d connected, %d records; want 20 of each", connected, len(mustList(t, s, "acct_1", epoch.Add(time.Hour))))
		}
		wantCount(t, s, "acct_1", 20)
	})
	t.Run("a refused or taken-over client id leaves the count as it was", func(t *testing.T) {
		s, rec, n, key := setup(t, 5)
		if err := connect(t, n, key, "tab-1", 1); err != nil {
			t.Fatal(err)
		}
		if err := connect(t, n, key, "tab-1", 2); notify.ErrorCode(err) != notify.CodeConflict {
			t.Fatalf("second connect of a live client = %v, want %s", err, notify.CodeConflict)
		}
		wantCount(t, s, "acct_1", 1)
		old := conn("acct_1", "tab-2", 3, epoch.Add(time.Hour-10*notify.DefaultConnectGrace))
		mustPut(t, s, old, old.ConnectedAt)
		mustReserve(t, s, "acct_1", 5) // as its own connect did
		rec.SetGone(old.ConnectionID)
		if err := connect(t, n, key, "tab-2", 4); err != nil {
			t.Fatalf("connect taking over a gone connection: %v", err)
		}
		wantCount(t, s, "acct_1", 2)
	})
	t.Run("disconnects and 410 cleanups count down, and free the cap", func(t *testing.T) {
		s, rec, n, key := setup(t, 3)
		for i := range 3 {
			if err := connect(t, n, key, fmt.Sprint("tab-", i), i); err != nil {
				t.Fatal(err)
			}
		}
		if err := connect(t, n, key, "tab-x", 9); notify.ErrorCode(err) != notify.CodeForbidden {
			t.Fatalf("connect over the cap = %v, want %s", err, notify.CodeForbidden)
		}
		if err := n.Disconnect(ctxT(t), connectionID(0)); err != nil {
			t.Fatal(err)
		}
		wantCount(t, s, "acct_1", 2)
		if err := connect(t, n, key, "tab-x", 9); err != nil {
			t.Fatalf("connect after a disconnect: %v", err)
		}
		wantCount(t, s, "acct_1", 3)
		// Past the connect grace, a gone connection is cleaned up by a publish.
		later := notify.New(auth.NewAuthenticator(s), s, rec, slog.New(slog.DiscardHandler), notify.Config{
			ConnectionTTL: ttl, MaxConnectionsPerOwner: 3,
			Now: func() time.Time { return epoch.Add(time.Hour + 2*notify.DefaultConnectGrace) },
		}) // the same store and pusher, a minute on
		rec.SetGone(connectionID(1))
		if res, err := later.Publish(ctxT(t), "acct_1", "", "", progress); err != nil || res.Gone != 1 {
			t.Fatalf("Publish = %+v, %v; want 1 gone", res, err)
		}
		wantCount(t, s, "acct_1", 2)
	})
	t.Run("a publish corrects a count that has drifted from the records", func(t *testing.T) {
		s, _, n, key := setup(t, 3)
		for i := range 3 {
			if err := connect(t, n, key, fmt.Sprint("tab-", i), i); err != nil {
				t.Fatal(err)
			}
		}
		// Two $disconnects that never came: records gone, still counted.
		for i := range 2 {
			if _, err := s.DeleteConnection(ctxT(t), connectionID(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := connect(t, n, key, "tab-x", 9); notify.ErrorCode(err) != notify.CodeForbidden {
			t.Fatalf("connect with a count that drifted up = %v, want %s until a publish corrects it", err, notify.CodeForbidden)
		}
		if _, err := n.Publish(ctxT(t), "acct_1", "", "", progress); err != nil {
			t.Fatal(err)
		}
		wantCount(t, s, "acct_1", 1)
		if err := connect(t, n, key, "tab-x", 9); err != nil {
			t.Fatalf("connect after the correction: %v", err)
		}
		// And upwards: records written without a count (from before counts
		// were kept) are counted by the next publish.
		mustPut(t, s, conn("acct_1", "tab-y", 10, epoch), epoch)
		if _, err := n.Publish(ctxT(t), "acct_1", "tab-y", "", progress); err != nil {
			t.Fatal(err)
		}
		wantCount(t, s, "acct_1", 3)
	})
}
