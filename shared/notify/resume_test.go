package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/notify/notifytest"
	"github.com/wsnotify/wsnotify/shared/store"
	"github.com/wsnotify/wsnotify/shared/store/memory"
)

// replayed is what one connection got from a resume, decoded.
type replayed struct {
	frames  int      // replay messages
	largest int      // bytes of the largest
	seqs    []int64  // the events' seqs, in order
	jobs    []string // their job ids
	gap     *event.ResumeGap
	resumed event.Resumed
}

// decodeReplay decodes what a resume posted to one connection, failing on
// anything out of the expected order: at most a gap first, replay messages,
// then resumed last.
func decodeReplay(t *testing.T, sent []string) replayed {
	t.Helper()
	var r replayed
	for i, m := range sent {
		var head struct {
			Type   string            `json:"type"`
			Code   string            `json:"code"`
			Events []json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal([]byte(m), &head); err != nil {
			t.Fatalf("message %d %.100s: %v", i, m, err)
		}
		switch {
		case head.Type == "error" && head.Code == event.CodeResumeGap && i == 0:
			r.gap = new(event.ResumeGap)
			_ = json.Unmarshal([]byte(m), r.gap)
		case head.Type == "replay" && i < len(sent)-1:
			r.frames++
			r.largest = max(r.largest, len(m))
			if len(head.Events) == 0 {
				t.Fatalf("an empty replay message: %s", m)
			}
			for _, raw := range head.Events {
				var e struct {
					Seq   int64  `json:"seq"`
					ID    string `json:"id"`
					JobID string `json:"jobId"`
				}
				if err := json.Unmarshal(raw, &e); err != nil || e.Seq == 0 || e.ID == "" {
					t.Fatalf("a replayed event without id and seq: %s", raw)
				}
				r.seqs = append(r.seqs, e.Seq)
				r.jobs = append(r.jobs, e.JobID)
			}
		case head.Type == "resumed" && i == len(sent)-1:
			_ = json.Unmarshal([]byte(m), &r.resumed)
		default:
			t.Fatalf("message %d of %d out of place: %.200s", i, len(sent), m)
		}
	}
	return r
}

func publishN(t *testing.T, f *fixture, owner string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		ev := event.JobComplete{Type: event.TypeJobComplete, JobID: fmt.Sprintf("job-%05d", i), Status: "completed", Organized: int64(i)}
		if _, err := f.n.Publish(context.Background(), owner, "", "", ev); err != nil {
			t.Fatal(err)
		}
	}
}

func wantSeqs(t *testing.T, got []int64, from, to int64) {
	t.Helper()
	if int64(len(got)) != to-from+1 {
		t.Fatalf("replayed %d events, want %d to %d", len(got), from, to)
	}
	for i, seq := range got {
		if seq != from+int64(i) {
			t.Fatalf("event %d has seq %d, want %d", i, seq, from+int64(i))
		}
	}
}

