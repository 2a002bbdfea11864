// Package deadletter sends the job event records that can never succeed to
// the job dead-letter queue (SQS), so that the job events function can
// acknowledge them at once instead of letting them hold their FIFO message
// group through every retry.
package deadletter

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/wsnotify/wsnotify/shared/handler"
	"github.com/wsnotify/wsnotify/shared/text"
)

// Message attributes a dead letter carries beside the original body.
const (
	// AttrReason says why the record was refused.
	AttrReason = "wsnotify-reason"
	// AttrMessageID is the SQS message id the record had in the job queue.
	AttrMessageID = "wsnotify-message-id"
)

// maxReasonBytes keeps the reason attribute short: it names a rule, and the
// body is there to see the rest.
const maxReasonBytes = 1024

// sendMessageAPI is the one call of the SQS client the queue makes.
type sendMessageAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Queue is a dead-letter queue: one SQS queue, standard or FIFO.
type Queue struct {
	client sendMessageAPI
	url    string
}

var _ handler.DeadLetters = (*Queue)(nil)

// New returns the dead-letter queue at url, reached through client.
func New(client *sqs.Client, url string) *Queue { return &Queue{client: client, url: url} }

// SendDeadLetter sends rec's body, unchanged, with the reason and the
// record's message id as message attributes. For a FIFO queue (the record
// has a message group) it keeps the record's group, and deduplicates on its
// message id, so that a retried batch sends the record once.
func (q *Queue) SendDeadLetter(ctx context.Context, rec events.SQSMessage, reason string) error {
	reason = text.Prefix(reason, maxReasonBytes) // SQS takes valid Unicode only
	in := &sqs.SendMessageInput{
		QueueUrl:    aws.String(q.url),
		MessageBody: aws.String(rec.Body),
		MessageAttributes: map[string]types.MessageAttributeValue{
			AttrReason:    {DataType: aws.String("String"), StringValue: aws.String(reason)},
			AttrMessageID: {DataType: aws.String("String"), StringValue: aws.String(rec.MessageId)},
		},
	}
	if group := rec.Attributes["MessageGroupId"]; group != "" {
		in.MessageGroupId = aws.String(group)
		in.MessageDeduplicationId = aws.String(rec.MessageId)
	}
	if _, err := q.client.SendMessage(ctx, in); err != nil {
		return fmt.Errorf("send message %s to the dead-letter queue: %w", rec.MessageId, err)
	}
	return nil
}
