package publish_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wsnotify/wsnotify/clients/go/publish"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// fakeQueue is the fake SQS endpoint and a Queue on it, through the SDK's
// real client.
func fakeQueue(t testing.TB) (*testenv.SQS, *publish.Queue) {
	t.Helper()
	fake := &testenv.SQS{}
	return fake, publish.NewQueue(testenv.SQSClient(newHTTPServer(t, fake)), "https://sqs.us-east-1.amazonaws.com/123456789012/jobs.fifo")
}

// newHTTPServer serves h until the end of the test, and returns its URL.
func newHTTPServer(t testing.TB, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// mustBody is the job queue's body for m, as the publisher sends it.
func mustBody(t testing.TB, m publish.Message) string {
	env := map[string]any{"ownerId": m.OwnerID, "event": m.Event}
	if m.ClientID != "" {
		env["clientId"] = m.ClientID
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// progress is job's step-th progress of ten for owner.
func progress(owner, job string, step int) publish.Message {
	return publish.Message{OwnerID: owner, Event: publish.JobProgress(job, float64(step*10), int64(step), 10, fmt.Sprintf("f%d.jpg", step))}
}

func TestTheQueueSendsBatchesOfTenWithTheJobAsGroupAndTheKeyAsDeduplicationID(t *testing.T) {
	fake, q := fakeQueue(t)
	var msgs []publish.Message
	for i := range 23 {
		m := progress("acct_42", fmt.Sprintf("job_%d", i%3), i%10)
		if i == 0 {
			m.IdempotencyKey = "order-17-step-0"
		}
		msgs = append(msgs, m)
	}
	msgs = append(msgs, publish.Message{OwnerID: "acct_42", ClientID: "tab-1", Event: publish.Error("", "QUOTA_EXCEEDED", "Storage is full")})
	results, err := q.Send(context.Background(), msgs...)
	if err != nil {
		t.Fatal(err)
	}
	if fake.Batches() != 3 {
		t.Errorf("%d SendMessageBatch calls for 24 messages, want 3", fake.Batches())
	}
	got := fake.Received()
	if len(got) != len(msgs) || len(results) != len(msgs) {
		t.Fatalf("%d received, %d results, for %d messages", len(got), len(results), len(msgs))
	}
	dedup := map[string]bool{}
	for i, in := range got {
		body := in["MessageBody"].(string)
		env, err := event.ParseEnvelope([]byte(body))
		if err != nil {
			t.Fatalf("message %d: the job events function would refuse %s: %v", i, body, err)
		}
		if results[i].MessageID == "" || results[i].Err != nil {
			t.Errorf("message %d: result %+v", i, results[i])
		}
		if job := event.JobOf(env.Event); job != "" && in["MessageGroupId"] != job {
			t.Errorf("message %d of %s: MessageGroupId %v", i, job, in["MessageGroupId"])
		}
		id, _ := in["MessageDeduplicationId"].(string)
		if !strings.HasPrefix(id, event.DeduplicationPrefix) || dedup[id] {
			t.Errorf("message %d: MessageDeduplicationId %q is not a fresh name", i, id)
		}
		dedup[id] = true
	}
	if got[0]["MessageDeduplicationId"] != publish.DeduplicationID("acct_42", "order-17-step-0") {
		t.Errorf("the keyed message's deduplication id is %v", got[0]["MessageDeduplicationId"])
	}
	if g, _ := got[23]["MessageGroupId"].(string); g == "" || strings.HasPrefix(g, "job_") {
		t.Errorf("an error of no job went to group %q", g)
	}
}

func TestAnIdempotencyKeyNamesTheSameMessageForItsOwnerOnly(t *testing.T) {
	a, b := publish.DeduplicationID("acct_1", "k"), publish.DeduplicationID("acct_2", "k")
	if a == b || a != publish.DeduplicationID("acct_1", "k") || len(a) > 128 {
		t.Errorf("ids %q and %q", a, b)
	}
}

func TestAJobIDSQSCannotTakeStillGroupsItsJob(t *testing.T) {
	for _, job := range []string{strings.Repeat("j", 200), "Fotos/Überraschung"} {
		m1, m2 := progress("o", job, 1), progress("o", job, 2)
		g := publish.GroupID(m1)
		if g != publish.GroupID(m2) || len(g) > 128 || g == job {
			t.Errorf("job %q: group %q", job, g)
		}
	}
}

func TestAnInvalidMessageIsRefusedBeforeAnythingIsSent(t *testing.T) {
	fake, q := fakeQueue(t)
	cases := map[string]publish.Message{
		"progress over 100":          {OwnerID: "o", Event: publish.JobProgress("j", 120, 1, 1, "")},
		"an owner with a slash":      {OwnerID: "o/x", Event: publish.JobComplete("j", event.StatusCompleted, 1, 0)},
		"a status of no job":         {OwnerID: "o", Event: publish.JobComplete("j", "done", 1, 0)},
		"no event":                   {OwnerID: "o"},
		"file_uploaded (S3's alone)": {OwnerID: "o", Event: publish.FileUploaded("f", "a.pdf", 1)},
		"a key of 129 characters":    {OwnerID: "o", IdempotencyKey: strings.Repeat("k", 129), Event: publish.Error("", "E", "x")},
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := q.Send(context.Background(), progress("o", "j", 1), bad)
			var invalid *publish.InvalidError
			if !errors.As(err, &invalid) || invalid.Index != 1 || !errors.Is(err, publish.ErrInvalid) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if n := len(fake.Received()); n != 0 {
		t.Errorf("%d messages sent", n)
	}
}

func TestAMessageTheQueueRefusesFailsAloneAndHoldsBackTheRestOfItsJob(t *testing.T) {
	fake, q := fakeQueue(t)
	fake.RefuseBodies(`"f3.jpg"`)
	var msgs []publish.Message
	for step := 1; step <= 12; step++ {
		msgs = append(msgs, progress("o", "a", step%10), progress("o", "b", step%10))
	}
	results, err := q.Send(context.Background(), msgs...)
	if err == nil {
		t.Fatal("no error")
	}
	for i, r := range results {
		job := event.JobOf(msgs[i].Event)
		step := i/2 + 1
		var entry *publish.EntryError
		switch {
		case step%10 == 3 && step == 3:
			if !errors.As(r.Err, &entry) || entry.Code != "InvalidMessageContents" || !entry.SenderFault {
				t.Errorf("job %s step %d: %v", job, step, r.Err)
			}
		case step > 5: // the first call held steps 1-5 of both jobs
			if !errors.Is(r.Err, publish.ErrNotSent) {
				t.Errorf("job %s step %d, in a call after its job's failure: %+v", job, step, r)
			}
		default:
			if r.Err != nil || r.MessageID == "" {
				t.Errorf("job %s step %d: %+v", job, step, r)
			}
		}
	}
	if n := len(fake.Received()); n != 8 {
		t.Errorf("%d messages in the queue, want the 8 of the first call that SQS took", n)
	}
}

func TestAFailedCallIsRetriedByTheSDKAndItsMessagesKeepTheirNames(t *testing.T) {
	fake := &testenv.SQS{}
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"__type":"com.amazonaws.sqs#InternalError","message":"try again"}`))
			return
		}
		fake.ServeHTTP(w, r)
	}))
	defer srv.Close()
	q := publish.NewQueue(testenv.SQSClient(srv.URL), "https://sqs.example/q.fifo")
	if _, err := q.Send(context.Background(), progress("o", "j", 1)); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 || len(fake.Received()) != 1 {
		t.Errorf("%d calls, %d messages", calls.Load(), len(fake.Received()))
	}
}

func TestTheQueueHonoursTheContextsDeadline(t *testing.T) {
	_, q := fakeQueue(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	results, err := q.Send(ctx, progress("o", "j", 1))
	if !errors.Is(err, context.Canceled) || results[0].Err == nil {
		t.Fatalf("err = %v, results %+v", err, results)
	}
}
