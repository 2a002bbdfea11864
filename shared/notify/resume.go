package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"

	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/store"
)

// OrderedPusher is a Pusher that queues a message without waiting on the
// network, and so may be posted to under a lock: the in-process hub of local
// mode. With one, the Notifier publishes each owner's events in seq order
// and a resume replays exactly what a connection missed (see Resume).
type OrderedPusher interface {
	Pusher
	// PostEvent posts an owner-wide event numbered seq, as Post does, and
	// remembers the first seq each connection got this way.
	PostEvent(ctx context.Context, connectionID string, data []byte, seq int64) error
	// FirstSeq returns the first seq the connection got through PostEvent,
	// or 0 if none yet.
	FirstSeq(connectionID string) int64
}

// ownerLocks serialize each owner's publishes and resumes in one process:
// 64 stripes, chosen by the owner's hash, so memory stays fixed however many
// owners there are.
type ownerLocks struct{ stripes [64]sync.Mutex }

func (l *ownerLocks) lock(owner string) (unlock func()) {
	h := fnv.New32a()
	h.Write([]byte(owner))
	m := &l.stripes[h.Sum32()%uint32(len(l.stripes))]
	m.Lock()
	return m.Unlock
}

// newEventID returns an id for an event whose trigger gave none.
func newEventID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	return "evt_" + hex.EncodeToString(b[:])
}

// ResumeRequest is a client's {"action":"resume"}: from after Since, or,
// with Current set (no since given), from the current state of its owner's
// running jobs.
type ResumeRequest struct {
	ConnectionID string
	Since        int64
	Current      bool
}

// ResumeResult says what a resume sent.
type ResumeResult struct {
	Owner    string
	Replayed int
	// Head is the seq the client caught up to, as its resumed message says.
	Head int64
	// Gap is set when the client asked for events older than those held, or
	// beyond a history that was reset: it was told so (RESUME_GAP), and the
	// replay started at the oldest held.
	Gap bool
}

// replayPage is how many events a resume reads at once.
const replayPage = 500

// Resume sends a connection what its client missed, in seq order, then
// {"type":"resumed","seq":S,"replayed":K}; the live stream goes on after it.
//
// With an OrderedPusher (local mode) this is exact: the owner's publishes
// wait while the replay is read and queued, events the connection already
// got live are not sent again, and live events come after the resumed
// message. Otherwise (the cloud, where publishers run in other
// invocations) a resume reads until it finds no newer event, and events
// published meanwhile may arrive twice or before replayed ones: each carries
// its id and seq, by which the client orders and de-duplicates.
func (n *Notifier) Resume(ctx context.Context, req ResumeRequest) (ResumeResult, error) {
	if n.history == nil {
		return ResumeResult{}, Errorf(CodeInvalid, "resume is not available: this store keeps no history")
	}
	if req.Since < 0 {
		return ResumeResult{}, Errorf(CodeInvalid, "since must be a whole number >= 0")
	}
	c, err := n.findConnection(ctx, req.ConnectionID)
	if err != nil {
		return ResumeResult{}, err
	}
	res := ResumeResult{Owner: c.OwnerID}
	if n.ordered != nil {
		unlock := n.owners.lock(c.OwnerID)
		defer unlock()
	}
	// Under the owner's lock (the only case where it is not 0) no live
	// event can reach the connection while the replay runs.
	first := n.firstLive(req.ConnectionID)
	send := func(e store.Event) error {
		if first != 0 && e.Seq >= first {
			return nil // this connection got it live
		}
		if err := n.pusher.Post(ctx, req.ConnectionID, event.Stamp(e.Body, e.ID, e.Seq)); err != nil {
			return fmt.Errorf("replay seq %d to %s: %w", e.Seq, req.ConnectionID, err)
		}
		res.Replayed++
		return nil
	}
	now := n.cfg.Now()
	keep := n.cfg.HistoryMaxEvents
	if req.Current {
		events, head, err := n.history.CurrentJobs(ctx, c.OwnerID, keep, now)
		if err != nil {
			return res, fmt.Errorf("read the current jobs of %s: %w", c.OwnerID, err)
		}
		for _, e := range events {
			if err := send(e); err != nil {
				return res, err
			}
		}
		res.Head = head
		req.Since = head // what follows is live; in the cloud, catch up below
		if n.ordered != nil {
			return res, n.sendResumed(ctx, req.ConnectionID, res)
		}
	}
	after := req.Since
	for round := 0; ; round++ {
		events, w, err := n.history.EventsSince(ctx, c.OwnerID, after, replayPage, keep, now)
		if err != nil {
			return res, fmt.Errorf("read the history of %s: %w", c.OwnerID, err)
		}
		// A gap: the client asks for events older than the oldest held, or
		// counts past this history's head because the history was reset
		// (local mode restarted on its embedded store) and its numbering
		// started again. Either way, say so and replay what is held.
		if round == 0 && !req.Current && (after > w.Head || after+1 < w.Oldest) {
			res.Gap = true
			if err := n.sendGap(ctx, req.ConnectionID, req.Since, w.Oldest); err != nil {
				return res, err
			}
			if after > w.Head {
				after = w.Oldest - 1
				continue
			}
		}
		for _, e := range events {
			if err := send(e); err != nil {
				return res, err
			}
			after = e.Seq
		}
		res.Head = max(res.Head, w.Head)
		if len(events) == replayPage {
			continue // more of the same window
		}
		// Caught up with the head read. In the cloud, events published
		// while the replay ran are read again, a few rounds at most; with
		// an ordered pusher nothing can have been published meanwhile.
		if n.ordered != nil || len(events) == 0 || round >= 3 {
			break
		}
		now = n.cfg.Now()
	}
	return res, n.sendResumed(ctx, req.ConnectionID, res)
}

// firstLive is the first seq the connection got live, with an ordered pusher.
func (n *Notifier) firstLive(connectionID string) int64 {
	if n.ordered == nil {
		return 0
	}
	return n.ordered.FirstSeq(connectionID)
}

func (n *Notifier) sendGap(ctx context.Context, connectionID string, since, oldest int64) error {
	msg, _ := json.Marshal(event.ResumeGap{Type: event.TypeError, Code: event.CodeResumeGap, OldestSeq: oldest,
		Error: fmt.Sprintf("events after %d are no longer all held: the replay starts at %d; reload the state", since, oldest)})
	if err := n.pusher.Post(ctx, connectionID, msg); err != nil {
		return fmt.Errorf("send RESUME_GAP to %s: %w", connectionID, err)
	}
	return nil
}

func (n *Notifier) sendResumed(ctx context.Context, connectionID string, res ResumeResult) error {
	msg, _ := json.Marshal(event.Resumed{Type: "resumed", Seq: res.Head, Replayed: res.Replayed})
	if err := n.pusher.Post(ctx, connectionID, msg); err != nil {
		return fmt.Errorf("send resumed to %s: %w", connectionID, err)
	}
	n.log.InfoContext(ctx, "resumed", "owner", res.Owner, "connectionId", connectionID,
		"replayed", res.Replayed, "head", res.Head, "gap", res.Gap)
	return nil
}

// findConnection finds the record of a connection. The store's lookup is
// strongly consistent: a resume sent right after the connect finds it.
func (n *Notifier) findConnection(ctx context.Context, connectionID string) (store.Connection, error) {
	c, err := n.store.FindConnection(ctx, connectionID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Connection{}, fmt.Errorf("connection %s has no record: %w", connectionID, err)
	}
	return c, err
}
