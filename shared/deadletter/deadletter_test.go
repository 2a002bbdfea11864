package deadletter_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/wsnotify/wsnotify/shared/deadletter"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

func newQueue(t *testing.T, fake *testenv.SQS) *deadletter.Queue {
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	client := sqs.New(sqs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
	return deadletter.New(client, srv.URL+"/000000000000/wsnotify-job-events-dlq.fifo")
}

func TestADeadLetterKeepsTheBodyAndCarriesTheReason(t *testing.T) {
	fake := &testenv.SQS{}
	q := newQueue(t, fake)
	rec := events.SQSMessage{MessageId: "m-1", Body: `{"ownerId":"acct_42","event":{"type":"nope"}}`,
		Attributes: map[string]string{"MessageGroupId": "job_123"}}
	if err := q.SendDeadLetter(context.Background(), rec, `invalid event: unknown type "nope"`); err != nil {
		t.Fatal(err)
	}
	if len(fake.Received()) != 1 {
		t.Fatalf("got %d messages", len(fake.Received()))
	}
	got, _ := json.Marshal(fake.Received()[0])
	for _, want := range []string{
		`"MessageBody":"{\"ownerId\":\"acct_42\",\"event\":{\"type\":\"nope\"}}"`,
		`"MessageGroupId":"job_123"`, `"MessageDeduplicationId":"m-1"`,
		`"wsnotify-reason":{"DataType":"String","StringValue":"invalid event: unknown type \"nope\""}`,
		`"wsnotify-message-id":{"DataType":"String","StringValue":"m-1"}`,
		`"QueueUrl":"http`,
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("the message %s lacks %s", got, want)
		}
	}
}

func TestADeadLetterOfAStandardQueueHasNoGroup(t *testing.T) {
	fake := &testenv.SQS{}
	q := newQueue(t, fake)
	long := strings.Repeat("é", 2000) // the reason is cut, on a character boundary
	if err := q.SendDeadLetter(context.Background(), events.SQSMessage{MessageId: "m-2", Body: "x"}, long); err != nil {
		t.Fatal(err)
	}
	got := fake.Received()[0]
	if _, ok := got["MessageGroupId"]; ok {
		t.Fatalf("a record without a group got one: %v", got)
	}
	reason := got["MessageAttributes"].(map[string]any)["wsnotify-reason"].(map[string]any)["StringValue"].(string)
	if len(reason) > 1024 || !strings.HasPrefix(long, reason) || !utf8.ValidString(reason) {
		t.Fatalf("reason of %d bytes", len(reason))
	}
}

func TestARefusedDeadLetterIsAnError(t *testing.T) {
	fake := &testenv.SQS{}
	fake.Refuse(http.StatusBadRequest)
	q := newQueue(t, fake)
	err := q.SendDeadLetter(context.Background(), events.SQSMessage{MessageId: "m-3", Body: "x"}, "bad")
	if err == nil || !strings.Contains(err.Error(), "m-3") {
		t.Fatalf("got %v", err)
	}
}
