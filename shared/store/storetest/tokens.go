package storetest

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/notify/notifytest"
)

// tokenCap is the owner's cap in the lock-out tests: 20 connections.
const tokenCap = 20

// tokenBed is a notifier over a store that accepts acct_1's API key and
// signed tokens, with one clock for both, which the test moves.
type tokenBed struct {
	s      Store
	rec    *notifytest.Recorder
	n      *notify.Notifier
	key    string
	secret []byte
	clock  *notifytest.Clock
}

func newTokenBed(t *testing.T, newStore func(*testing.T) Store) *tokenBed {
	b := &tokenBed{secret: []byte(strings.Repeat("s", auth.MinSecretBytes)), clock: notifytest.NewClock(epoch.Add(time.Hour))}
	b.s = newStore(t)
	key, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.s.PutKey(ctxT(t), auth.Key{Hash: auth.Hash(key), OwnerID: "acct_1", CreatedAt: epoch}); err != nil {
		t.Fatalf("PutKey: %v", err)
	}
	b.key = key
	b.rec = notifytest.NewRecorder()
	a := auth.NewAuthenticator(b.s).WithTokens(auth.NewTokenVerifier(auth.StaticSecrets{b.secret}, auth.TokenConfig{Now: b.clock.Now}))
	b.n = notify.New(a, b.s, b.rec, slog.New(slog.DiscardHandler), notify.Config{
		ConnectionTTL: ttl, MaxConnectionsPerOwner: tokenCap, Now: b.clock.Now,
	})
	return b
}

// mint returns a token of acct_1 valid for ttl from the clock's now.
func (b *tokenBed) mint(t *testing.T, ttl time.Duration) string {
	t.Helper()
	token, err := auth.MintToken(b.secret, "acct_1", ttl, b.clock.Now())
	if err != nil {
		t.Fatalf("MintToken: %v", err)
	}
	return token
}

// connect connects client tab-<n> with token as connection n.
func (b *tokenBed) connect(t *testing.T, token string, n int) error {
	t.Helper()
	_, err := b.n.Connect(ctxT(t), notify.ConnectRequest{Token: token, ClientID: fmt.Sprintf("tab-%d", n), ConnectionID: connectionID(n)})
	return err
}

// fill connects clients first to first+k-1 with token, each accepted.
func (b *tokenBed) fill(t *testing.T, token string, first, k int) []string {
	t.Helper()
	var conns []string
	for n := first; n < first+k; n++ {
		if err := b.connect(t, token, n); err != nil {
			t.Fatalf("connect %d: %v", n, err)
		}
		conns = append(conns, connectionID(n))
	}
	return conns
}

// wantRefusedFull checks that a connect with token is refused for the cap.
func (b *tokenBed) wantRefusedFull(t *testing.T, token string, n int) {
	t.Helper()
	if err := b.connect(t, token, n); notify.ErrorCode(err) != notify.CodeForbidden {
		t.Fatalf("connect at the cap = %v, want %s", err, notify.CodeForbidden)
	}
}

// wantLive checks that acct_1's live records are exactly conns, and counted so.
func (b *tokenBed) wantLive(t *testing.T, conns []string) {
	t.Helper()
	got := ids(mustList(t, b.s, "acct_1", b.clock.Now()))
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(conns))) {
		t.Fatalf("live connections %v, want %v", got, conns)
	}
	wantCount(t, b.s, "acct_1", len(conns))
}

// testExpiredTokens runs the rule that keeps a leaked short-lived token
// from locking its owner out: at the cap, connections whose signed token
// has expired make room for a new connect; nothing else does.
func testExpiredTokens(t *testing.T, newStore func(*testing.T) Store) {
	t.Run("connections of an expired token make room for a fresh token", func(t *testing.T) {
		b := newTokenBed(t, newStore)
		leaked := b.mint(t, 8*time.Second)
		held := b.fill(t, leaked, 1, tokenCap)
		b.wantRefusedFull(t, leaked, 100) // not expired yet: the cap holds
		b.clock.Advance(notify.DefaultConnectGrace + time.Second)
		if err := b.connect(t, leaked, 101); notify.ErrorCode(err) != notify.CodeUnauthorized {
			t.Fatalf("connect with the expired token = %v, want %s", err, notify.CodeUnauthorized)
		}
		if err := b.connect(t, b.mint(t, 8*time.Second), 200); err != nil {
			t.Fatalf("connect with a fresh token at the cap: %v", err)
		}
		if got := b.rec.Closed(); !slices.Equal(slices.Sorted(slices.Values(got)), held) {
			t.Fatalf("closed %v, want the %d connections of the expired token", got, len(held))
		}
		for _, c := range held {
			if got := b.rec.Sent(c); len(got) != 1 || !strings.Contains(got[0], `"code":"`+notify.CodeTokenExpired+`"`) {
				t.Fatalf("connection %s got %q before its close, want one %s error", c, got, notify.CodeTokenExpired)
			}
		}
		b.wantLive(t, []string{connectionID(200)})
		// The room made is the owner's: 19 more fresh connects fit.
		b.fill(t, b.mint(t, time.Hour), 201, tokenCap-1)
		b.wantRefusedFull(t, b.mint(t, time.Hour), 300)
	})
	t.Run("connections whose token has not expired keep the cap", func(t *testing.T) {
		b := newTokenBed(t, newStore)
		held := b.fill(t, b.mint(t, time.Hour), 1, tokenCap)
		b.clock.Advance(10 * time.Minute)
		b.wantRefusedFull(t, b.mint(t, time.Hour), 100)
		if got := b.rec.Closed(); len(got) != 0 {
			t.Fatalf("closed %v, want none", got)
		}
		b.wantLive(t, held)
	})
	t.Run("connections of an API key are never closed for room", func(t *testing.T) {
		b := newTokenBed(t, newStore)
		keyed := b.fill(t, b.key, 1, tokenCap-1)
		short := b.fill(t, b.mint(t, 8*time.Second), 50, 1)
		b.clock.Advance(10 * time.Second)
		// Expired, but within the connect grace: it may still be in its
		// handshake, so it is left alone for now.
		b.wantRefusedFull(t, b.mint(t, time.Hour), 100)
		b.clock.Advance(notify.DefaultConnectGrace)
		if err := b.connect(t, b.mint(t, time.Hour), 101); err != nil {
			t.Fatalf("connect once the short token's connection is past the grace: %v", err)
		}
		if got := b.rec.Closed(); !slices.Equal(got, short) {
			t.Fatalf("closed %v, want only %v", got, short)
		}
		b.clock.Advance(30 * time.Minute) // the API key's connections are older than any token here
		b.wantRefusedFull(t, b.mint(t, time.Hour), 102)
		b.wantRefusedFull(t, b.key, 103)
		if got := b.rec.Closed(); !slices.Equal(got, short) {
			t.Fatalf("closed %v, want only %v: API-key connections stay", got, short)
		}
		b.wantLive(t, append(keyed, connectionID(101)))
	})
}
