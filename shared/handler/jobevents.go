package handler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
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
func (h *JobEvents) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	// An empty list, not null, reads better to a person calling the Invoke API.
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	blocked := map[string]bool{} // FIFO message groups with a transient failure in this batch
	fail := func(id string) {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: id})
	}
	work := ctx
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		work, cancel = context.WithDeadline(ctx, deadline.Add(-deadlineMargin))
		defer cancel()
	}
	for i, rec := range ev.Records {
		if work.Err() != nil {
			h.log.WarnContext(ctx, "deadline near: leaving the rest of the batch to a retry", "records", len(ev.Records)-i)
			for _, rest := range ev.Records[i:] {
				fail(rest.MessageId)
			}
			break
		}
		group := rec.Attributes["MessageGroupId"]
		if group != "" && blocked[group] {
			fail(rec.MessageId)
			continue
		}
		err := h.publish(work, rec)
		switch {
		case err == nil:
		case notify.ErrorCode(err) == notify.CodeInvalid:
			if !h.deadLetter(work, rec, err) {
				fail(rec.MessageId)
			}
		default:
			h.log.ErrorContext(ctx, "publish job event", "messageId", rec.MessageId, "err", err)
			fail(rec.MessageId)
			if group != "" {
				blocked[group] = true
			}
		}
	}
	return resp, nil
}

// publish parses one record and publishes its event. A record that breaks a
// rule gives an error with notify.CodeInvalid.
func (h *JobEvents) publish(ctx context.Context, rec events.SQSMessage) error {
	env, err := event.ParseEnvelope([]byte(rec.Body))
	if err != nil {
		return notify.Errorf(notify.CodeInvalid, "%v", err)
	}
	res, err := h.n.Publish(ctx, env.OwnerID, env.ClientID, RecordEventID(rec), env.Event)
	if err != nil {
		return fmt.Errorf("owner %s: %w", env.OwnerID, err)
	}
	if res.Failed > 0 {
		return fmt.Errorf("owner %s: %d of %d pushes failed", env.OwnerID, res.Failed, res.Failed+res.Delivered)
	}
	return nil
}

// RecordEventID is the id of the event a job queue record carries: derived
// from the record's SQS message id, so that a redelivery of the record, which
// keeps its message id, publishes the same event again rather than a new
// one. A record without a message id (a hand-made invocation) gets a fresh id.
func RecordEventID(rec events.SQSMessage) string {
	if rec.MessageId == "" {
		return ""
	}
	return derivedID("sqs", rec.MessageId)
}

// derivedID is an event id derived from what identifies its trigger.
func derivedID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "evt_" + hex.EncodeToString(h.Sum(nil))[:24]
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
