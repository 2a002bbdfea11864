// Package storetest is the contract suite every connection and key store
// passes: store/memory in-process and store/dynamo against dynalite. The
// suite pins the behaviour the notifier relies on (client ids unique per
// owner, stale records replaceable, late disconnects harmless, complete
// fan-out lists, a per-owner connection count that holds its cap under
// concurrent connects) and runs the notifier itself over the store under
// test.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/notify/notifytest"
	"github.com/wsnotify/wsnotify/shared/store"
)

// Store is what the suite exercises: the notifier's connection store and the
// key store, with the key administration methods.
type Store interface {
	notify.Store
	notify.FirstPager
	auth.KeyStore
	PutKey(ctx context.Context, k auth.Key) error
	RevokeKey(ctx context.Context, hash string) error
	ListKeys(ctx context.Context) ([]auth.Key, error)
}

// PagedConnections is how many connections of one owner the suite lists in
// its pagination test. A store with pages (dynamo) should be configured by
// newStore to page at fewer items than this, so the test crosses pages.
const PagedConnections = 25

// epoch is the suite's clock origin. It is a whole second, because the
// DynamoDB store keeps expiry times in seconds (its TTL attribute).
var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// ttl is a connection's life in the suite, as notify's default.
const ttl = notify.MaxConnectionAge + 10*time.Minute

// Run runs the contract suite. newStore returns a new, empty store for each
// test; the tests run in parallel.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	t.Run("PutConnection", func(t *testing.T) { t.Parallel(); testPut(t, newStore) })
	t.Run("ReplaceConnection", func(t *testing.T) { t.Parallel(); testReplace(t, newStore) })
	t.Run("DeleteConnection", func(t *testing.T) { t.Parallel(); testDelete(t, newStore) })
	t.Run("RemoveClient", func(t *testing.T) { t.Parallel(); testRemove(t, newStore) })
	t.Run("ListConnections", func(t *testing.T) { t.Parallel(); testList(t, newStore) })
	t.Run("FirstPage", func(t *testing.T) { t.Parallel(); testFirstPage(t, newStore) })
	t.Run("ConnectionCount", func(t *testing.T) { t.Parallel(); testCount(t, newStore) })
	t.Run("Keys", func(t *testing.T) { t.Parallel(); testKeys(t, newStore) })
	t.Run("Notifier", func(t *testing.T) { t.Parallel(); testNotifier(t, newStore) })
	t.Run("NotifierCount", func(t *testing.T) { t.Parallel(); testNotifierCount(t, newStore) })
	t.Run("ExpiredTokens", func(t *testing.T) { t.Parallel(); testExpiredTokens(t, newStore) })
	t.Run("Concurrency", func(t *testing.T) { t.Parallel(); testConcurrency(t, newStore) })
}

// conn returns a record of owner's client with connection number n, connected at at.
func conn(owner, client string, n int, at time.Time) store.Connection {
	return store.Connection{
		OwnerID:      owner,
		ClientID:     client,
		ConnectionID: connectionID(n),
		ConnectedAt:  at,
		ExpiresAt:    at.Add(ttl),
	}
}

// connectionID returns a connection id shaped like API Gateway's (16 base64 characters).
func connectionID(n int) string { return fmt.Sprintf("Conn%011d=", n) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustPut(t *testing.T, s Store, c store.Connection, now time.Time) {
	t.Helper()
	if err := s.PutConnection(ctxT(t), c, now); err != nil {
		t.Fatalf("PutConnection(%s/%s %s): %v", c.OwnerID, c.ClientID, c.ConnectionID, err)
	}
}

func mustList(t *testing.T, s Store, owner string, now time.Time) []store.Connection {
	t.Helper()
	cs, err := s.ListConnections(ctxT(t), owner, now)
	if err != nil {
		t.Fatalf("ListConnections(%s): %v", owner, err)
	}
	return cs
}

// same reports whether two records are equal, comparing instants.
func same(a, b store.Connection) bool {
	return a.OwnerID == b.OwnerID && a.ClientID == b.ClientID && a.ConnectionID == b.ConnectionID && a.KeyID == b.KeyID &&
		a.TokenExpiresAt.Equal(b.TokenExpiresAt) && a.ConnectedAt.Equal(b.ConnectedAt) && a.ExpiresAt.Equal(b.ExpiresAt)
}

func ids(cs []store.Connection) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ConnectionID
	}
	return out
}

