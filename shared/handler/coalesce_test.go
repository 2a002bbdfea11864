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
	t.Run("its successor fails: it is acknowledged, the successor is retried", func(t *testing.T) {
		e := newEnv(t)
		n := notify.New(auth.NewAuthenticator(e.store), ownerDownStore{e.store, "acct_down"}, e.push, e.log, notify.Config{})
		resp, _ := handler.NewJobEvents(n, e.log, nil).Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
			rec("1", "A", progressBody("acct_down", "", "A", 10)),
			rec("2", "A", progressBody("acct_down", "", "A", 20)),
		}})
		if got := failed(resp); got != "2" {
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
		if got := failed(resp); got != "1,3" || e.push.Total() != 0 {
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
		if got := failed(resp); got != "2" || e.push.Total() != 0 {
			t.Fatalf("failures = %q, %d posts; want 2 failed, nothing posted", got, e.push.Total())
		}
	})
}

// jobRun is a job over files files as the organizer reports it: a
// job_progress per file, then its job_complete, delivered by SQS in batches
// of batch records (at most 10) to an owner of connections connections.
type jobRun struct{ files, batch, connections int }

// records returns the job's records.
func (j jobRun) records() []events.SQSMessage {
	var recs []events.SQSMessage
	for i := 1; i <= j.files; i++ {
		body := fmt.Sprintf(`{"ownerId":"acct_42","event":{"type":"job_progress","jobId":"job_big","progress":%d,"processedCount":%d,"totalCount":%d,"currentFile":"f%d.pdf"}}`,
			i*100/j.files, i, j.files, i)
		recs = append(recs, events.SQSMessage{MessageId: fmt.Sprint("m", i), Body: body, Attributes: map[string]string{"MessageGroupId": "job_big"}})
	}
	done := fmt.Sprintf(`{"ownerId":"acct_42","event":{"type":"job_complete","jobId":"job_big","status":"completed","organized":%d,"failed":0}}`, j.files)
	return append(recs, events.SQSMessage{MessageId: "done", Body: done, Attributes: map[string]string{"MessageGroupId": "job_big"}})
}

// run publishes the job through the handler and returns the posts it cost
// and the last message a connection got.
func (j jobRun) run(tb testing.TB) (posts int, last string) {
	tb.Helper()
	e := newEnv(tb)
	for i := range j.connections {
		e.register(tb, "acct_42", fmt.Sprint("tab-", i), fmt.Sprint("conn-", i))
	}
	h := handler.NewJobEvents(e.n, e.log, nil)
	recs := j.records()
	for len(recs) > 0 {
		n := min(j.batch, len(recs))
		resp, err := h.Handle(context.Background(), events.SQSEvent{Records: recs[:n]})
		if err != nil || len(resp.BatchItemFailures) > 0 {
			tb.Fatalf("Handle = %+v, %v", resp, err)
		}
		recs = recs[n:]
	}
	sent := e.push.Sent("conn-0")
	return e.push.Total(), sent[len(sent)-1]
}

func TestAJobOfAThousandFilesPostsOneProgressPerBatch(t *testing.T) {
	j := jobRun{files: 1000, batch: 10, connections: 3}
	posts, last := j.run(t)
	// 100 batches of ten progress post one each, then the completion:
	// 101 events to 3 connections, where each record was one before.
	before := (j.files + 1) * j.connections
	t.Logf("%d posts, %d without superseding progress", posts, before)
	if posts != 101*3 || !strings.Contains(last, `"job_complete"`) {
		t.Fatalf("%d posts ending with %s; want %d, ending with the job_complete", posts, last, 101*3)
	}
	t.Run("the benchmark runs", func(t *testing.T) {
		if res := testing.Benchmark(benchmarkCoalescing(jobRun{files: 100, batch: 10, connections: 2})); res.Extra["posts/job"] != 11*2 {
			t.Fatalf("benchmark result %v", res)
		}
	})
}

// BenchmarkCoalescing runs a job of 10,000 files through the job events
// handler to an owner of 100 connections, in SQS batches of 10, and reports
// the posts it costs (posts/job) and what it cost before progress was
// superseded within a batch: a post per record and connection.
//
//	go test -run '^$' -bench Coalescing -benchtime 1x ./shared/handler/
func BenchmarkCoalescing(b *testing.B) {
	benchmarkCoalescing(jobRun{files: 10000, batch: 10, connections: 100})(b)
}

func benchmarkCoalescing(j jobRun) func(*testing.B) {
	return func(b *testing.B) {
		var posts int
		for b.Loop() {
			posts, _ = j.run(b)
		}
		before := (j.files + 1) * j.connections
		b.ReportMetric(float64(posts), "posts/job")
		b.ReportMetric(float64(before), "posts-before/job")
		b.ReportMetric(100*float64(before-posts)/float64(before), "saved-%")
	}
}