// TestResumeReplaysWhatWasMissedPackedInFrames is Resume with a pusher that
// keeps no order (the cloud's): every event of the owner after since, in
// seq order, packed into replay messages within the message limit, then
// resumed; nothing of another owner, nothing addressed to one client.
func TestResumeReplaysWhatWasMissedPackedInFrames(t *testing.T) {
	ctx := context.Background()
	const limit = 2048
	f := newFixture(t, notify.Config{MaxMessageBytes: limit})
	publishN(t, f, "owner-a", 1, 120)
	publishN(t, f, "owner-b", 1, 5)
	f.connect(t, "key-a", "c1", "other-client")
	if _, err := f.n.Publish(ctx, "owner-a", "c1", "", progress); err != nil {
		t.Fatal(err)
	}
	f.connect(t, "key-a", "tab", "conn1")

	res, err := f.n.Resume(ctx, notify.ResumeRequest{ConnectionID: "conn1", Since: 20})
	if err != nil {
		t.Fatal(err)
	}
	r := decodeReplay(t, f.push.Sent("conn1"))
	wantSeqs(t, r.seqs, 21, 120)
	if r.resumed != (event.Resumed{Type: "resumed", Seq: 120, Replayed: 100}) || res.Replayed != 100 || res.Head != 120 || res.Gap || r.gap != nil {
		t.Fatalf("resumed %+v, result %+v; want seq 120 after 100 replayed", r.resumed, res)
	}
	if r.largest > limit {
		t.Fatalf("a replay message of %d bytes, over the %d limit", r.largest, limit)
	}
	// Each event is some 140 bytes: 14 a frame, so 8 frames; a packer that
	// filled frames only half would need twice as many.
	if r.frames > 8 {
		t.Fatalf("%d replay messages for 100 events within %d bytes: not packed", r.frames, limit)
	}

	t.Run("nothing missed: resumed alone", func(t *testing.T) {
		f.connect(t, "key-a", "tab2", "conn2")
		if _, err := f.n.Resume(ctx, notify.ResumeRequest{ConnectionID: "conn2", Since: 120}); err != nil {
			t.Fatal(err)
		}
		if got := f.push.Sent("conn2"); len(got) != 1 || got[0] != `{"type":"resumed","seq":120,"replayed":0}` {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("a replay of more than a page of the history reads on", func(t *testing.T) {
		f := newFixture(t, notify.Config{})
		publishN(t, f, "owner-a", 1, 1234)
		f.connect(t, "key-a", "tab", "conn1")
		if _, err := f.n.Resume(ctx, notify.ResumeRequest{ConnectionID: "conn1", Current: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.n.Resume(ctx, notify.ResumeRequest{ConnectionID: "conn1", Since: 0}); err != nil {
			t.Fatal(err)
		}
		sent := f.push.Sent("conn1")
		// The first resume (no since) found no running job: resumed alone.
		if !strings.HasPrefix(sent[0], `{"type":"resumed","seq":1234,"replayed":0}`) {
			t.Fatalf("a resume without since, with no job running, got %.100s", sent[0])
		}
		r := decodeReplay(t, sent[1:])
		wantSeqs(t, r.seqs, 1, 1234)
		if r.frames != 2 || r.resumed.Replayed != 1234 {
			t.Fatalf("%d frames, resumed %+v; want 1234 events in 2 frames", r.frames, r.resumed)
		}
	})
}

func TestResumeSaysWhenTheHistoryNoLongerHoldsWhatWasAsked(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, notify.Config{HistoryMaxEvents: 5})
	publishN(t, f, "owner-a", 1, 10)
	for _, since := range []int64{2, 500} {
		conn := fmt.Sprintf("conn-%d", since)
		f.connect(t, "key-a", conn, conn)
		res, err := f.n.Resume(ctx, notify.ResumeRequest{ConnectionID: conn, Since: since})
		if err != nil {
			t.Fatal(err)
		}
		r := decodeReplay(t, f.push.Sent(conn))
		if r.gap == nil || r.gap.OldestSeq != 6 || !res.Gap {
			t.Fatalf("since %d: gap %+v, result %+v; want RESUME_GAP from 6", since, r.gap, res)
		}
		wantSeqs(t, r.seqs, 6, 10)
		if r.resumed.Seq != 10 || r.resumed.Replayed != 5 {
			t.Fatalf("since %d: resumed %+v", since, r.resumed)
		}
	}
}

func TestResumeWithoutSinceSendsTheLatestOfTheMostRecentRunningJobs(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, notify.Config{})
	running := notify.MaxCurrentJobs + 2
	for i := 1; i <= running; i++ {
		ev := progress
		ev.JobID = fmt.Sprintf("job-%05d", i)
		if _, err := f.n.Publish(ctx, "owner-a", "", "", ev); err != nil {
			t.Fatal(err)
		}
	}
	publishN(t, f, "owner-a", 1, 1) // job-00001 completes: no longer running
	f.connect(t, "key-a", "tab", "conn1")
	res, err := f.n.Resume(ctx, notify.ResumeRequest{ConnectionID: "conn1", Current: true})
	if err != nil {
		t.Fatal(err)
	}
	r := decodeReplay(t, f.push.Sent("conn1"))
	wantSeqs(t, r.seqs, 3, int64(running))
	if r.jobs[0] != "job-00003" || !r.resumed.More || !res.More || r.resumed.Seq != int64(running)+1 {
		t.Fatalf("first job %s, resumed %+v; want from job-00003, more, at seq %d", r.jobs[0], r.resumed, running+1)
	}
}

func TestResumeRefusesWhatItCannotServe(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, notify.Config{})
	f.connect(t, "key-a", "tab", "conn1")
	if _, err := f.n.Resume(ctx, notify.ResumeRequest{ConnectionID: "conn1", Since: -1}); notify.ErrorCode(err) != notify.CodeInvalid {
		t.Fatalf("since -1: %v, want CodeInvalid", err)
	}
	if got := f.push.Sent("conn1"); len(got) != 0 {
		t.Fatalf("a refused resume sent %q", got)
	}
}

// unwritten is a memory store whose history has not written some numbered
// events yet: their publishers are between numbering them and writing them,
// as a cloud publisher in another invocation can be while a resume reads.
type unwritten struct {
	*memory.Store
	hidden map[int64]bool
	// jobLag hides events from CurrentJobs only: written, their job's
	// state not moved on yet (or never, its publisher failed in between).
	jobLag map[int64]bool
}

func (u *unwritten) visible(events []store.Event) []store.Event {
	var out []store.Event
	for _, e := range events {
		if !u.hidden[e.Seq] {
			out = append(out, e)
		}
	}
	return out
}

func (u *unwritten) EventsSince(ctx context.Context, owner string, since int64, limit, keep int, now time.Time) ([]store.Event, store.Window, error) {
	events, w, err := u.Store.EventsSince(ctx, owner, since, limit, keep, now)
	for u.hidden[w.Oldest] && w.Oldest <= w.Head {
		w.Oldest++ // the oldest held is the oldest written
	}
	return u.visible(events), w, err
}

func (u *unwritten) CurrentJobs(ctx context.Context, owner string, keep int, now time.Time) ([]store.Event, int64, error) {
	events, head, err := u.Store.CurrentJobs(ctx, owner, keep, now)
	var shown []store.Event
	for _, e := range u.visible(events) {
		if !u.jobLag[e.Seq] {
			shown = append(shown, e)
		}
	}
	return shown, head, err
}

// In the cloud, an event numbered but not yet written when a resume reads
// the history is missing from the replay and arrives live later. resumed's
// seq must not count it: a client that sets its seq to resumed's (the
// client module does, after a resume without since) would drop it as
// already had. resumed says where the events the replay could see stop
// being contiguous, and the replay sends the written events after that
// point, so the client holds them until the missing one arrives.
func TestResumedCountsNoEventTheReplayCouldNotSee(t *testing.T) {
	ctx := context.Background()
	s, p, n := newUnwrittenFixture(t, false, 4)
	s.hidden[3] = true // job-3's first event: numbered, not written yet
	resume := func(conn string, req notify.ResumeRequest) replayed {
		t.Helper()
		if _, err := n.Connect(ctx, notify.ConnectRequest{Token: "key-a", ClientID: conn, ConnectionID: conn}); err != nil {
			t.Fatal(err)
		}
		req.ConnectionID = conn
		if _, err := n.Resume(ctx, req); err != nil {
			t.Fatal(err)
		}
		return decodeReplay(t, p.Sent(conn))
	}

	r := resume("fresh", notify.ResumeRequest{Current: true})
	if r.resumed.Seq != 2 || !slices.Contains(r.seqs, 4) || slices.Contains(r.seqs, 3) {
		t.Fatalf("a resume without since: events %v, resumed %+v; want seq 2 (3 is not written yet) and event 4", r.seqs, r.resumed)
	}
	r = resume("since-1", notify.ResumeRequest{Since: 1})
	if r.resumed.Seq != 2 || !slices.Equal(r.seqs, []int64{2, 4}) {
		t.Fatalf("a resume since 1: events %v, resumed %+v; want 2 and 4, resumed at 2", r.seqs, r.resumed)
	}

	delete(s.hidden, 3) // written
	r = resume("since-2", notify.ResumeRequest{Since: 2})
	if r.resumed.Seq != 4 || !slices.Equal(r.seqs, []int64{3, 4}) {
		t.Fatalf("once written: events %v, resumed %+v; want 3 and 4, resumed at 4", r.seqs, r.resumed)
	}
	r = resume("fresh-2", notify.ResumeRequest{Current: true})
	if r.resumed.Seq != 4 || !slices.Equal(r.seqs, []int64{1, 2, 3, 4}) {
		t.Fatalf("a resume without since once written: events %v, resumed %+v; want the 4 jobs, resumed at 4", r.seqs, r.resumed)
	}
}

// orderedRecorder is a Recorder that is an OrderedPusher, as local mode's hub
// is: its posts only queue.
type orderedRecorder struct {
	*notifytest.Recorder
	mu    sync.Mutex
	first map[string]int64
}

func (o *orderedRecorder) PostEvent(ctx context.Context, connectionID string, data []byte, seq int64) error {
	o.mu.Lock()
	if o.first[connectionID] == 0 {
		o.first[connectionID] = seq
	}
	o.mu.Unlock()
	return o.Post(ctx, connectionID, data)
}

func (o *orderedRecorder) FirstSeq(connectionID string) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.first[connectionID]
}

// In local mode a publish holds its owner's lock, but one whose write
// failed after its seq was taken (a store fault: 2 s of latency on local
// mode's DynamoDB store, in make chaos) leaves the event unwritten until its
// redelivery: resumed must not count it either.
func TestResumedInLocalModeCountsNoEventTheReplayCouldNotSee(t *testing.T) {
	ctx := context.Background()
	s, p, n := newUnwrittenFixture(t, true, 3)
	s.hidden[1] = true
	for _, req := range []notify.ResumeRequest{{Current: true}, {Since: 0}} {
		conn := fmt.Sprintf("conn-%t", req.Current)
		if _, err := n.Connect(ctx, notify.ConnectRequest{Token: "key-a", ClientID: conn, ConnectionID: conn}); err != nil {
			t.Fatal(err)
		}
		req.ConnectionID = conn
		if _, err := n.Resume(ctx, req); err != nil {
			t.Fatal(err)
		}
		r := decodeReplay(t, p.Sent(conn))
		if r.resumed.Seq != 0 || !slices.Equal(r.seqs, []int64{2, 3}) {
			t.Fatalf("%+v: events %v, resumed %+v; want 2 and 3, resumed at 0 (1 is not written)", req, r.seqs, r.resumed)
		}
	}
}

// An event written whose job's state the snapshot does not show yet (found
// by make chaos: its publisher's write of the job's state failed after the
// event's, on local mode's DynamoDB store under 2 s of latency) is not
// counted by a resume without since either: it is sent, after resumed's seq.
func TestAResumeWithoutSinceSendsAnEventWhoseJobStateLags(t *testing.T) {
	ctx := context.Background()
	for _, ordered := range []bool{false, true} {
		s, rec, n := newUnwrittenFixture(t, ordered, 3)
		s.jobLag[2] = true
		if _, err := n.Connect(ctx, notify.ConnectRequest{Token: "key-a", ClientID: "tab", ConnectionID: "conn"}); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Resume(ctx, notify.ResumeRequest{ConnectionID: "conn", Current: true}); err != nil {
			t.Fatal(err)
		}
		r := decodeReplay(t, rec.Sent("conn"))
		if r.resumed.Seq != 1 || !slices.Equal(r.seqs, []int64{1, 2, 3}) {
			t.Fatalf("ordered %t: events %v, resumed %+v; want 1, 2 and 3, resumed at 1", ordered, r.seqs, r.resumed)
		}
	}
}

// newUnwrittenFixture returns a Notifier on an unwritten store, its pusher
// ordered (local mode's) or not (the cloud's), with one running job event
// published for each of job-1 to job-<jobs> (seqs 1 to jobs).
func newUnwrittenFixture(t *testing.T, ordered bool, jobs int) (*unwritten, *notifytest.Recorder, *notify.Notifier) {
	t.Helper()
	return newUnwrittenFixtureAt(t, ordered, jobs, notifytest.NewClock(time.Now()))
}

// newUnwrittenFixtureAt is newUnwrittenFixture on clock.
func newUnwrittenFixtureAt(t *testing.T, ordered bool, jobs int, clock *notifytest.Clock) (*unwritten, *notifytest.Recorder, *notify.Notifier) {
	t.Helper()
	ctx := context.Background()
	s := &unwritten{Store: memory.New(), hidden: map[int64]bool{}, jobLag: map[int64]bool{}}
	if err := s.PutKey(ctx, auth.Key{Hash: auth.Hash("key-a"), OwnerID: "owner-a"}); err != nil {
		t.Fatal(err)
	}
	rec := notifytest.NewRecorder()
	var p notify.Pusher = rec
	if ordered {
		p = &orderedRecorder{Recorder: rec, first: map[string]int64{}}
	}
	n := notify.New(auth.NewAuthenticator(s), s, p, slog.New(slog.NewTextHandler(io.Discard, nil)), notify.Config{Now: clock.Now})
	for i := 1; i <= jobs; i++ {
		ev := progress
		ev.JobID = fmt.Sprintf("job-%d", i)
		if _, err := n.Publish(ctx, "owner-a", "", "", ev); err != nil {
			t.Fatal(err)
		}
	}
	return s, rec, n
}

// A seq missing below an event written minutes ago is missing for good (its
// publisher died between numbering and writing it): resumed counts past it,
// so that clients do not wait for it.
func TestResumedCountsPastASeqMissingForGood(t *testing.T) {
	ctx := context.Background()
	clock := notifytest.NewClock(time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC))
	for _, ordered := range []bool{false, true} {
		s, rec, n := newUnwrittenFixtureAt(t, ordered, 3, clock)
		s.hidden[2] = true
		clock.Advance(3 * time.Minute)
		if _, err := n.Connect(ctx, notify.ConnectRequest{Token: "key-a", ClientID: "tab", ConnectionID: "conn"}); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Resume(ctx, notify.ResumeRequest{ConnectionID: "conn", Current: true}); err != nil {
			t.Fatal(err)
		}
		if r := decodeReplay(t, rec.Sent("conn")); r.resumed.Seq != 3 || !slices.Equal(r.seqs, []int64{1, 3}) {
			t.Fatalf("ordered %t: events %v, resumed %+v; want 1 and 3, resumed at 3", ordered, r.seqs, r.resumed)
		}
	}
}
