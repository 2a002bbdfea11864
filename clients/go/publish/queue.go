package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/wsnotify/wsnotify/shared/event"
)

// SQS limits a SendMessageBatch call.
const (
	// MaxBatchMessages is the most entries one SendMessageBatch takes.
	MaxBatchMessages = 10
	// MaxBatchBytes bounds the bodies of one call, the smallest payload
	// limit SQS has had: a batch stays within it on any queue.
	MaxBatchBytes = 256 * 1024
)

// sendMessageBatchAPI is the one call of the SQS client the queue makes.
type sendMessageBatchAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// Queue publishes to the stack's job queue (output JobEventsQueueURL).
type Queue struct {
	client sendMessageBatchAPI
	url    string
}

// NewQueue returns a publisher to the FIFO queue at url through client,
// e.g. sqs.NewFromConfig(cfg) with cfg from config.LoadDefaultConfig: the
// client's retryer (the SDK's standard one by default) retries a call that
// failed as a whole.
func NewQueue(client *sqs.Client, url string) *Queue { return &Queue{client: client, url: url} }

// QueueResult is what became of one message: the queue's message id, or
// why it was not sent.
type QueueResult struct {
	MessageID string
	Err       error
}

// ErrNotSent is wrapped by the error of a message left unsent because an
// earlier message of its job failed: sending it would let it overtake the
// one that failed.
var ErrNotSent = errors.New("not sent: an earlier message of its job failed")

// Send validates every message, then sends them in order, up to ten a call.
// If a message is invalid, nothing is sent and the error is an
// *InvalidError. Otherwise there is one result per message, in order; the
// error is nil when every message was sent, else it joins the failures.
//
// A message that fails in a call leaves the messages of its job in later
// calls unsent (ErrNotSent), so that its job's events do not go on past
// the gap; SQS itself takes or refuses each entry of a call on its own. Sending the failed ones again with the same idempotency keys
// publishes each once.
func (q *Queue) Send(ctx context.Context, msgs ...Message) ([]QueueResult, error) {
	bodies, err := check(msgs)
	if err != nil {
		return nil, err
	}
	entries := make([]types.SendMessageBatchRequestEntry, len(msgs))
	for i, m := range msgs {
		key := m.IdempotencyKey
		if key == "" {
			key = newKey()
		}
		entries[i] = types.SendMessageBatchRequestEntry{
			Id:                     aws.String(strconv.Itoa(i)),
			MessageBody:            aws.String(string(bodies[i])),
			MessageGroupId:         aws.String(GroupID(m)),
			MessageDeduplicationId: aws.String(DeduplicationID(m.OwnerID, key)),
		}
	}
	results := make([]QueueResult, len(msgs))
	failedGroups := map[string]bool{}
	var errs []error
	for start := 0; start < len(entries); {
		var batch []types.SendMessageBatchRequestEntry
		size := 0
		i := start
		for ; i < len(entries) && len(batch) < MaxBatchMessages; i++ {
			group := *entries[i].MessageGroupId
			if failedGroups[group] {
				results[i].Err = fmt.Errorf("messages[%d]: %w", i, ErrNotSent)
				errs = append(errs, results[i].Err)
				continue
			}
			n := len(*entries[i].MessageBody)
			if len(batch) > 0 && size+n > MaxBatchBytes {
				break
			}
			batch = append(batch, entries[i])
			size += n
		}
		start = i
		if len(batch) == 0 {
			continue
		}
		out, err := q.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.url), Entries: batch})
		if err != nil {
			for _, e := range batch {
				j, _ := strconv.Atoi(*e.Id)
				results[j].Err = fmt.Errorf("messages[%d]: send to the job queue: %w", j, err)
				errs = append(errs, results[j].Err)
				failedGroups[*e.MessageGroupId] = true
			}
			continue
		}
		for _, ok := range out.Successful {
			j, _ := strconv.Atoi(aws.ToString(ok.Id))
			results[j].MessageID = aws.ToString(ok.MessageId)
		}
		for _, bad := range out.Failed {
			j, _ := strconv.Atoi(aws.ToString(bad.Id))
			results[j].Err = &EntryError{Index: j, Code: aws.ToString(bad.Code), Message: aws.ToString(bad.Message), SenderFault: bad.SenderFault}
			errs = append(errs, results[j].Err)
			failedGroups[*entries[j].MessageGroupId] = true
		}
	}
	return results, errors.Join(errs...)
}

// EntryError is one message SQS refused in a batch that it otherwise took.
// SenderFault says the message itself is at fault; otherwise sending it
// again may succeed.
type EntryError struct {
	Index       int
	Code        string
	Message     string
	SenderFault bool
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("messages[%d]: the job queue refused it: %s: %s", e.Index, e.Code, e.Message)
}

// sqsGroupID is what SQS takes as a MessageGroupId.
var sqsGroupID = regexp.MustCompile("^[A-Za-z0-9!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~]{1,128}$")

// GroupID is the MessageGroupId the queue gives m: its job id, so that one
// job's events are delivered in order; a job id SQS cannot take (over 128
// characters, or characters other than ASCII letters, digits and
// punctuation) is replaced by a digest of it. An event of no job goes to a
// group of its owner's.
func GroupID(m Message) string {
	job := event.JobOf(m.Event)
	switch {
	case job == "":
		return digest("owner", m.OwnerID)
	case sqsGroupID.MatchString(job):
		return job
	default:
		return digest("job", job)
	}
}

// DeduplicationID is the MessageDeduplicationId of an owner's message with
// an idempotency key: the same key for the same owner gives the same id,
// so SQS drops a resend within its five-minute window, and the job events
// function, which derives the event's id from it (event.DeduplicationPrefix),
// publishes a later resend as the same event.
func DeduplicationID(ownerID, key string) string {
	return event.DeduplicationPrefix + digest(ownerID, key)[len("sha-"):]
}

// digest is "sha-" and the hex SHA-256 of parts, each ended by a zero byte.
func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "sha-" + hex.EncodeToString(h.Sum(nil))
}