// wantFound checks that FindConnection finds c by its connection id.
func wantFound(t *testing.T, s Store, c store.Connection) {
	t.Helper()
	if got, err := s.FindConnection(ctxT(t), c.ConnectionID); err != nil || !same(got, c) {
		t.Fatalf("FindConnection(%s) = %+v, %v; want %+v", c.ConnectionID, got, err, c)
	}
}

// wantNotFound checks that FindConnection finds no record of connectionID.
func wantNotFound(t *testing.T, s Store, connectionID string) {
	t.Helper()
	if _, err := s.FindConnection(ctxT(t), connectionID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FindConnection(%s) = %v, want store.ErrNotFound", connectionID, err)
	}
}

// wantList checks that owner's live records at now are exactly want, in order.
func wantList(t *testing.T, s Store, owner string, now time.Time, want ...store.Connection) {
	t.Helper()
	got := mustList(t, s, owner, now)
	if len(got) != len(want) {
		t.Fatalf("ListConnections(%s) = %v, want %v", owner, ids(got), ids(want))
	}
	for i := range want {
		if !same(got[i], want[i]) {
			t.Fatalf("ListConnections(%s)[%d] = %+v, want %+v", owner, i, got[i], want[i])
		}
	}
}

func testPut(t *testing.T, newStore func(*testing.T) Store) {
	t.Run("a new client is registered and listed as written", func(t *testing.T) {
		s := newStore(t)
		c := conn("acct_1", "tab-1", 1, epoch.Add(123456789*time.Nanosecond))
		c.ExpiresAt = epoch.Add(ttl) // whole seconds: the precision every store keeps
		c.KeyID = auth.Prefix(auth.Hash("wsn_x"))
		mustPut(t, s, c, epoch)
		wantList(t, s, "acct_1", epoch, c)
		wantFound(t, s, c)
	})
	t.Run("a signed token's expiry is kept with the record", func(t *testing.T) {
		s := newStore(t)
		c := conn("acct_1", "tab-1", 1, epoch)
		c.TokenExpiresAt = epoch.Add(8 * time.Second)
		mustPut(t, s, c, epoch)
		wantList(t, s, "acct_1", epoch, c)
		wantFound(t, s, c)
		if got := mustList(t, s, "acct_1", epoch)[0]; got.TokenExpired(epoch.Add(7*time.Second)) || !got.TokenExpired(epoch.Add(8*time.Second)) {
			t.Fatalf("TokenExpiresAt = %v, want expired from %v on", got.TokenExpiresAt, c.TokenExpiresAt)
		}
		d := conn("acct_1", "tab-1", 2, epoch) // a take-over keeps the new token's expiry
		d.TokenExpiresAt = epoch.Add(9 * time.Second)
		if err := s.ReplaceConnection(ctxT(t), d, c.ConnectionID); err != nil {
			t.Fatalf("ReplaceConnection: %v", err)
		}
		wantList(t, s, "acct_1", epoch, d)
		wantFound(t, s, d)
	})
	t.Run("the same client id under two owners is fine", func(t *testing.T) {
		s := newStore(t)
		a, b := conn("acct_1", "tab-1", 1, epoch), conn("acct_2", "tab-1", 2, epoch)
		mustPut(t, s, a, epoch)
		mustPut(t, s, b, epoch)
		wantList(t, s, "acct_1", epoch, a)
		wantList(t, s, "acct_2", epoch, b)
	})
	t.Run("two clients of one owner coexist", func(t *testing.T) {
		s := newStore(t)
		a, b := conn("acct_1", "tab-1", 1, epoch), conn("acct_1", "tab-2", 2, epoch)
		mustPut(t, s, a, epoch)
		mustPut(t, s, b, epoch)
		wantList(t, s, "acct_1", epoch, a, b)
	})
	for _, tc := range []struct {
		name     string
		now      time.Time // of the second Put
		replaced bool
	}{
		{"a live record holds its client id", epoch.Add(time.Minute), false},
		{"a record one second before its expiry still holds", epoch.Add(ttl - time.Second), false},
		{"a record at its expiry is replaced by Put", epoch.Add(ttl), true},
		{"an expired record is replaced by Put", epoch.Add(ttl + time.Hour), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			old := conn("acct_1", "tab-1", 1, epoch)
			mustPut(t, s, old, epoch)
			next := conn("acct_1", "tab-1", 2, tc.now)
			err := s.PutConnection(ctxT(t), next, tc.now)
			if tc.replaced {
				if err != nil {
					t.Fatalf("PutConnection over an expired record: %v", err)
				}
				wantList(t, s, "acct_1", tc.now, next)
				return
			}
			var taken *store.ClientTakenError
			if !errors.As(err, &taken) {
				t.Fatalf("PutConnection over a live record = %v, want *store.ClientTakenError", err)
			}
			if !same(taken.Existing, old) {
				t.Fatalf("ClientTakenError.Existing = %+v, want %+v", taken.Existing, old)
			}
			wantList(t, s, "acct_1", tc.now, old)
		})
	}
}

