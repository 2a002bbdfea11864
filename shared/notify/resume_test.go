package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
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
