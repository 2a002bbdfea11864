package publish_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/wsnotify/wsnotify/clients/go/publish"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// BenchmarkQueue is the queue path's throughput against the fake SQS
// endpoint over loopback HTTP, through the SDK's real client: the publisher
// (ten messages a SendMessageBatch) against one SendMessage per event, the
// way a producer without it sends. Each op is one event; the figure to read
// is msgs/s. The fake answers at once, so the figures measure the client's
// side (signing, encoding, one HTTP round trip a call); against SQS itself
// each call also waits some milliseconds, which batching divides by ten.
func BenchmarkQueue(b *testing.B) {
	const perCall = 100 // events a Send is given
	msgs := make([]publish.Message, perCall)
	for i := range msgs {
		msgs[i] = progress("acct_42", fmt.Sprintf("job_%d", i%4), i%10)
	}
	b.Run("batched", func(b *testing.B) {
		_, q := fakeQueue(b)
		b.ReportAllocs()
		for i := 0; i < b.N; i += perCall {
			if _, err := q.Send(context.Background(), msgs[:min(perCall, b.N-i)]...); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("one SendMessage per event", func(b *testing.B) {
		fake := &testenv.SQS{}
		srv := newHTTPServer(b, fake)
		client := testenv.SQSClient(srv)
		bodies := make([]string, perCall)
		for i, m := range msgs {
			bodies[i] = mustBody(b, m)
		}
		b.ReportAllocs()
		for i := range b.N {
			m := msgs[i%perCall]
			_, err := client.SendMessage(context.Background(), &sqs.SendMessageInput{
				QueueUrl: aws.String("https://sqs.us-east-1.amazonaws.com/123456789012/jobs.fifo"), MessageBody: aws.String(bodies[i%perCall]),
				MessageGroupId: aws.String(publish.GroupID(m)), MessageDeduplicationId: aws.String(publish.DeduplicationID(m.OwnerID, fmt.Sprint(i))),
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}