func testReplace(t *testing.T, newStore func(*testing.T) Store) {
	t.Run("the record naming the old connection is replaced", func(t *testing.T) {
		s := newStore(t)
		old, next := conn("acct_1", "tab-1", 1, epoch), conn("acct_1", "tab-1", 2, epoch.Add(time.Minute))
		mustPut(t, s, old, epoch)
		if err := s.ReplaceConnection(ctxT(t), next, old.ConnectionID); err != nil {
			t.Fatalf("ReplaceConnection: %v", err)
		}
		wantList(t, s, "acct_1", epoch, next)
	})
	t.Run("a record naming another connection is left alone", func(t *testing.T) {
		s := newStore(t)
		held, next := conn("acct_1", "tab-1", 1, epoch), conn("acct_1", "tab-1", 3, epoch)
		mustPut(t, s, held, epoch)
		err := s.ReplaceConnection(ctxT(t), next, connectionID(2))
		if !errors.Is(err, store.ErrConditionFailed) {
			t.Fatalf("ReplaceConnection = %v, want store.ErrConditionFailed", err)
		}
		wantList(t, s, "acct_1", epoch, held)
	})
	t.Run("a missing record is not created", func(t *testing.T) {
		s := newStore(t)
		err := s.ReplaceConnection(ctxT(t), conn("acct_1", "tab-1", 2, epoch), connectionID(1))
		if !errors.Is(err, store.ErrConditionFailed) {
			t.Fatalf("ReplaceConnection = %v, want store.ErrConditionFailed", err)
		}
		wantList(t, s, "acct_1", epoch)
	})
}

