package notify

import (
	"context"
	"time"

	"github.com/wsnotify/wsnotify/shared/store"
)

// History keeps each owner's owner-wide events for a while, numbered, so a
// client that reconnects can resume where it left off. Implementations:
// store/memory and store/dynamo (the storetest suite runs on both).
//
// keep bounds the events held per owner (the newest keep events), beside
// each event's own ExpiresAt; whichever is reached first ends an event's
// stay.
type History interface {
	// RecordEvent gives e the next seq of its owner and keeps it. If an
	// event with e's ID is held already (a redelivered trigger record), it
	// keeps nothing new and returns the held event with duplicate set (a
	// superseded job_progress, whose body may be no longer held, with e's
	// body and its first seq).
	RecordEvent(ctx context.Context, e store.Event, keep int, now time.Time) (recorded store.Event, duplicate bool, err error)
	// EventsSince returns up to limit held events of owner with seq above
	// since, in seq order, and the history's window. A job_progress is a
	// job's state: it is returned only while it is its job's latest event,
	// so the seqs of the steps a later event of the job superseded are
	// skipped; every other event is returned.
	EventsSince(ctx context.Context, owner string, since int64, limit, keep int, now time.Time) ([]store.Event, store.Window, error)
	// CurrentJobs returns, in seq order, the latest held event of each of
	// owner's jobs whose latest event is a job_progress (a job still
	// running), and the history's head: the state is as of that seq.
	CurrentJobs(ctx context.Context, owner string, keep int, now time.Time) (jobs []store.Event, head int64, err error)
}

// Retention defaults: how long and how many events an owner's history
// holds, whichever is reached first.
const (
	DefaultHistoryTTL       = 24 * time.Hour
	DefaultHistoryMaxEvents = 10000
)
