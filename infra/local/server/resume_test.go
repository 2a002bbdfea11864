package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/infra/local/server"
)

// resumeScenarios are "never miss an event" end to end: real WebSocket
// clients, events through the Invoke API, resume through $default. They run
// on every store, with the walking skeleton's (TestEndToEndOnEveryStore).
var resumeScenarios = []scenario{
	{"a client that reconnects gets exactly what it missed, then the live stream", aReconnectingClientGetsExactlyWhatItMissed},
	{"a resume while publishers run loses nothing and repeats nothing", aResumeWhilePublishersRunLosesAndRepeatsNothing},
	{"a resume beyond the history says RESUME_GAP and replays what is held", aResumeBeyondTheHistoryReportsTheGap},
	{"a resume sends each job's latest progress, not each step, and every job_complete and error", aResumeSendsEachJobsLatestProgress},
	{"a resume without since gives the current state of running jobs", aResumeWithoutSinceGivesTheCurrentJobs},
	{"a redelivered record keeps its id and seq", aRedeliveredRecordKeepsItsIDAndSeq},
	{"a bad resume is answered and the connection stays usable", aBadResumeIsAnsweredAndTheConnectionStays},
}

// msg is one message a client received, decoded.
type msg struct {
	Type     string `json:"type"`
	JobID    string `json:"jobId"`
	ID       string `json:"id"`
	Seq      int64  `json:"seq"`
	Code     string `json:"code"`
	Error    string `json:"error"`
	Replayed int    `json:"replayed"`
	Oldest   int64  `json:"oldestSeq"`
	More     bool   `json:"more"`
	// Events are a replay message's; readMsg hands them out one by one,
	// each with replayed set.
	Events   []json.RawMessage `json:"events"`
	replayed bool
	raw      string
}

// unread holds the events of replay messages not yet handed out, by connection.
var unread sync.Map // *asyncapi.Conn → []json.RawMessage

// readMsg returns the next message a client received; the events of a
// replay message come one at a time, as if each were a message.
func readMsg(t *testing.T, c *asyncapi.Conn) msg {
	t.Helper()
	if held, ok := unread.Load(c); ok && len(held.([]json.RawMessage)) > 0 {
		events := held.([]json.RawMessage)
		unread.Store(c, events[1:])
		m := decodeMsg(t, events[0])
		m.replayed = true
		return m
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	m := decodeMsg(t, data)
	if m.Type == "replay" {
		if len(m.Events) == 0 {
			t.Fatalf("an empty replay message: %s", data)
		}
		unread.Store(c, m.Events)
		return readMsg(t, c)
	}
	return m
}

func decodeMsg(t *testing.T, data []byte) msg {
	t.Helper()
	var m msg
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("message %s: %v", data, err)
	}
	m.raw = string(data)
	return m
}

func send(t *testing.T, c *asyncapi.Conn, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(text)); err != nil {
		t.Fatalf("send %s: %v", text, err)
	}
}

// progressEvent is an owner-wide job_progress of job, distinguishable by n.
func progressEvent(job string, n int) string {
	return fmt.Sprintf(`{"type":"job_progress","jobId":%q,"progress":1,"processedCount":%d,"totalCount":1000000}`, job, n)
}

// expectSeqs reads one message per seq and checks it is that event, in order.
func expectSeqs(t *testing.T, c *asyncapi.Conn, from, to int64) {
	t.Helper()
	for want := from; want <= to; want++ {
		if m := readMsg(t, c); m.Seq != want || m.ID == "" {
			t.Fatalf("got %s, want the event of seq %d", m.raw, want)
		}
	}
}

func expectResumed(t *testing.T, c *asyncapi.Conn, seq int64, replayed int) {
	t.Helper()
	if m := readMsg(t, c); m.Type != "resumed" || m.Seq != seq || m.Replayed != replayed || m.ID != "" {
		t.Fatalf("got %s, want resumed at seq %d after %d replayed", m.raw, seq, replayed)
	}
}

