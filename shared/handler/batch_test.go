package handler_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/handler"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/store"
	"github.com/wsnotify/wsnotify/shared/store/memory"
)

// listCounter counts the lists of owners' connections.
type listCounter struct {
	*memory.Store
	lists atomic.Int64
}

func (s *listCounter) ListConnections(ctx context.Context, owner string, now time.Time) ([]store.Connection, error) {
	s.lists.Add(1)
	return s.Store.ListConnections(ctx, owner, now)
}

// A busy queue's batch of one owner's events lists its connections once,
// not once per event, and every event still reaches them in order.
func TestABatchOfOneOwnersJobEventsListsItsConnectionsOnce(t *testing.T) {
	e := newEnv(t)
	e.register(t, "acct_42", "tab", "conn-a")
	s := &listCounter{Store: e.store}
	n := notify.New(auth.NewAuthenticator(s), s, e.push, e.log, notify.Config{})
	var recs []events.SQSMessage
	for i := range 10 {
		job := fmt.Sprint("job_", i)
		recs = append(recs, events.SQSMessage{MessageId: fmt.Sprint(i), Attributes: map[string]string{"MessageGroupId": job},
			Body: `{"ownerId":"acct_42","event":{"type":"job_progress","jobId":"` + job + `","progress":50,"processedCount":1,"totalCount":2}}`})
	}
	resp, _ := handler.NewJobEvents(n, e.log, nil).Handle(context.Background(), events.SQSEvent{Records: recs})
	if got := failed(resp); got != "" {
		t.Fatalf("failures %s", got)
	}
	if s.lists.Load() != 1 {
		t.Fatalf("%d lists of the owner's connections for a batch of 10, want 1", s.lists.Load())
	}
	got := e.push.Sent("conn-a")
	if len(got) != 10 {
		t.Fatalf("%d events delivered, want 10", len(got))
	}
	for i, msg := range got {
		if want := fmt.Sprintf(`"jobId":"job_%d"`, i); !strings.Contains(msg, want) {
			t.Errorf("message %d = %s, want %s", i, msg, want)
		}
	}
}
