package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/store"
)

// BatchItem is one event of a PublishBatch: what Publish takes, and the
// group it must keep its order in.
type BatchItem struct {
	OwnerID, ClientID, ID string
	Event                 event.Event
	// Group names the items that go out in their order (a FIFO queue's
	// message group): an item is held back, not published, once an item
	// before it of the same group failed for another reason than being
	// invalid. Empty: no group.
	Group string
}

// ErrHeldBack is the error of a batch item not published because an item
// before it in its group failed.
var ErrHeldBack = errors.New("held back behind a failed event of its group")

// ErrPushesFailed is the error of a batch item some of whose pushes failed
// (not gone): it is to be retried, and the connections that got it keep
// the first copy by its id.
var ErrPushesFailed = errors.New("pushes failed")

// PublishBatch publishes items in their order, each as Publish would, and
// returns each one's result and error: a CodeInvalid error for an event
// that can never be sent, ErrHeldBack, ErrPushesFailed (with its result),
// the context's error for an item not reached in time, or the store's.
//
// What it saves over a Publish per item is the owner's connection list: the
// items of one owner are all numbered and kept first, in their order, then
// the owner's records are listed once and every item pushed to them in
// their order. The list is taken after the last item was kept, as a
// Publish takes it after its own: a connection missing from it connected
// after every item was kept, and its resume finds them all.
//
// An owner of more than the hand-off's threshold of records has each of
// its items handed off (Config.Handoff) instead, one after the other.
//
// With an ordered pusher (local mode), each item is a Publish of its own:
// those hold the owner's lock from numbering to queueing, which a list
// shared by several items would have to hold across them all.
func (n *Notifier) PublishBatch(ctx context.Context, items []BatchItem) ([]Result, []error) {
	b := batch{items: items, res: make([]Result, len(items)), errs: make([]error, len(items)), failedAt: map[string]int{}}
	if n.ordered != nil {
		for i, it := range items {
			if b.skip(ctx, i) {
				continue
			}
			res, err := n.Publish(ctx, it.OwnerID, it.ClientID, it.ID, it.Event)
			b.done(i, res, err)
		}
		return b.res, b.errs
	}
	ready := make([]*prepared, len(items))
	for i, it := range items {
		if b.skip(ctx, i) {
			continue
		}
		p, err := n.prepare(ctx, it.OwnerID, it.ClientID, it.ID, it.Event)
		if err != nil {
			b.done(i, Result{}, err)
			continue
		}
		ready[i] = &p
	}
	type listing struct {
		conns []store.Connection
		whole bool // else the owner's sends are handed off
		err   error
	}
	lists := map[string]*listing{}
	for i, p := range ready {
		if p == nil || b.skip(ctx, i) {
			continue
		}
		l := lists[p.ownerID]
		if l == nil {
			l = &listing{}
			l.conns, l.whole, l.err = n.publishList(ctx, p.ownerID)
			lists[p.ownerID] = l
		}
		if l.err != nil {
			b.done(i, Result{}, l.err)
			continue
		}
		if !l.whole {
			// One hand-off per item: its outcome decides, as a send's
			// does, whether the later items of its group go out.
			n.handOff(ctx, p, l.conns)
			b.done(i, p.res, nil)
			continue
		}
		if gone := n.send(ctx, p, l.conns); gone != nil {
			// Their records are removed: the owner's later items skip them.
			l.conns = slices.DeleteFunc(slices.Clone(l.conns), func(c store.Connection) bool { return gone[c.ConnectionID] })
		}
		b.done(i, p.res, nil)
	}
	return b.res, b.errs
}

// batch is PublishBatch's bookkeeping.
type batch struct {
	items    []BatchItem
	res      []Result
	errs     []error
	failedAt map[string]int // a group's first failed item
}

// skip reports whether item i is not to be published, recording why: the
// deadline, or an earlier failure of its group.
func (b *batch) skip(ctx context.Context, i int) bool {
	if err := ctx.Err(); err != nil {
		b.errs[i] = fmt.Errorf("not published in time: %w", err)
		return true
	}
	if f, ok := b.failedAt[b.items[i].Group]; ok && f < i {
		b.errs[i] = ErrHeldBack
		b.fail(i)
		return true
	}
	return false
}

// done records item i's outcome; a failure other than an invalid event
// holds back the later items of its group.
func (b *batch) done(i int, res Result, err error) {
	if err == nil && res.Failed > 0 {
		err = fmt.Errorf("%w: %d of %d", ErrPushesFailed, res.Failed, res.Failed+res.Delivered)
	}
	b.res[i], b.errs[i] = res, err
	if err != nil && ErrorCode(err) != CodeInvalid {
		b.fail(i)
	}
}

// fail marks item i's group failed from i on.
func (b *batch) fail(i int) {
	g := b.items[i].Group
	if _, ok := b.failedAt[g]; g != "" && !ok {
		b.failedAt[g] = i
	}
}
