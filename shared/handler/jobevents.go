package handler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
)

// DeadLetters takes the job event records that can never succeed, with the
// reason, so that they leave the queue at once instead of holding their
// FIFO message group through every retry (shared/deadletter sends them to
// the job dead-letter queue).
type DeadLetters interface {
	SendDeadLetter(ctx context.Context, rec events.SQSMessage, reason string) error
}

// JobEvents handles SQS batches of job events.
type JobEvents struct {
	n    *notify.Notifier
	log  *slog.Logger
	dead DeadLetters // nil: refused records are reported failed (local mode)
}

// NewJobEvents returns the job events handler. dead receives the records
// that fail validation; with nil they are reported as failed, as transient
// failures are.
func NewJobEvents(n *notify.Notifier, log *slog.Logger, dead DeadLetters) *JobEvents {
	return &JobEvents{n: n, log: log, dead: dead}
}

// Handle implements the JobEvents Lambda. Records are delivered in batch order.
// A record that fails for a transient reason (the store, a push other than
// 410, the deadline) is reported in BatchItemFailures (the SQS partial batch
// response, enabled by ReportBatchItemFailures), so SQS retries it and, after
// maxReceiveCount, moves it to the dead-letter queue: nothing accepted is
// dropped. The retry re-delivers it to the connections that did get it: at
// least once, never less.
//
// A record that fails validation (not JSON, an unknown type, a field out of
// range) can never succeed, and in a FIFO queue retrying it would hold every
// later event of its job behind it for maxReceiveCount × the visibility
// timeout. It is sent to the dead-letter queue by the handler itself, with
// the reason, and acknowledged; if that send fails, it is reported failed
// like a transient failure, so that it is never lost.
//
// A record that fails for a transient reason also fails every later record
// of its FIFO message group in this batch, so that a job's events never
// overtake each other. Records not reached before the function's deadline
// fail too, rather than being cut off mid-batch by a timeout that would retry
// them all; a record in progress at that point is given up at the margin
// before the deadline, so that the answer always gets out in time.
//
// The batch's events are published together (notify.PublishBatch): each
// owner's events are numbered and kept in batch order, then its connections
// are listed once for them all and each event is pushed in its order. A
// busy queue's batch of ten events of one owner costs one Query of its
// connections instead of ten.
//
// A job_progress that a later job_progress of the same job, owner and client
// in the batch supersedes, with no other event of that job between them, is
// acknowledged and never published (see supersededProgress): it would cost
// a push per connection to say what the later one says anyway, and since it
// is never numbered, seq stays gap-free.
func (h *JobEvents) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	ctx = notify.WithPath(ctx, notify.PathQueue) // its publishes are counted as the queue's
	// An empty list, not null, reads better to a person calling the Invoke API.
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	fail := func(id string) {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: id})
	}
	work := ctx
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		work, cancel = context.WithDeadline(ctx, deadline.Add(-deadlineMargin))
		defer cancel()
	}
	envs := make([]parsedRecord, len(ev.Records))
	for i, rec := range ev.Records {
		envs[i].env, envs[i].err = event.ParseEnvelope([]byte(rec.Body))
	}
	superseded := supersededProgress(envs)
	if len(superseded) > 0 {
		h.log.InfoContext(ctx, "superseded job progress not published", "records", len(superseded), "batch", len(ev.Records))
	}
	// Superseded records are acknowledged whatever comes next: the record
	// that supersedes each is published, failed for a retry, or left to
	// one. Invalid ones go to the dead-letter queue; the rest are
	// published together, so that each owner's connections are listed
	// once for all its events of the batch (notify.PublishBatch).
	var items []notify.BatchItem
	var at []int // the record of each item
	reasons := make([]error, len(ev.Records))
	for i, rec := range ev.Records {
		switch {
		case superseded[i]:
		case envs[i].err != nil:
			reasons[i] = notify.Errorf(notify.CodeInvalid, "%v", envs[i].err)
		default:
			env := envs[i].env
			items = append(items, notify.BatchItem{OwnerID: env.OwnerID, ClientID: env.ClientID, ID: recordEventID(rec),
				Event: env.Event, Group: rec.Attributes["MessageGroupId"]})
			at = append(at, i)
		}
	}
	_, errs := h.n.PublishBatch(work, items)
	late := map[int]bool{} // records not reached before the deadline: left to a retry
	for k, err := range errs {
		if err != nil {
			reasons[at[k]] = fmt.Errorf("owner %s: %w", items[k].OwnerID, err)
			late[at[k]] = work.Err() != nil && errors.Is(err, work.Err())
		}
	}
	if k := countTrue(late); k > 0 {
		h.log.WarnContext(ctx, "deadline near: leaving the rest of the batch to a retry", "records", k)
	}
	for i, rec := range ev.Records {
		err := reasons[i]
		switch {
		case err == nil:
		case notify.ErrorCode(err) == notify.CodeInvalid:
			if !h.deadLetter(work, rec, err) {
				fail(rec.MessageId)
			}
		default:
			// Held back or late: failed as before, with nothing new to say.
			if !late[i] && !errors.Is(err, notify.ErrHeldBack) {
				h.log.ErrorContext(ctx, "publish job event", "messageId", rec.MessageId, "err", err)
			}
			fail(rec.MessageId)
		}
	}
	return resp, nil
}

