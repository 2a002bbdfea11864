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

// ResumeResult says what a resume sent. With a StreamPusher the replay is
// written after Resume returns: Replayed is then 0, and the resumed message
// (and the log line "resumed") carry the count.
type ResumeResult struct {
	Owner    string
	Replayed int
	// Head is the seq the client caught up to, as its resumed message says.
	Head int64
	// Gap is set when the client asked for events older than those held, or
	// beyond a history that was reset: it was told so (RESUME_GAP), and the
	// replay started at the oldest held.
	Gap bool
	// More is set when a resume without since found more running jobs than
	// MaxCurrentJobs: only the most recent were sent.
	More bool
}

// StreamPusher is an OrderedPusher that paces a replay by its connection:
// rather than take every message of a replay at once, it asks for the next
// one when it has written the previous (the hub of local mode). A replay of
// the whole history then holds one page of events and one frame per
// connection, whatever its size.
type StreamPusher interface {
	OrderedPusher
	// PostStream has the connection write what next returns, one message
	// at a time, after what is already queued for it and before anything
	// posted later, until next returns nil. It returns at once; an error
	// of next closes the connection. Only one stream runs per connection:
	// a second gets an error with CodeInvalid.
	PostStream(ctx context.Context, connectionID string, next func(context.Context) ([]byte, error)) error
}

// Closer is a Pusher that can close a connection, as the Management API's
// DeleteConnection does: what was posted before is delivered first.
type Closer interface {
	CloseConnection(ctx context.Context, connectionID string) error
}

// CloseConnection sends msg (unless nil) to the connection, then closes it:
// for a client that keeps breaking the protocol. A pusher that cannot close
// gives an error.
func (n *Notifier) CloseConnection(ctx context.Context, connectionID string, msg []byte) error {
	closer, ok := n.pusher.(Closer)
	if !ok {
		return fmt.Errorf("close %s: the pusher cannot close connections", connectionID)
	}
	if msg != nil {
		if err := n.pusher.Post(ctx, connectionID, msg); err != nil {
			return fmt.Errorf("close %s: %w", connectionID, err)
		}
	}
	return closer.CloseConnection(ctx, connectionID)
}

// replayPage is how many events a resume reads at once.
const replayPage = 500

// MaxCurrentJobs bounds the snapshot a resume without since sends: the
// latest event of at most this many running jobs, the most recently active;
// when more run, resumed says "more": true.
const MaxCurrentJobs = 1000

// Resume sends a connection what its client missed, in seq order, packed
// into {"type":"replay","events":[…]} messages of up to MaxMessageBytes,
// then {"type":"resumed","seq":S,"replayed":K}; the live stream goes on
// after it. Each message is posted once the one before it is sent, so a
// replay of the whole history is paced by its connection: in the cloud,
// tens of posts one after another; with a StreamPusher (local mode), pages
// of the history read as the connection's writer drains.
//
// With an OrderedPusher (local mode) this is exact: the head is read while
// the owner's publishes wait, events the connection already got live are
// not sent again, and live events come after the resumed message.
// Otherwise (the cloud, where publishers run in other invocations) a resume
// reads until it finds no newer event, and events published meanwhile may
// arrive twice or before replayed ones: each carries its id and seq, by
// which the client orders and de-duplicates.
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
	r := &replayer{n: n, req: req, res: ResumeResult{Owner: c.OwnerID}, after: req.Since}
	if n.ordered == nil {
		return r.postAll(ctx)
	}
	unlock := n.owners.lock(c.OwnerID)
	defer unlock()
	// Under the owner's lock no live event can reach the connection while
	// the head is read: every event up to it either reached the connection
	// live (then from first on) or is replayed, and every later one goes
	// out live, after the replay.
	r.ordered = true
	r.first = n.ordered.FirstSeq(req.ConnectionID)
	if err := r.fill(ctx); err != nil {
		return r.res, err
	}
	r.res.Head = r.head
	if sp, ok := n.pusher.(StreamPusher); ok {
		// Once the stream is set, the connection's writer owns r.
		res := r.res
		return res, sp.PostStream(ctx, req.ConnectionID, r.next)
	}
	return r.postAll(ctx)
}

// replayer produces a resume's messages in order, one at a time: a
// RESUME_GAP error if the client asked for what is no longer held, replay
// frames, then resumed. It holds at most a page of events and a frame.
type replayer struct {
	n   *Notifier
	req ResumeRequest
	res ResumeResult

	ordered bool  // the head read first bounds the replay; one read past it ends it
	first   int64 // the first seq the connection got live (ordered), 0 if none
	head    int64 // the head read first: what resumed reports

	started   bool
	after     int64         // the last seq read
	page      []store.Event // read and not yet packed
	round     int           // reads that found the head (cloud catch-up)
	exhausted bool          // nothing more to read
	gap       []byte        // a RESUME_GAP message to send first
	done      bool          // resumed was produced
}

// postAll posts every message of the replay, each after the one before.
func (r *replayer) postAll(ctx context.Context) (ResumeResult, error) {
	for {
		msg, err := r.next(ctx)
		if err != nil {
			return r.res, err
		}
		if msg == nil {
			return r.res, nil
		}
		if err := r.n.pusher.Post(ctx, r.req.ConnectionID, msg); err != nil {
			return r.res, fmt.Errorf("replay to %s: %w", r.req.ConnectionID, err)
		}
	}
}

