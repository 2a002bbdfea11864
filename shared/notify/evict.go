package notify

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsnotify/wsnotify/shared/store"
)

// CodeTokenExpired is the code of the error event a connection gets before
// it is closed to make room for a new connection of its owner: its signed
// token has expired, and the owner is at its cap.
const CodeTokenExpired = "TOKEN_EXPIRED"

// tokenExpiredMessage is that error event.
var tokenExpiredMessage = []byte(`{"type":"error","error":"this connection's signed token has expired and its owner has reached its connection limit: the connection is closed to make room; connect again with a fresh token","code":"` + CodeTokenExpired + `"}`)

// evictExpiredTokens closes owner's connections whose signed token has
// expired, and removes their records, for a connect that found the owner at
// its cap; it returns how many it closed whose records are gone (removed
// here and released from the count, or by their $disconnect first). A
// connection within the connect grace is left alone: it may still be in its
// handshake, when a close would not reach it. Connections opened with an API
// key are never closed here: a key lives until it is revoked, and revoking
// it closes them.
//
// It needs a pusher that can close connections; with another it removes
// nothing. A failure is logged and leaves the connection counted: the
// connect is then refused as it would have been.
func (n *Notifier) evictExpiredTokens(ctx context.Context, owner string) int {
	if _, ok := n.pusher.(Closer); !ok {
		return 0
	}
	now := n.cfg.Now()
	if !n.sweeps.due(owner, now) {
		return 0
	}
	conns, err := n.store.ListConnections(ctx, owner, now)
	if err != nil {
		n.log.WarnContext(ctx, "list connections for expired tokens", "owner", owner, "err", err)
		return 0
	}
	var expired []store.Connection
	next := now.Add(sweepHoldOff) // when the next sweep could find one
	for _, c := range conns {
		switch {
		case c.TokenExpiresAt.IsZero():
		case c.TokenExpired(now) && !n.young(c):
			expired = append(expired, c)
		case c.TokenExpired(now):
			next = minTime(next, c.ConnectedAt.Add(n.cfg.ConnectGrace))
		default:
			next = minTime(next, c.TokenExpiresAt)
		}
	}
	if len(expired) == 0 {
		n.sweeps.hold(owner, now, next)
		return 0
	}
	var closed, removed atomic.Int64
	g := newWorkers(n.cfg.Concurrency)
	for _, c := range expired {
		g.Go(func() {
			// A connection already gone is no failure: its record can go.
			if err := n.CloseConnection(ctx, c.ConnectionID, tokenExpiredMessage); err != nil && !errors.Is(err, ErrGone) {
				n.log.WarnContext(ctx, "close connection of an expired token", "owner", owner, "clientId", c.ClientID, "connectionId", c.ConnectionID, "err", err)
				return
			}
			ok, err := n.store.RemoveClient(ctx, c.OwnerID, c.ClientID, c.ConnectionID)
			if err != nil {
				n.log.WarnContext(ctx, "remove connection of an expired token", "owner", owner, "clientId", c.ClientID, "connectionId", c.ConnectionID, "err", err)
				return
			}
			closed.Add(1)
			if ok {
				removed.Add(1) // else its $disconnect removed it first, and released it
			}
		})
	}
	g.Wait()
	if k := int(removed.Load()); k > 0 {
		n.release(ctx, owner, k)
	}
	freed := int(closed.Load())
	if freed == 0 {
		n.sweeps.hold(owner, now, now.Add(sweepHoldOff))
	}
	n.log.InfoContext(ctx, "closed connections of expired signed tokens", "owner", owner, "expired", len(expired), "closed", freed)
	return freed
}

// minTime returns the earlier of a and b.
func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// sweepHoldOff is how long after a sweep of an owner's records that found
// nothing to close no other sweep of that owner runs in this process, unless
// one of the records it saw could be closed sooner. It bounds what connects
// refused at the cap cost: one list of the owner's records per hold-off,
// not one per connect.
const sweepHoldOff = 10 * time.Second

// maxHeldOwners bounds the owners a process remembers a hold-off for; past
// it, the hold-offs that have run out are forgotten, or all.
const maxHeldOwners = 10000

// sweepHolds remembers, per owner, when the next sweep may run.
type sweepHolds struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// due reports whether a sweep of owner may run at now.
func (h *sweepHolds) due(owner string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	until, ok := h.until[owner]
	return !ok || !now.Before(until)
}

// hold defers owner's next sweep, at now, until until.
func (h *sweepHolds) hold(owner string, now, until time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.until == nil {
		h.until = make(map[string]time.Time)
	}
	if len(h.until) >= maxHeldOwners {
		for o, u := range h.until {
			if !now.Before(u) {
				delete(h.until, o)
			}
		}
		if len(h.until) >= maxHeldOwners {
			clear(h.until)
		}
	}
	h.until[owner] = until
}
