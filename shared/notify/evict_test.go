package notify_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/notify/notifytest"
	"github.com/wsnotify/wsnotify/shared/store"
	"github.com/wsnotify/wsnotify/shared/store/memory"
)

// listCounter is a memory store that counts ListConnections.
type listCounter struct {
	*memory.Store
	lists atomic.Int64
}

func (l *listCounter) ListConnections(ctx context.Context, ownerID string, now time.Time) ([]store.Connection, error) {
	l.lists.Add(1)
	return l.Store.ListConnections(ctx, ownerID, now)
}

// TestRefusedConnectsAtTheCapListTheOwnerOncePerHoldOff checks what
// connects refused at the cap cost: the owner's records are listed once,
// then not again for 10 seconds, or until the first token seen can have
// expired if that is sooner.
func TestRefusedConnectsAtTheCapListTheOwnerOncePerHoldOff(t *testing.T) {
	ctx := context.Background()
	secret := []byte(strings.Repeat("h", auth.MinSecretBytes))
	c := &clock{now: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	s := &listCounter{Store: memory.New()}
	if err := s.PutKey(ctx, auth.Key{Hash: auth.Hash("key-a"), OwnerID: "owner-a"}); err != nil {
		t.Fatal(err)
	}
	a := auth.NewAuthenticator(s).WithTokens(auth.NewTokenVerifier(auth.StaticSecrets{secret}, auth.TokenConfig{Now: c.Now}))
	rec := notifytest.NewRecorder()
	n := notify.New(a, s, rec, slog.New(slog.DiscardHandler), notify.Config{MaxConnectionsPerOwner: 2, Now: c.Now})
	mint := func(ttl time.Duration) string {
		token, err := auth.MintToken(secret, "owner-a", ttl, c.Now())
		if err != nil {
			t.Fatal(err)
		}
		return token
	}
	connect := func(token, client string) error {
		_, err := n.Connect(ctx, notify.ConnectRequest{Token: token, ClientID: client, ConnectionID: "conn-" + client})
		return err
	}
	refused := func(wantLists int64) {
		t.Helper()
		if err := connect(mint(time.Hour), "refused"); notify.ErrorCode(err) != notify.CodeForbidden {
			t.Fatalf("connect at the cap = %v, want %s", err, notify.CodeForbidden)
		}
		if got := s.lists.Load(); got != wantLists {
			t.Fatalf("%d lists of the owner, want %d", got, wantLists)
		}
	}

	if err := connect("key-a", "by-key"); err != nil {
		t.Fatal(err)
	}
	if err := connect(mint(75*time.Second), "by-token"); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	refused(1)
	refused(1)
	c.Advance(9 * time.Second)
	refused(1)
	c.Advance(time.Second) // the 10-second hold-off is over
	refused(2)
	c.Advance(5 * time.Second) // the token has expired, 5 seconds before the hold-off would end
	if err := connect(mint(time.Hour), "fresh"); err != nil {
		t.Fatalf("connect once the token expired: %v", err)
	}
	if got := s.lists.Load(); got != 3 {
		t.Fatalf("%d lists of the owner, want 3", got)
	}
	if got := rec.Closed(); len(got) != 1 || got[0] != "conn-by-token" {
		t.Fatalf("closed %v, want only conn-by-token", got)
	}
}