// next returns the replay's next message, or nil once resumed was returned.
func (r *replayer) next(ctx context.Context) ([]byte, error) {
	if r.done {
		return nil, nil
	}
	if err := r.fill(ctx); err != nil {
		return nil, err
	}
	if r.gap != nil {
		msg := r.gap
		r.gap = nil
		return msg, nil
	}
	frame := newReplayFrame(r.n.cfg.MaxMessageBytes)
	for {
		if err := r.fill(ctx); err != nil {
			return nil, err
		}
		if len(r.page) == 0 {
			break
		}
		e := r.page[0]
		if !frame.add(event.Stamp(e.Body, e.ID, e.Seq)) {
			break // full: this event opens the next frame
		}
		r.page = r.page[1:]
		r.res.Replayed++
	}
	if !frame.empty() {
		return frame.bytes(), nil
	}
	r.done = true
	msg, _ := json.Marshal(event.Resumed{Type: "resumed", Seq: r.res.Head, Replayed: r.res.Replayed, More: r.res.More})
	r.n.log.InfoContext(ctx, "resumed", "owner", r.res.Owner, "connectionId", r.req.ConnectionID,
		"replayed", r.res.Replayed, "head", r.res.Head, "gap", r.res.Gap, "more", r.res.More)
	return msg, nil
}

// fill reads the next page of the history when the one held is used up,
// until the history is exhausted.
func (r *replayer) fill(ctx context.Context) error {
	for len(r.page) == 0 && !r.exhausted {
		if err := r.read(ctx); err != nil {
			return err
		}
	}
	return nil
}

// read reads one page, keeping the events to replay.
func (r *replayer) read(ctx context.Context) error {
	n, owner := r.n, r.res.Owner
	now, keep := n.cfg.Now(), n.cfg.HistoryMaxEvents
	if r.req.Current && !r.started {
		r.started = true
		events, head, err := n.history.CurrentJobs(ctx, owner, keep, now)
		if err != nil {
			return fmt.Errorf("read the current jobs of %s: %w", owner, err)
		}
		if len(events) > MaxCurrentJobs {
			events, r.res.More = events[len(events)-MaxCurrentJobs:], true
		}
		r.head, r.res.Head, r.after = head, head, head
		r.keep(events)
		// In the ordered case what follows is live; in the cloud, catch up.
		r.exhausted = r.ordered
		return nil
	}
	events, w, err := n.history.EventsSince(ctx, owner, r.after, replayPage, keep, now)
	if err != nil {
		return fmt.Errorf("read the history of %s: %w", owner, err)
	}
	if !r.started {
		r.started = true
		r.head = w.Head
		// A gap: the client asks for events older than the oldest held, or
		// counts past this history's head because the history was reset
		// (local mode restarted on its embedded store) and its numbering
		// started again. Either way, say so and replay what is held.
		if r.after > w.Head || r.after+1 < w.Oldest {
			r.res.Gap = true
			r.gap, _ = json.Marshal(event.ResumeGap{Type: event.TypeError, Code: event.CodeResumeGap, OldestSeq: w.Oldest,
				Error: fmt.Sprintf("events after %d are no longer all held: the replay starts at %d; reload the state", r.req.Since, w.Oldest)})
			if r.after > w.Head {
				r.after = w.Oldest - 1
				return nil // read again from the oldest
			}
		}
	}
	if len(events) > 0 {
		r.after = events[len(events)-1].Seq
	}
	r.keep(events)
	r.res.Head = max(r.res.Head, w.Head)
	if r.ordered {
		r.res.Head = r.head
		// Past the head read first, everything went out live.
		r.exhausted = len(events) < replayPage || r.after >= r.head
		return nil
	}
	if len(events) == replayPage {
		return nil // more of the same window
	}
	// Caught up with the head read. In the cloud, events published while
	// the replay ran are read again, a few rounds at most.
	r.exhausted = len(events) == 0 || r.round >= 3
	r.round++
	return nil
}

// keep adds the events the client should get to the page: in the ordered
// case, none it got live and none past the head read first.
func (r *replayer) keep(events []store.Event) {
	for _, e := range events {
		if r.ordered && ((r.first != 0 && e.Seq >= r.first) || e.Seq > r.head) {
			continue
		}
		r.page = append(r.page, e)
	}
}

// replayFrame packs stamped events into {"type":"replay","events":[…]}
// of at most limit bytes.
type replayFrame struct {
	buf   []byte
	n     int
	limit int
}

const (
	replayFrameOpen  = `{"type":"replay","events":[`
	replayFrameClose = `]}`
)

func newReplayFrame(limit int) *replayFrame {
	return &replayFrame{buf: append(make([]byte, 0, 4096), replayFrameOpen...), limit: limit}
}

// add appends ev and reports true, or reports false when the frame holds
// events already and ev would take it over the limit. A first event is
// always taken: an event is far smaller than a message.
func (f *replayFrame) add(ev []byte) bool {
	size := len(f.buf) + len(ev) + len(replayFrameClose)
	if f.n > 0 {
		size++ // the comma
	}
	if f.n > 0 && size > f.limit {
		return false
	}
	if f.n > 0 {
		f.buf = append(f.buf, ',')
	}
	f.buf = append(f.buf, ev...)
	f.n++
	return true
}

func (f *replayFrame) empty() bool { return f.n == 0 }

func (f *replayFrame) bytes() []byte { return append(f.buf, replayFrameClose...) }

// findConnection finds the record of a connection. The store's lookup is
// strongly consistent: a resume sent right after the connect finds it, and
// one that finds none comes from a connection whose record was removed
// (CodeUnregistered).
func (n *Notifier) findConnection(ctx context.Context, connectionID string) (store.Connection, error) {
	c, err := n.store.FindConnection(ctx, connectionID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Connection{}, Errorf(CodeUnregistered, "this connection is no longer registered, so it would get no events: it is closed; connect again and resume")
	}
	return c, err
}