func testDelete(t *testing.T, newStore func(*testing.T) Store) {
	t.Run("the record is removed and returned", func(t *testing.T) {
		s := newStore(t)
		c, other := conn("acct_1", "tab-1", 1, epoch), conn("acct_1", "tab-2", 2, epoch)
		mustPut(t, s, c, epoch)
		mustPut(t, s, other, epoch)
		got, err := s.DeleteConnection(ctxT(t), c.ConnectionID)
		if err != nil {
			t.Fatalf("DeleteConnection: %v", err)
		}
		if !same(got, c) {
			t.Fatalf("DeleteConnection = %+v, want %+v", got, c)
		}
		wantList(t, s, "acct_1", epoch, other)
	})
	t.Run("a record is found by its connection id", func(t *testing.T) {
		s := newStore(t)
		c := conn("acct_1", "tab-1", 1, epoch)
		mustPut(t, s, c, epoch)
		wantFound(t, s, c)
		wantNotFound(t, s, connectionID(9))
	})
	t.Run("a disconnect right after the connect removes the record and frees the client id", func(t *testing.T) {
		s := newStore(t)
		c := conn("acct_1", "tab-1", 1, epoch)
		mustPut(t, s, c, epoch)
		if _, err := s.DeleteConnection(ctxT(t), c.ConnectionID); err != nil {
			t.Fatalf("DeleteConnection: %v", err)
		}
		wantList(t, s, "acct_1", epoch)
		wantNotFound(t, s, c.ConnectionID)
		next := conn("acct_1", "tab-1", 2, epoch)
		mustPut(t, s, next, epoch) // at once, the same instant
		wantFound(t, s, next)
	})
	t.Run("a replaced or removed connection is no longer found", func(t *testing.T) {
		s := newStore(t)
		old, next := conn("acct_1", "tab-1", 1, epoch), conn("acct_1", "tab-1", 2, epoch)
		mustPut(t, s, old, epoch)
		if err := s.ReplaceConnection(ctxT(t), next, old.ConnectionID); err != nil {
			t.Fatalf("ReplaceConnection: %v", err)
		}
		wantNotFound(t, s, old.ConnectionID)
		wantFound(t, s, next)
		if removed, err := s.RemoveClient(ctxT(t), next.OwnerID, next.ClientID, next.ConnectionID); err != nil || !removed {
			t.Fatalf("RemoveClient = %v, %v; want true", removed, err)
		}
		wantNotFound(t, s, next.ConnectionID)
	})
	t.Run("an unknown connection is not found", func(t *testing.T) {
		s := newStore(t)
		mustPut(t, s, conn("acct_1", "tab-1", 1, epoch), epoch)
		if _, err := s.DeleteConnection(ctxT(t), connectionID(9)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("DeleteConnection = %v, want store.ErrNotFound", err)
		}
	})
	t.Run("a second disconnect of the same connection is not found", func(t *testing.T) {
		s := newStore(t)
		c := conn("acct_1", "tab-1", 1, epoch)
		mustPut(t, s, c, epoch)
		if _, err := s.DeleteConnection(ctxT(t), c.ConnectionID); err != nil {
			t.Fatalf("first DeleteConnection: %v", err)
		}
		if _, err := s.DeleteConnection(ctxT(t), c.ConnectionID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second DeleteConnection = %v, want store.ErrNotFound", err)
		}
	})
	for _, tc := range []struct {
		name string
		take func(t *testing.T, s Store, old, next store.Connection)
	}{
		{"that replaced it", func(t *testing.T, s Store, old, next store.Connection) {
			if err := s.ReplaceConnection(ctxT(t), next, old.ConnectionID); err != nil {
				t.Fatalf("ReplaceConnection: %v", err)
			}
		}},
		{"that took over its expired record", func(t *testing.T, s Store, old, next store.Connection) {
			mustPut(t, s, next, old.ExpiresAt)
		}},
	} {
		t.Run("a late disconnect never deletes a newer connection of the client "+tc.name, func(t *testing.T) {
			s := newStore(t)
			old := conn("acct_1", "tab-1", 1, epoch)
			next := conn("acct_1", "tab-1", 2, old.ExpiresAt)
			mustPut(t, s, old, epoch)
			tc.take(t, s, old, next)
			if _, err := s.DeleteConnection(ctxT(t), old.ConnectionID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("DeleteConnection(old) = %v, want store.ErrNotFound", err)
			}
			wantList(t, s, "acct_1", next.ConnectedAt, next)
		})
	}
}

func testRemove(t *testing.T, newStore func(*testing.T) Store) {
	t.Run("the record naming the connection is removed", func(t *testing.T) {
		s := newStore(t)
		c := conn("acct_1", "tab-1", 1, epoch)
		mustPut(t, s, c, epoch)
		if removed, err := s.RemoveClient(ctxT(t), c.OwnerID, c.ClientID, c.ConnectionID); err != nil || !removed {
			t.Fatalf("RemoveClient = %v, %v; want true (removed)", removed, err)
		}
		wantList(t, s, "acct_1", epoch)
		// The client id is free again.
		mustPut(t, s, conn("acct_1", "tab-1", 2, epoch), epoch)
	})
	t.Run("a newer connection of the client is left alone", func(t *testing.T) {
		s := newStore(t)
		old, next := conn("acct_1", "tab-1", 1, epoch), conn("acct_1", "tab-1", 2, epoch.Add(time.Minute))
		mustPut(t, s, old, epoch)
		if err := s.ReplaceConnection(ctxT(t), next, old.ConnectionID); err != nil {
			t.Fatalf("ReplaceConnection: %v", err)
		}
		if removed, err := s.RemoveClient(ctxT(t), old.OwnerID, old.ClientID, old.ConnectionID); err != nil || removed {
			t.Fatalf("RemoveClient(old) = %v, %v; want false (nothing removed), nil", removed, err)
		}
		wantList(t, s, "acct_1", epoch, next)
	})
	t.Run("a missing record is not an error", func(t *testing.T) {
		s := newStore(t)
		if removed, err := s.RemoveClient(ctxT(t), "acct_1", "tab-1", connectionID(1)); err != nil || removed {
			t.Fatalf("RemoveClient = %v, %v; want false, nil", removed, err)
		}
	})
	t.Run("another owner's client of the same id is left alone", func(t *testing.T) {
		s := newStore(t)
		c := conn("acct_2", "tab-1", 1, epoch)
		mustPut(t, s, c, epoch)
		if removed, err := s.RemoveClient(ctxT(t), "acct_1", c.ClientID, c.ConnectionID); err != nil || removed {
			t.Fatalf("RemoveClient = %v, %v; want false, nil", removed, err)
		}
		wantList(t, s, "acct_2", epoch, c)
	})
}