// parsedRecord is a record's body parsed: its envelope, or why it is invalid.
type parsedRecord struct {
	env event.Envelope
	err error
}

// progressKey names the stream a job_progress updates: one job of one
// owner, owner-wide or for one client.
type progressKey struct{ owner, client, job string }

// supersededProgress returns the indexes of the job_progress records that a
// later job_progress with the same key supersedes. Any other event of the
// job (its job_complete, an error naming it) in between, to whichever
// client, keeps both: a client sees the progress it had before the job
// ended. Only the latest of a run is published, at its own place in the
// batch, so no progress overtakes an event that came before it, and events
// of other types are never touched.
func supersededProgress(records []parsedRecord) map[int]bool {
	superseded := map[int]bool{}
	later := map[progressKey]bool{} // a progress follows, with nothing of its job between
	for i := len(records) - 1; i >= 0; i-- {
		r := records[i]
		job := event.JobOf(r.env.Event)
		if r.err != nil || job == "" {
			continue
		}
		if _, progress := r.env.Event.(event.JobProgress); !progress {
			for k := range later {
				if k.owner == r.env.OwnerID && k.job == job {
					delete(later, k)
				}
			}
			continue
		}
		k := progressKey{r.env.OwnerID, r.env.ClientID, job}
		if later[k] {
			superseded[i] = true
		}
		later[k] = true
	}
	return superseded
}

// countTrue is how many of m's values are true.
func countTrue(m map[int]bool) int {
	k := 0
	for _, v := range m {
		if v {
			k++
		}
	}
	return k
}

// pushesFailed is the error of a publish some of whose pushes failed (not
// gone): the record is retried, and the connections that got it keep the
// first copy by its id.
func pushesFailed(res notify.Result) error {
	if res.Failed == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d pushes failed", res.Failed, res.Failed+res.Delivered)
}

// recordEventID is the id of the event a job queue record carries: derived
// from the record's SQS message id, so that a redelivery of the record, which
// keeps its message id, publishes the same event again rather than a new
// one. A record without a message id (a hand-made invocation) gets a fresh id.
// A record whose publisher named its event (a deduplication id starting with
// event.DeduplicationPrefix) gets the id derived from that name, which a
// message sent again with the same name keeps even when SQS no longer
// deduplicates it.
func recordEventID(rec events.SQSMessage) string {
	if dedup := rec.Attributes["MessageDeduplicationId"]; strings.HasPrefix(dedup, event.DeduplicationPrefix) {
		return derivedID("sqs-dedup", dedup)
	}
	if rec.MessageId == "" {
		return ""
	}
	return derivedID("sqs", rec.MessageId)
}

// derivedID is an event id derived from what identifies its trigger.
func derivedID(parts ...string) string { return hashID("evt_", parts...) }

// hashID is prefix and 24 hex digits of the SHA-256 of parts, each ended
// by a zero byte so that no two lists of parts run together the same.
func hashID(prefix string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return prefix + hex.EncodeToString(h.Sum(nil))[:24]
}

// deadLetter hands a record that can never succeed to the dead-letter queue
// and reports whether it is there, so that the record may be acknowledged.
func (h *JobEvents) deadLetter(ctx context.Context, rec events.SQSMessage, reason error) bool {
	msg := notify.ErrorMessage(reason)
	if h.dead == nil {
		h.log.WarnContext(ctx, "invalid job event: reported failed (no dead-letter queue)", "messageId", rec.MessageId, "reason", msg)
		return false
	}
	if err := h.dead.SendDeadLetter(ctx, rec, msg); err != nil {
		h.log.ErrorContext(ctx, "invalid job event: the dead-letter queue refused it, reported failed instead",
			"messageId", rec.MessageId, "reason", msg, "err", err)
		return false
	}
	h.log.WarnContext(ctx, "invalid job event: sent to the dead-letter queue", "messageId", rec.MessageId, "reason", msg)
	return true
}

// deadlineMargin is the time kept back from the function's deadline: enough
// to answer, so SQS learns which records to retry.
const deadlineMargin = 2 * time.Second