func aReconnectingClientGetsExactlyWhatItMissed(t *testing.T, store newStore) {
	h := start(t, onStore(twoOwners(), store(t)))
	c := h.connect(t, "tab", keyA)
	b := h.connect(t, "other-owner", keyB)
	// Three jobs: a later progress of the same job would supersede the others in the batch.
	h.publishJobs(t, envelope(ownerA, "", progressEvent("j1", 1)), envelope(ownerA, "", progressEvent("j2", 2)), envelope(ownerA, "", progressEvent("j3", 3)))
	expectSeqs(t, c, 1, 3)
	if err := c.Close(websocket.StatusNormalClosure, "network change"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the disconnect", func() bool { return !h.hasRecord(t, ownerA, "tab") })

	// Missed while away: five owner-wide events, one for another client,
	// and one of another owner.
	for i := 4; i <= 8; i++ {
		h.publishJobs(t, envelope(ownerA, "", progressEvent(fmt.Sprint("j", i), i)))
	}
	h.publishJobs(t, envelope(ownerA, "someone-else", seedError), envelope(ownerB, "", seedJobComplete))

	c = h.connect(t, "tab", keyA)
	send(t, c, `{"action":"resume","since":3}`)
	expectSeqs(t, c, 4, 8)
	expectResumed(t, c, 8, 5)
	h.publishJobs(t, envelope(ownerA, "", progressEvent("j", 9)))
	expectSeqs(t, c, 9, 9)
	// Owner B's own numbering is untouched by A's.
	if m := readMsg(t, b); m.Type != "job_complete" || m.Seq != 1 {
		t.Fatalf("owner B got %s, want its own event 1", m.raw)
	}
}

// aResumeSendsEachJobsLatestProgress: progress is state. A client that was
// away gets each job's latest event only when it is a job_progress (not
// each step), every job_complete and error, and resumed at the head; the
// seqs of the superseded steps are the ones the replay skips.
func aResumeSendsEachJobsLatestProgress(t *testing.T, store newStore) {
	h := start(t, onStore(twoOwners(), store(t)))
	c := h.connect(t, "tab", keyA)
	h.publishJobs(t, envelope(ownerA, "", progressEvent("j1", 1)))
	expectSeqs(t, c, 1, 1)
	if err := c.Close(websocket.StatusNormalClosure, "network change"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the disconnect", func() bool { return !h.hasRecord(t, ownerA, "tab") })
	// One batch each, so that none is coalesced away before it is numbered.
	for _, body := range []string{
		progressEvent("j1", 2), progressEvent("j2", 3), progressEvent("j1", 4), // 2-4
		`{"type":"job_complete","jobId":"j2","status":"completed","organized":3,"failed":0}`, // 5
		progressEvent("j1", 6), progressEvent("j3", 7), // 6-7
		`{"type":"error","jobId":"j3","error":"Permission denied","code":"PERMISSION_ERROR"}`, // 8
		progressEvent("j4", 9), progressEvent("j4", 10), // 9-10
	} {
		h.publishJobs(t, envelope(ownerA, "", body))
	}
	c = h.connect(t, "tab", keyA)
	send(t, c, `{"action":"resume","since":1}`)
	for _, want := range []struct {
		typ, job string
		seq      int64
	}{{"job_complete", "j2", 5}, {"job_progress", "j1", 6}, {"error", "j3", 8}, {"job_progress", "j4", 10}} {
		if m := readMsg(t, c); m.Type != want.typ || m.JobID != want.job || m.Seq != want.seq {
			t.Fatalf("got %s, want %s of %s at seq %d", m.raw, want.typ, want.job, want.seq)
		}
	}
	expectResumed(t, c, 10, 4)
	h.publishJobs(t, envelope(ownerA, "", progressEvent("j1", 11)))
	expectSeqs(t, c, 11, 11)
}

func aResumeWhilePublishersRunLosesAndRepeatsNothing(t *testing.T, store newStore) {
	st := store(t)
	h := start(t, onStore(twoOwners(), st))
	publishers, each, early := 4, 600, 200
	if st != nil {
		// The DynamoDB store on dynalite: each publish is several requests
		// to a Node process, so the full size took some 50 s of a warm
		// `make test` (the embedded store's, 8 s). A quarter of the events
		// still has the publishers run through the whole resume.
		each, early = 150, 50
	}
	total := early + publishers*each
	// Events the client will have missed: published before it connects.
	for i := range early {
		h.publishJobs(t, envelope(ownerA, "", progressEvent(fmt.Sprint("early-", i), i)))
	}
	c := h.connect(t, "resumer", keyA)
	var publishing errgroup.Group
	startPublishing := make(chan struct{})
	for p := range publishers {
		publishing.Go(func() error {
			<-startPublishing
			for i := range each / 3 {
				// Three records per batch, as SQS delivers up to ten, each
				// of a job of its own so that none supersedes another.
				var bodies []string
				for k := range 3 {
					bodies = append(bodies, envelope(ownerA, "", progressEvent(fmt.Sprintf("p%d-%d", p, i*3+k), i*3+k)))
				}
				if _, err := h.tryPublishJobs(bodies...); err != nil {
					return err
				}
			}
			return nil
		})
	}
	// Half the events are out before the client asks to resume from 0.
	close(startPublishing)
	eventually(t, "some events published", func() bool { return h.srv.Hub().FirstSeq(h.connectionID(t, ownerA, "resumer")) > 0 })
	send(t, c, `{"action":"resume","since":0}`)
	if err := publishing.Wait(); err != nil {
		t.Fatal(err)
	}

	var before []int64 // everything before "resumed": live first, then the replay
	var resumed msg
	for {
		m := readMsg(t, c)
		if m.Type == "resumed" {
			resumed = m
			break
		}
		before = append(before, m.Seq)
	}
	// The replay is the last resumed.Replayed of them; before it came the
	// live events published after the client connected.
	if resumed.Replayed > len(before) {
		t.Fatalf("resumed %s after only %d events", resumed.raw, len(before))
	}
	live, replay := before[:len(before)-resumed.Replayed], before[len(before)-resumed.Replayed:]
	consecutive := func(name string, s []int64, from int64) {
		for i, v := range s {
			if v != from+int64(i) {
				t.Fatalf("%s %v is not consecutive from %d", name, s, from)
			}
		}
	}
	consecutive("the replay", replay, 1)
	consecutive("the live events before the replay", live, int64(len(replay))+1)
	if len(replay) < early {
		t.Fatalf("only %d replayed: the %d events before the connect were not all replayed", len(replay), early)
	}
	if int64(len(before)) != resumed.Seq {
		t.Fatalf("resumed %s after %d events (%d replayed)", resumed.raw, len(before), len(replay))
	}
	// Then the live stream goes on from the head, in order, to the end.
	var after []int64
	for next := resumed.Seq + 1; next <= int64(total); next++ {
		after = append(after, readMsg(t, c).Seq)
	}
	consecutive("the live events after resumed", after, resumed.Seq+1)
	t.Logf("%d live before the replay, %d replayed, %d live after", len(live), len(replay), len(after))
}

func aResumeBeyondTheHistoryReportsTheGap(t *testing.T, store newStore) {
	cfg := onStore(twoOwners(), store(t))
	cfg.Notify.HistoryMaxEvents = 5
	h := start(t, cfg)
	for i := 1; i <= 10; i++ {
		h.publishJobs(t, envelope(ownerA, "", progressEvent(fmt.Sprint("j", i), i)))
	}
	c := h.connect(t, "late", keyA)
	send(t, c, `{"action":"resume","since":2}`)
	if m := readMsg(t, c); m.Type != "error" || m.Code != "RESUME_GAP" || m.Oldest != 6 || !strings.Contains(m.raw, `"error":"`) {
		t.Fatalf("got %s, want RESUME_GAP with oldestSeq 6", m.raw)
	}
	expectSeqs(t, c, 6, 10)
	expectResumed(t, c, 10, 5)

	t.Run("a client ahead of the history (it was reset) is told so and starts over", func(t *testing.T) {
		c := h.connect(t, "ahead", keyA)
		send(t, c, `{"action":"resume","since":500}`)
		if m := readMsg(t, c); m.Code != "RESUME_GAP" || m.Oldest != 6 {
			t.Fatalf("got %s, want RESUME_GAP from 6", m.raw)
		}
		expectSeqs(t, c, 6, 10)
		expectResumed(t, c, 10, 5)
	})
}

func aResumeWithoutSinceGivesTheCurrentJobs(t *testing.T, store newStore) {
	h := start(t, onStore(twoOwners(), store(t)))
	h.publishJobs(t,
		envelope(ownerA, "", progressEvent("A", 1)),
		envelope(ownerA, "", progressEvent("B", 2)),
		envelope(ownerA, "", `{"type":"job_complete","jobId":"A","status":"completed","organized":1,"failed":0}`),
		envelope(ownerA, "", seedFileUploadedEvent),
	)
	// Another batch: in the same one, B's later progress would supersede B's first.
	h.publishJobs(t,
		envelope(ownerA, "", progressEvent("C", 5)),
		envelope(ownerA, "", progressEvent("B", 6)),
	)
	c := h.connect(t, "fresh-page", keyA)
	send(t, c, `{"action":"resume"}`)
	for _, want := range []struct {
		job string
		seq int64
	}{{"C", 5}, {"B", 6}} {
		if m := readMsg(t, c); m.Type != "job_progress" || m.JobID != want.job || m.Seq != want.seq {
			t.Fatalf("got %s, want job %s's latest progress (seq %d)", m.raw, want.job, want.seq)
		}
	}
	expectResumed(t, c, 6, 2)
}

// seedFileUploadedEvent stands for an event of no job in a job stream.
const seedFileUploadedEvent = `{"type":"error","error":"quota low","code":"QUOTA"}`

func aRedeliveredRecordKeepsItsIDAndSeq(t *testing.T, store newStore) {
	h := start(t, onStore(twoOwners(), store(t)))
	c := h.connect(t, "tab", keyA)
	batch := sqsBatch(envelope(ownerA, "", progressEvent("j", 1)))
	for range 2 { // SQS delivers at least once
		if status, _, body := h.post(t, "POST", "/2015-03-31/functions/JobEventsFunction/invocations", batch, "", nil); status != 200 {
			t.Fatalf("invoke: %d %s", status, body)
		}
	}
	first, again := readMsg(t, c), readMsg(t, c)
	if first.raw != again.raw || first.Seq != 1 {
		t.Fatalf("a redelivery came as %s after %s; want the same event, seq 1", again.raw, first.raw)
	}
	upload := `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"uploads/acct_A/r.pdf","size":3,"eTag":"e1","sequencer":"0A"}}}]}`
	for range 2 {
		h.invoke(t, server.S3UploadFunction, []byte(upload), nil)
	}
	u1, u2 := readMsg(t, c), readMsg(t, c)
	if u1.raw != u2.raw || u1.Seq != 2 {
		t.Fatalf("a redelivered upload came as %s after %s; want the same event, seq 2", u2.raw, u1.raw)
	}
	h.publishJobs(t, envelope(ownerA, "", progressEvent("j", 2)))
	expectSeqs(t, c, 3, 3) // no second event was counted
	h.invoke(t, server.S3UploadFunction, []byte(`{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-30T10:00:00.000Z","Bucket":"b","RequestId":"r","HostId":"h"}`), nil)
	h.publishJobs(t, envelope(ownerA, "", progressEvent("j", 3)))
	expectSeqs(t, c, 4, 4) // S3's test message published nothing

	t.Run("an event for one client has an id, no seq, and is not replayed", func(t *testing.T) {
		h.publishJobs(t, envelope(ownerA, "tab", seedError))
		if m := readMsg(t, c); m.Type != "error" || m.ID == "" || m.Seq != 0 || strings.Contains(m.raw, `"seq"`) {
			t.Fatalf("got %s", m.raw)
		}
		late := h.connect(t, "late", keyA)
		send(t, late, `{"action":"resume","since":3}`)
		expectSeqs(t, late, 4, 4)
		expectResumed(t, late, 4, 1)
	})
}

func aBadResumeIsAnsweredAndTheConnectionStays(t *testing.T, store newStore) {
	h := start(t, onStore(twoOwners(), store(t)))
	c := h.connect(t, "tab", keyA)
	for _, tt := range []struct{ body, says string }{
		{`{"action":"resume","since":-1}`, "since must be a whole number"},
		{`{"action":"resume","since":"5"}`, "since must be a whole number"},
		{`{"action":"resume","since":1.5}`, "since must be a whole number"},
		{`{"action":"resume","since":1e3}`, "since must be a whole number"},
		{`{"action":"resume","since":null}`, "since must be a whole number"},
		{`{"action":"resume","since":3,"from":"start"}`, `resume takes only "since", not "from"`},
		{`{"action":"resume","action":"ping"}`, "duplicate"},
	} {
		send(t, c, tt.body)
		m := readMsg(t, c)
		if m.Type != "error" || m.Code != "BAD_REQUEST" || !strings.Contains(m.Error, tt.says) {
			if tt.says == "duplicate" && m.Type == "pong" {
				continue // encoding/json keeps the last key: a ping it is
			}
			t.Errorf("%s: got %s, want BAD_REQUEST saying %s", tt.body, m.raw, tt.says)
		}
	}
	send(t, c, `{"action":"ping"}`)
	if m := readMsg(t, c); m.Type != "pong" {
		t.Fatalf("after the bad resumes, a ping got %s", m.raw)
	}
}
