package publish_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/clients/go/publish"
	"github.com/wsnotify/wsnotify/infra/local/server"
	"github.com/wsnotify/wsnotify/infra/openapi"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// wait bounds every wait for something local mode or a client does.
const wait = 30 * time.Second

// localMode is local mode serving two owners, each with a key.
type localMode struct {
	base string // http://127.0.0.1:port
	keys map[string]string
}

// ws is local mode's WebSocket URL.
func (m *localMode) ws() string { return strings.Replace(m.base, "http", "ws", 1) }

func startLocalMode(t *testing.T) *localMode {
	t.Helper()
	return startLocalModeWith(t, "")
}

// startLocalModeWith serves local mode with a control token ("" for none).
func startLocalModeWith(t *testing.T, controlToken string) *localMode {
	t.Helper()
	keys := map[string]string{"acct_42": "wsn_publish_test_key_acct_42", "acct_7": "wsn_publish_test_key_acct_7"}
	byKey := map[string]string{}
	for owner, key := range keys {
		byKey[key] = owner
	}
	srv, err := server.New(server.Config{APIKeys: byKey, ControlToken: controlToken, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, stop := srv.Start(l, wait)
	t.Cleanup(func() { _ = stop() })
	return &localMode{base: "http://" + l.Addr().String(), keys: keys}
}

func TestWhatTheQueuePublisherSendsReachesTheOwnersClientsInOrderAndNoOtherOwners(t *testing.T) {
	m := startLocalMode(t)
	mine := testenv.ConnectJS(t, m.ws(), m.keys["acct_42"])
	other := testenv.ConnectJS(t, m.ws(), m.keys["acct_7"])
	fake, q := fakeQueue(t)

	var msgs []publish.Message
	for step := 1; step <= 12; step++ {
		msgs = append(msgs, publish.Message{OwnerID: "acct_42", IdempotencyKey: fmt.Sprintf("job_a-%d", step),
			Event: publish.JobProgress("job_a", float64(step*100/12), int64(step), 12, fmt.Sprintf("IMG_%d.jpg", step))})
	}
	msgs = append(msgs,
		publish.Message{OwnerID: "acct_42", Event: publish.Error("job_a", "PERMISSION_ERROR", "Permission denied: IMG_12.jpg")},
		publish.Message{OwnerID: "acct_42", Event: publish.JobComplete("job_a", event.StatusFailed, 11, 1)},
		publish.Message{OwnerID: "acct_7", Event: publish.JobComplete("job_b", event.StatusCompleted, 3, 0)})
	if _, err := q.Send(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	if fake.Batches() != 2 {
		t.Errorf("%d SendMessageBatch calls for 15 messages", fake.Batches())
	}
	// The event source mapping hands the function up to ten records a batch.
	recs := fake.Records()
	for start := 0; start < len(recs); start += 10 {
		if out := testenv.InvokeJobEvents(t, m.base, recs[start:min(start+10, len(recs))]); len(out.BatchItemFailures) != 0 {
			t.Fatalf("failures: %v", out.BatchItemFailures)
		}
	}
	// The handler coalesces a batch's run of one job's progress to its last;
	// what reaches the client ends with the error and the job_complete.
	got := mine.Events(t, 1)
	for got[len(got)-1]["type"] != "job_complete" {
		got = append(got, mine.Events(t, 1)...)
	}
	n := len(got)
	if n < 3 || got[n-2]["type"] != "error" || got[n-1]["status"] != "failed" || got[n-3]["processedCount"] != 12.0 {
		t.Fatalf("acct_42's client got %v", got)
	}
	for i := 1; i < n; i++ {
		if got[i]["seq"].(float64) <= got[i-1]["seq"].(float64) {
			t.Errorf("events out of order: %v", got)
		}
	}
	theirs := other.Events(t, 1)
	if theirs[0]["jobId"] != "job_b" {
		t.Errorf("acct_7's client got %v", theirs)
	}

	// A message sent again with its key after SQS's deduplication window
	// is a new SQS message, and the same event: same id and seq. The
	// module would drop the copy by its id, so a bare connection looks.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, m.ws()+"/api/v1/ws/raw-tab?token="+m.keys["acct_42"], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if _, err := q.Send(context.Background(), msgs[11]); err != nil {
		t.Fatal(err)
	}
	again := fake.Records()[len(msgs)]
	if again.MessageId == recs[11].MessageId {
		t.Fatal("the resend kept its message id: the test shows nothing")
	}
	testenv.InvokeJobEvents(t, m.base, []events.SQSMessage{again})
	_, data, err := ws.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var repeat map[string]any
	_ = json.Unmarshal(data, &repeat)
	if repeat["id"] != got[n-3]["id"] || repeat["seq"] != got[n-3]["seq"] {
		t.Errorf("the resent step 12 is %s, the first %v", data, got[n-3])
	}
}

func TestWhatTheHTTPClientPublishesReachesTheOwnersClientsWithItsAnswer(t *testing.T) {
	const token = "publish-test-control-token-0123"
	m := startLocalModeWith(t, token)
	mine := testenv.ConnectJS(t, m.ws(), m.keys["acct_42"])
	other := testenv.ConnectJS(t, m.ws(), m.keys["acct_7"])
	pub := publish.NewLocalClient(openapi.Proxy(t, m.base), token)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	msgs := []publish.Message{
		{OwnerID: "acct_42", IdempotencyKey: "job_h-1", Event: publish.JobProgress("job_h", 50, 1, 2, "a.jpg")},
		{OwnerID: "acct_7", Event: publish.JobComplete("job_o", event.StatusCompleted, 1, 0)},
		{OwnerID: "acct_42", Event: publish.Error("job_h", "DISK_FULL", "Disk full")},
		{OwnerID: "acct_42", ClientID: mine.ClientID, Event: publish.Error("", "HELLO", "just you")},
	}
	results, err := pub.Publish(ctx, msgs...)
	if err != nil {
		t.Fatal(err)
	}
	got := mine.Events(t, 3)
	for i, want := range []int{0, 2, 3} {
		r := results[want]
		if got[i]["id"] != r.ID || r.Delivered != 1 || r.Duplicate {
			t.Errorf("message %d: result %+v, the client got %v", want, r, got[i])
		}
		if seq, _ := got[i]["seq"].(float64); int64(seq) != r.Seq {
			t.Errorf("message %d: seq %d answered, %v received", want, r.Seq, got[i]["seq"])
		}
	}
	if results[3].Seq != 0 {
		t.Errorf("an event to one client has seq %d", results[3].Seq)
	}
	if theirs := other.Events(t, 1); theirs[0]["id"] != results[1].ID {
		t.Errorf("acct_7's client got %v, want %s", theirs, results[1].ID)
	}

	t.Run("a retry with the key is the first event, not pushed again", func(t *testing.T) {
		again, err := pub.Publish(ctx, msgs[0])
		if err != nil || !again[0].Duplicate || again[0].ID != results[0].ID || again[0].Seq != results[0].Seq {
			t.Fatalf("%+v, %v; first %+v", again, err, results[0])
		}
	})
	t.Run("the key with another event is a conflict, with its code", func(t *testing.T) {
		_, err := pub.Publish(ctx, publish.Message{OwnerID: "acct_42", IdempotencyKey: "job_h-1", Event: publish.JobProgress("job_h", 60, 1, 2, "a.jpg")})
		var apiErr *publish.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != 409 || apiErr.Code != "IDEMPOTENCY_CONFLICT" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("presence lists the connected client", func(t *testing.T) {
		p, err := pub.Connections(ctx, "acct_42")
		if err != nil || p.Count != 1 || p.Clients[0].ClientID != mine.ClientID || p.Clients[0].ConnectedAt.IsZero() {
			t.Fatalf("%+v, %v", p, err)
		}
	})
	t.Run("without the control token the API refuses", func(t *testing.T) {
		_, err := publish.NewLocalClient(openapi.Proxy(t, m.base), "").Connections(ctx, "acct_42")
		var apiErr *publish.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != 403 {
			t.Fatalf("err = %v", err)
		}
	})
}
