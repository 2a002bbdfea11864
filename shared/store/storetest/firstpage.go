package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/store"
)

// testFirstPage pins ListConnectionsUpTo (notify.FirstPager), which a
// publishing function reads to decide whether to hand its fan-out off: an
// owner of at most limit records is read whole, with its count; one of
// more is never taken for whole.
func testFirstPage(t *testing.T, newStore func(*testing.T) Store) {
	upTo := func(t *testing.T, s Store, owner string, limit int, now time.Time) ([]store.Connection, int, bool) {
		t.Helper()
		conns, counted, complete, err := s.ListConnectionsUpTo(ctxT(t), owner, limit, now)
		if err != nil {
			t.Fatalf("ListConnectionsUpTo(%s, %d): %v", owner, limit, err)
		}
		return conns, counted, complete
	}
	// fill gives owner k counted records, tab-000 on, and returns them.
	fill := func(t *testing.T, s Store, owner string, k int) []store.Connection {
		var out []store.Connection
		for i := range k {
			if _, err := s.ReserveConnection(ctxT(t), owner, 1000); err != nil {
				t.Fatal(err)
			}
			c := conn(owner, fmt.Sprintf("tab-%03d", i), i, epoch)
			mustPut(t, s, c, epoch)
			out = append(out, c)
		}
		return out
	}
	t.Run("an owner of at most limit records is read whole, with its count", func(t *testing.T) {
		s := newStore(t)
		want := fill(t, s, "acct_1", 3)
		fill(t, s, "acct_10", 5) // another owner's records never count
		for _, limit := range []int{3, 4, 100} {
			conns, counted, complete := upTo(t, s, "acct_1", limit, epoch)
			if !complete || counted != 3 || len(conns) != 3 {
				t.Fatalf("limit %d: %v, counted %d, complete %v; want all 3, counted 3, complete", limit, ids(conns), counted, complete)
			}
			for i := range want {
				if !same(conns[i], want[i]) {
					t.Fatalf("limit %d: [%d] = %+v, want %+v", limit, i, conns[i], want[i])
				}
			}
		}
	})
	t.Run("an owner of more than limit records is not whole", func(t *testing.T) {
		s := newStore(t)
		fill(t, s, "acct_1", PagedConnections)
		for _, limit := range []int{0, 1, 2, PagedConnections - 1} {
			conns, _, complete := upTo(t, s, "acct_1", limit, epoch)
			if complete || len(conns) > limit+1 {
				t.Fatalf("limit %d: %d records, complete %v; want at most %d, not complete", limit, len(conns), complete, limit+1)
			}
		}
		if _, _, complete := upTo(t, s, "acct_1", PagedConnections, epoch); !complete {
			t.Fatalf("limit %d: not complete, want complete", PagedConnections)
		}
	})
	t.Run("an owner of uncounted records is not whole past limit", func(t *testing.T) {
		s := newStore(t)
		for i := range 3 { // written without a count, as a table from before the count holds them
			mustPut(t, s, conn("acct_1", fmt.Sprintf("tab-%03d", i), i, epoch), epoch)
		}
		if conns, _, complete := upTo(t, s, "acct_1", 2, epoch); complete || len(conns) != 3 {
			t.Fatalf("limit 2: %d records, complete %v; want 3, not complete", len(conns), complete)
		}
		if conns, counted, complete := upTo(t, s, "acct_1", 3, epoch); !complete || len(conns) != 3 || counted != 0 {
			t.Fatalf("limit 3: %d records, counted %d, complete %v; want 3, counted 0, complete", len(conns), counted, complete)
		}
	})
	t.Run("an owner without records is whole", func(t *testing.T) {
		s := newStore(t)
		fill(t, s, "acct_2", 1)
		for _, limit := range []int{0, 2} {
			if conns, counted, complete := upTo(t, s, "acct_1", limit, epoch); !complete || len(conns) != 0 || counted != 0 {
				t.Fatalf("limit %d: %v, counted %d, complete %v; want none, complete", limit, ids(conns), counted, complete)
			}
		}
	})
	t.Run("expired records are not listed; live ones past limit are never whole", func(t *testing.T) {
		s := newStore(t)
		old := conn("acct_1", "old", 1, epoch)
		mustPut(t, s, old, epoch)
		young := []store.Connection{conn("acct_1", "young-1", 2, epoch.Add(time.Hour)), conn("acct_1", "young-2", 3, epoch.Add(time.Hour))}
		for _, c := range young {
			mustPut(t, s, c, c.ConnectedAt)
		}
		now := old.ExpiresAt
		conns, _, complete := upTo(t, s, "acct_1", 3, now)
		if !complete || len(conns) != 2 || !same(conns[0], young[0]) || !same(conns[1], young[1]) {
			t.Fatalf("limit 3: %v, complete %v; want the two young ones, complete", ids(conns), complete)
		}
		if _, _, complete := upTo(t, s, "acct_1", 1, now); complete {
			t.Fatal("limit 1 with 2 live records: complete, want not")
		}
	})
}
