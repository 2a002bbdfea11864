package handler

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
)

// JobEvents handles SQS batches of job events.
type JobEvents struct {
	n   *notify.Notifier
	log *slog.Logger
}

// NewJobEvents returns the job events handler.
func NewJobEvents(n *notify.Notifier, log *slog.Logger) *JobEvents {
	return &JobEvents{n: n, log: log}
}

// Handle implements the JobEvents Lambda. Records are delivered in batch order.
// A record that fails is reported in BatchItemFailures (the SQS partial batch
// response, enabled by ReportBatchItemFailures), so SQS retries it and, after
// maxReceiveCount, moves it to the dead-letter queue: nothing accepted is dropped.
//
// A record fails when it is invalid, when the store fails, or when a push to
// one of its connections fails for a reason other than 410 (throttled past
// the retries, 5xx). The retry then re-delivers it to the connections that
// did get it: at least once, never less.
//
// An invalid record fails alone: retrying cannot fix it. (In a FIFO queue SQS
// still holds the rest of its message group until it is dead-lettered.) A
// record that fails for a transient reason also fails every later record of
// its FIFO message group in this batch, so that a job's events never overtake
// each other. Records not reached before the function's deadline fail too,
// rather than being cut off mid-batch by a timeout that would retry them all.
func (h *JobEvents) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	// An empty list, not null, reads better to a person calling the Invoke API.
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	blocked := map[string]bool{} // FIFO message groups with a transient failure in this batch
	fail := func(id string) {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: id})
	}
	for i, rec := range ev.Records {
		if outOfTime(ctx) {
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
		env, err := event.ParseEnvelope([]byte(rec.Body))
		if err != nil {
			h.log.WarnContext(ctx, "invalid job event", "messageId", rec.MessageId, "err", err)
			fail(rec.MessageId)
			continue
		}
		res, err := h.n.Publish(ctx, env.OwnerID, env.ClientID, env.Event)
		if err == nil && res.Failed > 0 {
			err = fmt.Errorf("%d of %d pushes failed", res.Failed, res.Failed+res.Delivered)
		}
		if err != nil {
			h.log.ErrorContext(ctx, "publish job event", "messageId", rec.MessageId, "owner", env.OwnerID, "err", err)
			fail(rec.MessageId)
			if group != "" {
				blocked[group] = true
			}
		}
	}
	return resp, nil
}

// deadlineMargin is the time kept back from the function's deadline: enough
// to answer, so SQS learns which records to retry.
const deadlineMargin = 2 * time.Second

// outOfTime reports whether ctx's deadline is too near to start another record.
func outOfTime(ctx context.Context) bool {
	deadline, ok := ctx.Deadline()
	return ok && time.Until(deadline) < deadlineMargin
}
