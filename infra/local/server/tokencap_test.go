package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/notify/notifytest"
)

// TestALeakedShortTokenCannotLockItsOwnerOut is issue 19's scenario as a
// client sees it: 20 connections opened with an 8-second token fill the
// owner's cap of 20; while the token is valid the cap holds (403), and once
// it has expired the owner's next connect with a fresh token gets in, and
// each of the 20 gets TOKEN_EXPIRED and a close (1000).
func TestALeakedShortTokenCannotLockItsOwnerOut(t *testing.T) {
	t.Parallel()
	const limit = 20
	secret := []byte(strings.Repeat("k", auth.MinSecretBytes))
	clock := notifytest.NewClock(time.Now())
	cfg := twoOwners()
	cfg.Notify = notify.Config{MaxConnectionsPerOwner: limit, Now: clock.Now}
	cfg.Tokens = auth.NewTokenVerifier(auth.StaticSecrets{secret}, auth.TokenConfig{Now: clock.Now})
	h := start(t, cfg)
	mint := func(ttl time.Duration) string {
		token, err := auth.MintToken(secret, ownerA, ttl, clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return token
	}

	leaked := mint(8 * time.Second)
	var held []*asyncapi.Conn
	for i := range limit {
		held = append(held, h.connect(t, fmt.Sprintf("leaked-%d", i), leaked))
	}
	if status, e := refusal(t, h, "while-valid", mint(time.Hour)); status != http.StatusForbidden {
		t.Fatalf("connect while the leaked token is valid: %d %v, want 403", status, e)
	}

	clock.Advance(notify.DefaultConnectGrace + time.Second)
	if status, _ := refusal(t, h, "leaked-again", leaked); status != http.StatusUnauthorized {
		t.Fatalf("connect with the expired token: %d, want 401", status)
	}
	owner := h.connect(t, "owner", mint(time.Hour))
	for i, c := range held {
		e := read(t, c)
		if e["type"] != "error" || e["code"] != notify.CodeTokenExpired {
			t.Fatalf("leaked-%d got %v, want an error of code %s", i, e, notify.CodeTokenExpired)
		}
		if ce := readClose(t, c); ce.Code != websocket.StatusNormalClosure {
			t.Fatalf("leaked-%d closed with %d, want 1000", i, ce.Code)
		}
	}
	for i := range limit {
		id := fmt.Sprintf("leaked-%d", i)
		eventually(t, id+"'s record removed", func() bool { return !h.hasRecord(t, ownerA, id) })
	}
	// The places are the owner's again: 19 more connects fit, then the cap.
	for i := range limit - 1 {
		h.connect(t, fmt.Sprintf("fresh-%d", i), mint(time.Hour))
	}
	if status, _ := refusal(t, h, "one-too-many", mint(time.Hour)); status != http.StatusForbidden {
		t.Fatalf("connect past the cap: %d, want 403", status)
	}
	// The owner's first connection is untouched: it still gets events.
	h.publishJobs(t, envelope(ownerA, "", seedJobProgress))
	if e := read(t, owner); e["type"] != "job_progress" {
		t.Fatalf("the owner's connection got %v, want the job_progress", e)
	}
}
