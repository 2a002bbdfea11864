package notify

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/store"
)

// Handoff runs the send half of a publish somewhere else: in the cloud, a
// fan-out function sized for large owners (Lambda gives CPU in proportion
// to memory, and a function small enough to publish to a few connections
// cheaply takes seconds to post to thousands). The publishing Notifier has
// numbered and kept the event already; the other side only lists the
// owner's connections and posts the frame to them (Notifier.FanOut).
type Handoff interface {
	// FanOut has f posted to its owner's connections and returns the
	// outcome's counts. An error means the other side did not answer with
	// them (not reached, or failed as a whole).
	FanOut(ctx context.Context, f Fanout) (Result, error)
}

// Fanout is what the other side of a hand-off needs to finish a publish.
type Fanout struct {
	OwnerID string `json:"ownerId"`
	// ClientID is the one client the event is for; empty: every connection
	// of the owner.
	ClientID string     `json:"clientId,omitempty"`
	Type     event.Type `json:"type"`
	// ID and Seq are the event's, as Frame carries them (Seq 0: none).
	ID  string `json:"id"`
	Seq int64  `json:"seq,omitempty"`
	// Frame is the message exactly as every connection gets it: encoded,
	// stamped with the id and seq (base64 in JSON, so not a byte changes).
	Frame []byte `json:"frame"`
}

// FirstPager is a Store that can tell from one bounded read whether an
// owner has more than a given number of connection records: a publishing
// function that hands large fan-outs off then decides without listing and
// parsing thousands of records. Both stores implement it (storetest).
type FirstPager interface {
	// ListConnectionsUpTo reads at most limit+1 of ownerID's records.
	// complete reports whether they were all of them: then conns is every
	// live record, as ListConnections returns it, and counted the owner's
	// count (0 if it has none), as ListConnectionsCounted. Otherwise the
	// owner has more than limit records (live or expired; an expired
	// record not yet removed may count) and conns is the live ones of
	// those read. An owner of more than limit live records is never
	// complete.
	ListConnectionsUpTo(ctx context.Context, ownerID string, limit int, now time.Time) (conns []store.Connection, counted int, complete bool, err error)
}

// handingOff reports whether publishes may be handed off.
func (n *Notifier) handingOff() bool { return n.cfg.Handoff != nil && n.ordered == nil }

// publishList is a publish's list of ownerID's connections, and whether
// the publish sends from here (whole: conns is every live record) or hands
// the send off (the owner has more than HandoffAbove records; conns is the
// first of them).
func (n *Notifier) publishList(ctx context.Context, ownerID string) (conns []store.Connection, whole bool, err error) {
	if !n.handingOff() {
		conns, err = n.listConnections(ctx, ownerID)
		return conns, true, err
	}
	fp, ok := n.store.(FirstPager)
	if !ok {
		conns, err = n.listConnections(ctx, ownerID)
		return conns, len(conns) <= n.cfg.HandoffAbove, err
	}
	conns, counted, whole, err := fp.ListConnectionsUpTo(ctx, ownerID, n.cfg.HandoffAbove, n.cfg.Now())
	if err != nil {
		return nil, false, fmt.Errorf("query connections of %s: %w", ownerID, err)
	}
	if whole {
		n.correctCount(ctx, ownerID, counted, len(conns))
	}
	return conns, whole, nil
}

// handOff is send for an owner of more than HandoffAbove connections: the
// pushes run on the other side of the hand-off, and their outcome is
// counted, reported and logged here, as send does, so the publishing
// function's figures and log are the same either way. A hand-off that
// fails counts every push as failed (at least the connections seen, and
// one for an event to one client), so the caller fails the publish as it
// does when pushes fail: a queue's record is retried, the API answers it
// failed. The other side removes gone connections from the store itself.
func (n *Notifier) handOff(ctx context.Context, p *prepared, seen []store.Connection) {
	res, err := n.cfg.Handoff.FanOut(ctx, Fanout{OwnerID: p.ownerID, ClientID: p.clientID, Type: p.kind,
		ID: p.res.ID, Seq: p.res.Seq, Frame: p.data})
	if err != nil {
		failed := len(seen)
		if p.clientID != "" || failed == 0 {
			failed = 1
		}
		res = Result{Failed: failed}
		n.log.WarnContext(ctx, "hand-off failed", "owner", p.ownerID, "id", p.res.ID, "err", err)
	}
	p.res.Delivered, p.res.Gone, p.res.Connecting, p.res.Failed = res.Delivered, res.Gone, res.Connecting, res.Failed
	n.report(ctx, p)
}

// FanOut is the other side of a hand-off: f's frame posted to its owner's
// live connections (or its one client's), gone connections removed and
// the owner's count corrected, as a publish's send does. It numbers and
// keeps nothing (the publishing side did), and reports no publish to
// Metrics: the publishing side reports it, with these counts.
func (n *Notifier) FanOut(ctx context.Context, f Fanout) (Result, error) {
	if f.OwnerID == "" || f.ID == "" || len(f.Frame) == 0 {
		return Result{}, Errorf(CodeInvalid, "a fan-out needs an owner, an event id and a frame")
	}
	if len(f.Frame) > n.cfg.MaxMessageBytes {
		return Result{}, Errorf(CodeInvalid, "frame is %d bytes, over the %d-byte message limit", len(f.Frame), n.cfg.MaxMessageBytes)
	}
	conns, err := n.listConnections(ctx, f.OwnerID)
	if err != nil {
		return Result{}, err
	}
	if f.ClientID != "" {
		conns = slices.DeleteFunc(conns, func(c store.Connection) bool { return c.ClientID != f.ClientID })
	}
	res := Result{ID: f.ID, Seq: f.Seq}
	n.fanOut(ctx, conns, f.Frame, f.Seq, &res)
	p := prepared{ownerID: f.OwnerID, clientID: f.ClientID, kind: f.Type, res: res}
	n.log.InfoContext(ctx, "fanned out", publishedAttrs(&p)...)
	return res, nil
}