func testList(t *testing.T, newStore func(*testing.T) Store) {
	t.Run("an owner without connections lists none", func(t *testing.T) {
		s := newStore(t)
		mustPut(t, s, conn("acct_2", "tab-1", 1, epoch), epoch)
		wantList(t, s, "acct_1", epoch)
	})
	t.Run("only the owner's records are listed, in client id order", func(t *testing.T) {
		s := newStore(t)
		b, a := conn("acct_1", "b", 1, epoch), conn("acct_1", "a", 2, epoch)
		mustPut(t, s, b, epoch)
		mustPut(t, s, conn("acct_10", "c", 3, epoch), epoch)
		mustPut(t, s, conn("acct_", "d", 4, epoch), epoch)
		mustPut(t, s, a, epoch)
		wantList(t, s, "acct_1", epoch, a, b)
	})
	t.Run("expired records are ignored", func(t *testing.T) {
		s := newStore(t)
		old := conn("acct_1", "old", 1, epoch)
		young := conn("acct_1", "young", 2, epoch.Add(time.Hour))
		mustPut(t, s, old, epoch)
		mustPut(t, s, young, young.ConnectedAt)
		wantList(t, s, "acct_1", old.ExpiresAt.Add(-time.Second), old, young)
		wantList(t, s, "acct_1", old.ExpiresAt, young)
		wantList(t, s, "acct_1", young.ExpiresAt)
	})
	t.Run("a fan-out list spans more than one page", func(t *testing.T) {
		s := newStore(t)
		var want []store.Connection
		for i := range PagedConnections {
			c := conn("acct_1", fmt.Sprintf("tab-%03d", i), i, epoch)
			mustPut(t, s, c, epoch)
			want = append(want, c)
		}
		mustPut(t, s, conn("acct_2", "tab-000", 100, epoch), epoch)
		wantList(t, s, "acct_1", epoch, want...)
	})
}

