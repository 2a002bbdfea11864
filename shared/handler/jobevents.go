package handler

import (
	"context"
	"log/slog"

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
// maxReceiveCount, moves it to the dead-letter queue: nothing is dropped.
//
// An invalid record fails alone: retrying cannot fix it and holding back its
// job's later events would not either. A record that fails for a transient
// reason (the store) also fails every later record of its FIFO message group
// in this batch, so that a job's events never overtake each other.
func (h *JobEvents) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	// An empty list, not null, reads better to a person calling the Invoke API.
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	blocked := map[string]bool{} // FIFO message groups with a transient failure in this batch
	fail := func(id string) {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: id})
	}
	for _, rec := range ev.Records {
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
		if _, err := h.n.Publish(ctx, env.OwnerID, env.ClientID, env.Event); err != nil {
			h.log.ErrorContext(ctx, "publish job event", "messageId", rec.MessageId, "owner", env.OwnerID, "err", err)
			fail(rec.MessageId)
			if group != "" {
				blocked[group] = true
			}
		}
	}
	return resp, nil
}
