package handler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/handler"
	"github.com/wsnotify/wsnotify/shared/notify"
)

func progressBody(owner, client, job string, pct int) string {
	c := ""
	if client != "" {
		c = `"clientId":"` + client + `",`
	}
	return fmt.Sprintf(`{"ownerId":%q,%s"event":{"type":"job_progress","jobId":%q,"progress":%d,"processedCount":%d,"totalCount":100}}`, owner, c, job, pct, pct)
}

func completeBody(owner, job string) string {
	return fmt.Sprintf(`{"ownerId":%q,"event":{"type":"job_complete","jobId":%q,"status":"completed","organized":100,"failed":0}}`, owner, job)
}

// received is one message a connection got: its type, job, progress and seq.
type received struct {
	Type     string `json:"type"`
	JobID    string `json:"jobId"`
	Progress int    `json:"progress"`
	Seq      int64  `json:"seq"`
}

func (r received) String() string {
	if r.Type == "job_progress" {
		return fmt.Sprintf("%s:%s:%d", r.Type, r.JobID, r.Progress)
	}
	return r.Type + ":" + r.JobID
}

func receivedBy(t *testing.T, e *env, conn string) []received {
	t.Helper()
	var out []received
	for _, m := range e.push.Sent(conn) {
		var r received
		if err := json.Unmarshal([]byte(m), &r); err != nil {
			t.Fatalf("message %s: %v", m, err)
		}
		out = append(out, r)
	}
	return out
}

func TestASupersededJobProgressIsAcknowledgedAndNeverPublished(t *testing.T) {
	e := newEnv(t)
	for _, c := range []string{"tab-1", "tab-2", "tab-x"} {
		e.register(t, "acct_42", c, "conn-"+c)
	}
	noJob := `{"ownerId":"acct_42","event":{"type":"error","error":"storage quota nearly used","code":"QUOTA"}}`
	errorB := `{"ownerId":"acct_42","event":{"type":"error","jobId":"B","error":"disk full","code":"E"}}`
	bodies := []string{
		progressBody("acct_42", "", "A", 10),      // 1: superseded by 2
		progressBody("acct_42", "", "A", 20),      // 2: superseded by 5 (the error between is of no job)
		progressBody("acct_42", "", "B", 10),      // 3: kept: B's error follows before B's next progress
		noJob,                                     // 4
		progressBody("acct_42", "", "A", 30),      // 5: kept: A's last progress before A completes
		errorB,                                    // 6
		completeBody("acct_42", "A"),              // 7
		progressBody("acct_42", "", "B", 50),      // 8: superseded by 9
		progressBody("acct_42", "", "B", 60),      // 9
		progressBody("acct_42", "tab-x", "B", 70), // 10: to one client: not the owner-wide stream, kept
	}
	var batch events.SQSEvent
	for i, b := range bodies {
		batch.Records = append(batch.Records, events.SQSMessage{MessageId: fmt.Sprint(i + 1), Body: b,
			Attributes: map[string]string{"MessageGroupId": "g"}})
	}
	dead := &deadLetters{}
	resp, err := handler.NewJobEvents(e.n, e.log, dead).Handle(context.Background(), batch)
	if err != nil || len(resp.BatchItemFailures) != 0 || len(dead.sent) != 0 {
		t.Fatalf("Handle = %+v, %v, dead-lettered %v; want every record acknowledged, none dead-lettered", resp, err, dead.sent)
	}

	want := "job_progress:B:10 error: job_progress:A:30 error:B job_complete:A job_progress:B:60"
	for _, conn := range []string{"conn-tab-1", "conn-tab-2"} {
		got := receivedBy(t, e, conn)
		var kinds []string
		for i, r := range got {
			kinds = append(kinds, r.String())
			if r.Seq != int64(i+1) {
				t.Errorf("%s: message %d has seq %d, want %d: a superseded progress never takes a seq", conn, i, r.Seq, i+1)
			}
		}
		if strings.Join(kinds, " ") != want {
			t.Errorf("%s got %v\nwant %s", conn, kinds, want)
		}
	}
	if got := receivedBy(t, e, "conn-tab-x"); len(got) != 7 || got[6].String() != "job_progress:B:70" {
		t.Errorf("tab-x got %v, want the owner's six events and then its own progress", got)
	}
	// Without superseding: 9 owner-wide records to 3 connections and one
	// record to one client.
	posts, before := e.push.Total(), 9*3+1
	t.Logf("posts: %d, %d without superseding progress (%d saved)", posts, before, before-posts)
	if posts != 6*3+1 {
		t.Fatalf("%d posts, want %d", posts, 6*3+1)
	}
}

func TestASupersededProgressIsAcknowledgedWhenWhatSupersedesItIsRetried(t *testing.T) {
	rec := func(id, group, body string) events.SQSMessage {
		return events.SQSMessage{MessageId: id, Body: body, Attributes: map[string]string{"MessageGroupId": group}}
	}
	failures := func(resp events.SQSEventResponse) string {
		var ids []string
		for _, f := range resp.BatchItemFailures {
			ids = append(ids, f.ItemIdentifier)
		}
		return strings.Join(ids, ",")
	}
	t.Run("its successor fails: it is acknowledged, the successor is retried", func(t *testing.T) {
		e := newEnv(t)
		n := notify.New(auth.NewAuthenticator(e.store), ownerDownStore{e.store, "acct_down"}, e.push, e.log, notify.Config{})
		resp, _ := handler.NewJobEvents(n, e.log, nil).Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
			rec("1", "A", progressBody("acct_down", "", "A", 10)),
			rec("2", "A", progressBody("acct_down", "", "A", 20)),
		}})
		if got := failures(resp); got != "2" {
			t.Fatalf("failures = %q, want 2 only", got)
		}
	})
	t.Run("its message group is held back: it is acknowledged, its successor is held back", func(t *testing.T) {
		e := newEnv(t)
		e.register(t, "acct_42", "tab", "conn-a")
		n := notify.New(auth.NewAuthenticator(e.store), ownerDownStore{e.store, "acct_down"}, e.push, e.log, notify.Config{})
		resp, _ := handler.NewJobEvents(n, e.log, nil).Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
			rec("1", "g", completeBody("acct_down", "J")), // fails: holds back group g
			rec("2", "g", progressBody("acct_42", "", "A", 10)),
			rec("3", "g", progressBody("acct_42", "", "A", 20)),
		}})
		if got := failures(resp); got != "1,3" || e.push.Total() != 0 {
			t.Fatalf("failures = %q, %d posts; want 1 and 3 failed, nothing posted", got, e.push.Total())
		}
	})
	t.Run("the deadline is near: it is acknowledged, its successor is left to the retry", func(t *testing.T) {
		e := newEnv(t)
		e.register(t, "acct_42", "tab", "conn-a")
		ctx, cancel := context.WithTimeout(context.Background(), 0)
		defer cancel()
		resp, _ := handler.NewJobEvents(e.n, e.log, nil).Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{
			rec("1", "A", progressBody("acct_42", "", "A", 10)),
			rec("2", "A", progressBody("acct_42", "", "A", 20)),
		}})
		if got := failures(resp); got != "2" || e.push.Total() != 0 {
			t.Fatalf("failures = %q, %d posts; want 2 failed, nothing posted", got, e.push.Total())
		}
	})
}