func testKeys(t *testing.T, newStore func(*testing.T) Store) {
	newKey := func(t *testing.T, s Store, owner string) string {
		t.Helper()
		key, err := auth.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		k := auth.Key{Hash: auth.Hash(key), OwnerID: owner, Name: "key of " + owner, CreatedAt: epoch.Add(time.Millisecond)}
		if err := s.PutKey(ctxT(t), k); err != nil {
			t.Fatalf("PutKey: %v", err)
		}
		return key
	}
	t.Run("a stored key is looked up by its hash", func(t *testing.T) {
		s := newStore(t)
		key := newKey(t, s, "acct_1")
		k, err := s.LookupKey(ctxT(t), auth.Hash(key))
		if err != nil {
			t.Fatalf("LookupKey: %v", err)
		}
		if k.Hash != auth.Hash(key) || k.OwnerID != "acct_1" || k.Name != "key of acct_1" || !k.CreatedAt.Equal(epoch.Add(time.Millisecond)) || k.Revoked {
			t.Fatalf("LookupKey = %+v", k)
		}
	})
	t.Run("an unknown hash is not found", func(t *testing.T) {
		s := newStore(t)
		newKey(t, s, "acct_1")
		if _, err := s.LookupKey(ctxT(t), auth.Hash("wsn_unknown")); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("LookupKey = %v, want auth.ErrNotFound", err)
		}
	})
	t.Run("revoking an unknown hash is not found", func(t *testing.T) {
		s := newStore(t)
		if err := s.RevokeKey(ctxT(t), auth.Hash("wsn_unknown")); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("RevokeKey = %v, want auth.ErrNotFound", err)
		}
		if keys, err := s.ListKeys(ctxT(t)); err != nil || len(keys) != 0 {
			t.Fatalf("ListKeys after revoking an unknown hash = %v, %v; want none", keys, err)
		}
	})
	t.Run("a revoked key is unauthorized, as an unknown one", func(t *testing.T) {
		s := newStore(t)
		good, revoked := newKey(t, s, "acct_1"), newKey(t, s, "acct_2")
		if err := s.RevokeKey(ctxT(t), auth.Hash(revoked)); err != nil {
			t.Fatalf("RevokeKey: %v", err)
		}
		a := auth.NewAuthenticator(s)
		if owner, err := a.Authenticate(ctxT(t), good); err != nil || owner != "acct_1" {
			t.Fatalf("Authenticate(good) = %q, %v; want acct_1", owner, err)
		}
		for name, key := range map[string]string{"revoked": revoked, "unknown": "wsn_unknown", "empty": ""} {
			if owner, err := a.Authenticate(ctxT(t), key); !errors.Is(err, auth.ErrUnauthorized) || owner != "" {
				t.Errorf("Authenticate(%s key) = %q, %v; want auth.ErrUnauthorized", name, owner, err)
			}
		}
	})
	t.Run("every key is listed by hash, never with connections", func(t *testing.T) {
		s := newStore(t)
		mustPut(t, s, conn("acct_1", "tab-1", 1, epoch), epoch)
		want := map[string]string{}
		for _, owner := range []string{"acct_1", "acct_2", "acct_3"} {
			want[auth.Hash(newKey(t, s, owner))] = owner
		}
		keys, err := s.ListKeys(ctxT(t))
		if err != nil {
			t.Fatalf("ListKeys: %v", err)
		}
		if len(keys) != len(want) {
			t.Fatalf("ListKeys = %d keys, want %d", len(keys), len(want))
		}
		for i, k := range keys {
			if want[k.Hash] != k.OwnerID {
				t.Errorf("ListKeys has %s of %s, want owner %q", auth.Prefix(k.Hash), k.OwnerID, want[k.Hash])
			}
			if i > 0 && keys[i-1].Hash >= k.Hash {
				t.Errorf("ListKeys not ordered by hash at %d", i)
			}
		}
	})
}

// notifierOver returns a new store with a key of acct_1, and a notifier over
// it with cfg, the suite's connection TTL and a clock stopped an hour past
// epoch.
func notifierOver(t *testing.T, newStore func(*testing.T) Store, cfg notify.Config) (Store, *notifytest.Recorder, *notify.Notifier, string) {
	s := newStore(t)
	key, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutKey(ctxT(t), auth.Key{Hash: auth.Hash(key), OwnerID: "acct_1", CreatedAt: epoch}); err != nil {
		t.Fatalf("PutKey: %v", err)
	}
	rec := notifytest.NewRecorder()
	cfg.ConnectionTTL = ttl
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return epoch.Add(time.Hour) }
	}
	return s, rec, notify.New(auth.NewAuthenticator(s), s, rec, slog.New(slog.DiscardHandler), cfg), key
}

// simultaneously runs f for 0 to n-1 on n goroutines released together,
// and returns what each returned.
func simultaneously(n int, f func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// testNotifier runs the core over the store: the take-over of stale records
// and the 410 cleanup are store conditions as much as notifier rules.
func testNotifier(t *testing.T, newStore func(*testing.T) Store) {
	setup := func(t *testing.T) (Store, *notifytest.Recorder, *notify.Notifier, string, time.Time) {
		s, rec, n, key := notifierOver(t, newStore, notify.Config{})
		return s, rec, n, key, epoch.Add(time.Hour)
	}
	// old is a record older than the connect grace, so 410 cleanup and
	// take-over may touch it.
	old := conn("acct_1", "tab-1", 1, epoch.Add(time.Hour-10*notify.DefaultConnectGrace))

	t.Run("a stale record whose connection is gone is taken over", func(t *testing.T) {
		s, rec, n, key, now := setup(t)
		mustPut(t, s, old, old.ConnectedAt)
		rec.SetGone(old.ConnectionID)
		c, err := n.Connect(ctxT(t), notify.ConnectRequest{Token: key, ClientID: "tab-1", ConnectionID: connectionID(2)})
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		wantList(t, s, "acct_1", now, c)
	})
	t.Run("a connect records the prefix of its key's hash, never the key", func(t *testing.T) {
		s, _, n, key, now := setup(t)
		c, err := n.Connect(ctxT(t), notify.ConnectRequest{Token: key, ClientID: "tab-1", ConnectionID: connectionID(1)})
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		if want := auth.Prefix(auth.Hash(key)); c.KeyID != want {
			t.Fatalf("KeyID = %q, want %q", c.KeyID, want)
		}
		wantList(t, s, "acct_1", now, c)
	})
	t.Run("a record whose connection is alive gives a conflict", func(t *testing.T) {
		s, _, n, key, now := setup(t)
		mustPut(t, s, old, old.ConnectedAt)
		_, err := n.Connect(ctxT(t), notify.ConnectRequest{Token: key, ClientID: "tab-1", ConnectionID: connectionID(2)})
		if notify.ErrorCode(err) != notify.CodeConflict {
			t.Fatalf("Connect = %v, want %s", err, notify.CodeConflict)
		}
		wantList(t, s, "acct_1", now, old)
	})
	t.Run("a disconnect after a take-over leaves the new connection", func(t *testing.T) {
		s, rec, n, key, now := setup(t)
		mustPut(t, s, old, old.ConnectedAt)
		rec.SetGone(old.ConnectionID)
		c, err := n.Connect(ctxT(t), notify.ConnectRequest{Token: key, ClientID: "tab-1", ConnectionID: connectionID(2)})
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		if err := n.Disconnect(ctxT(t), old.ConnectionID); err != nil {
			t.Fatalf("Disconnect(old): %v", err)
		}
		wantList(t, s, "acct_1", now, c)
	})
	t.Run("a publish removes a gone connection and still delivers to the others", func(t *testing.T) {
		s, rec, n, key, now := setup(t)
		mustPut(t, s, old, old.ConnectedAt)
		rec.SetGone(old.ConnectionID)
		var live []store.Connection
		for i, client := range []string{"tab-2", "tab-3"} {
			c, err := n.Connect(ctxT(t), notify.ConnectRequest{Token: key, ClientID: client, ConnectionID: connectionID(10 + i)})
			if err != nil {
				t.Fatalf("Connect(%s): %v", client, err)
			}
			live = append(live, c)
		}
		mustPut(t, s, conn("acct_2", "tab-1", 20, epoch), epoch)
		ev := event.JobProgress{Type: event.TypeJobProgress, JobID: "job_1", Progress: 50, ProcessedCount: 1, TotalCount: 2}
		res, err := n.Publish(ctxT(t), "acct_1", "", "", ev)
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if res.Delivered != 2 || res.Gone != 1 || res.Connecting != 0 || res.Failed != 0 {
			t.Fatalf("Publish = %+v, want 2 delivered, 1 gone", res)
		}
		for _, c := range live {
			if got := rec.Sent(c.ConnectionID); len(got) != 1 {
				t.Errorf("connection %s got %d messages, want 1", c.ConnectionID, len(got))
			}
		}
		if rec.Total() != 2 {
			t.Errorf("%d messages sent in all, want 2 (none to another owner)", rec.Total())
		}
		wantList(t, s, "acct_1", now, live...)
	})
}

func testConcurrency(t *testing.T, newStore func(*testing.T) Store) {
	t.Run("of 50 simultaneous connects of one client exactly one wins", func(t *testing.T) {
		s := newStore(t)
		ctx := ctxT(t)
		errs := simultaneously(50, func(i int) error { return s.PutConnection(ctx, conn("acct_1", "tab-1", i, epoch), epoch) })
		winner := -1
		for i, err := range errs {
			var taken *store.ClientTakenError
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("connections %d and %d both won", winner, i)
			case err == nil:
				winner = i
			case !errors.As(err, &taken):
				t.Fatalf("connect %d: %v, want nil or *store.ClientTakenError", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("no connect won")
		}
		for i, err := range errs {
			var taken *store.ClientTakenError
			if i != winner && (!errors.As(err, &taken) || taken.Existing.ConnectionID != connectionID(winner)) {
				t.Errorf("connect %d = %v, want *store.ClientTakenError naming the winner %s", i, err, connectionID(winner))
			}
		}
		wantList(t, s, "acct_1", epoch, conn("acct_1", "tab-1", winner, epoch))
	})
}
