package storetest

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/store"
)

// keep is the history bound the suite records with, unless a test says otherwise.
const keep = 1000

// RunHistory runs the history contract: gap-free numbering per owner, a
// redelivered id getting back its event, replay from any point, a
// job_progress replayed only while it is its job's latest event, retention
// by count and by time, the current state of running jobs, and numbering
// under concurrent publishers. newHistory returns an empty history per test.
func RunHistory(t *testing.T, newHistory func(t *testing.T) notify.History) {
	t.Run("Numbering", func(t *testing.T) { t.Parallel(); testNumbering(t, newHistory(t)) })
	t.Run("Redelivery", func(t *testing.T) { t.Parallel(); testRedelivery(t, newHistory(t)) })
	t.Run("EventsSince", func(t *testing.T) { t.Parallel(); testEventsSince(t, newHistory(t)) })
	t.Run("ProgressIsState", func(t *testing.T) { t.Parallel(); testProgressIsState(t, newHistory(t)) })
	t.Run("RetentionByCount", func(t *testing.T) { t.Parallel(); testRetentionByCount(t, newHistory(t)) })
	t.Run("RetentionByTime", func(t *testing.T) { t.Parallel(); testRetentionByTime(t, newHistory(t)) })
	t.Run("CurrentJobs", func(t *testing.T) { t.Parallel(); testCurrentJobs(t, newHistory(t)) })
	t.Run("ConcurrentPublishers", func(t *testing.T) { t.Parallel(); testConcurrentPublishers(t, newHistory(t)) })
}

// ev is an event of owner with id; typ and job name its kind and job.
func ev(owner, id, typ, job string) store.Event {
	body := fmt.Sprintf(`{"type":%q,"jobId":%q,"note":%q}`, typ, job, id)
	return store.Event{OwnerID: owner, ID: id, Type: typ, JobID: job, Body: []byte(body), ExpiresAt: epoch.Add(24 * time.Hour)}
}

func record(t *testing.T, h notify.History, e store.Event, keepN int, now time.Time) (store.Event, bool) {
	t.Helper()
	got, dup, err := h.RecordEvent(ctxT(t), e, keepN, now)
	if err != nil {
		t.Fatalf("RecordEvent(%s): %v", e.ID, err)
	}
	return got, dup
}

func since(t *testing.T, h notify.History, owner string, after int64, limit, keepN int, now time.Time) ([]store.Event, store.Window) {
	t.Helper()
	got, w, err := h.EventsSince(ctxT(t), owner, after, limit, keepN, now)
	if err != nil {
		t.Fatalf("EventsSince(%s, %d): %v", owner, after, err)
	}
	return got, w
}

func seqs(events []store.Event) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.Seq
	}
	return out
}

func testNumbering(t *testing.T, h notify.History) {
	for i, want := range []int64{1, 2, 3} {
		got, dup := record(t, h, ev("acct_1", fmt.Sprintf("e%d", i), "job_progress", "j"), keep, epoch)
		if dup || got.Seq != want {
			t.Fatalf("event %d: seq %d (duplicate %v), want %d", i, got.Seq, dup, want)
		}
	}
	if got, _ := record(t, h, ev("acct_2", "e0", "job_progress", "j"), keep, epoch); got.Seq != 1 {
		t.Fatalf("another owner's first event got seq %d, want 1: owners number apart, and ids are per owner", got.Seq)
	}
}

func testRedelivery(t *testing.T, h notify.History) {
	// Each kind of item that holds an id: a job's state, an event of a
	// job, an event of no job.
	for i, x := range []struct{ typ, job string }{{"job_progress", "j"}, {"job_complete", "k"}, {"file_uploaded", ""}} {
		id := fmt.Sprint("msg-", x.typ)
		first, _ := record(t, h, ev("acct_1", id, x.typ, x.job), keep, epoch)
		record(t, h, ev("acct_1", fmt.Sprint("other-", i), "file_uploaded", ""), keep, epoch)
		again := ev("acct_1", id, x.typ, x.job)
		again.Body = []byte(`{"type":"job_progress","changed":true}`)
		got, dup := record(t, h, again, keep, epoch)
		if !dup || got.Seq != first.Seq || string(got.Body) != string(first.Body) {
			t.Fatalf("redelivery of a %s = seq %d, duplicate %v, body %s; want seq %d, duplicate, body %s", x.typ, got.Seq, dup, got.Body, first.Seq, first.Body)
		}
	}
	if _, w := since(t, h, "acct_1", 0, 100, keep, epoch); w.Head != 6 {
		t.Fatalf("head %d after redeliveries, want 6: no new event", w.Head)
	}
}

// testProgressIsState: a job_progress is its job's state. A replay sends it
// only while it is its job's latest event; job_complete, error and the
// events of no job are always replayed; the seqs of superseded progress are
// skipped, and do not count as gone from the window. A redelivered
// superseded job_progress still gets its first seq.
func testProgressIsState(t *testing.T, h notify.History) {
	for i, x := range []struct{ typ, job string }{
		{"job_progress", "j1"}, {"job_progress", "j2"}, {"job_progress", "j1"}, {"file_uploaded", ""}, // 1-4
		{"job_progress", "j1"}, {"job_progress", "j2"}, {"job_complete", "j2"}, {"job_progress", "j3"}, // 5-8
		{"job_progress", "j1"}, {"error", "j3"}, {"error", ""}, {"job_progress", "j4"}, // 9-12
	} {
		record(t, h, ev("acct_1", fmt.Sprintf("e%d", i+1), x.typ, x.job), keep, epoch)
	}
	for _, x := range []struct {
		since int64
		limit int
		want  string
	}{
		// j1 runs (9), j2 completed (7), j3 failed (10), j4 runs (12).
		{0, 100, "[4 7 9 10 11 12]"},
		{4, 100, "[7 9 10 11 12]"},
		{8, 100, "[9 10 11 12]"},
		{9, 100, "[10 11 12]"},
		{12, 100, "[]"},
		{0, 3, "[4 7 9]"},
		{7, 2, "[9 10]"},
		{10, 1, "[11]"},
	} {
		got, w := since(t, h, "acct_1", x.since, x.limit, keep, epoch)
		if fmt.Sprint(seqs(got)) != x.want || w != (store.Window{Head: 12, Oldest: 1}) {
			t.Errorf("since %d, limit %d: %v, %+v; want %s, the window 1 to 12", x.since, x.limit, seqs(got), w, x.want)
		}
	}
	got, _ := since(t, h, "acct_1", 8, 1, keep, epoch)
	if len(got) != 1 || got[0].ID != "e9" || got[0].JobID != "j1" || string(got[0].Body) != string(ev("acct_1", "e9", "job_progress", "j1").Body) {
		t.Fatalf("j1's state came back as %+v", got)
	}
	// Pages that follow one another, as a resume reads them, miss nothing.
	var all []int64
	for after := int64(0); ; {
		page, _ := since(t, h, "acct_1", after, 2, keep, epoch)
		if len(page) == 0 {
			break
		}
		all = append(all, seqs(page)...)
		after = page[len(page)-1].Seq
	}
	if fmt.Sprint(all) != "[4 7 9 10 11 12]" {
		t.Fatalf("pages of 2: %v", all)
	}
	// Superseded three times, e1 is still known by its id.
	again, dup := record(t, h, ev("acct_1", "e1", "job_progress", "j1"), keep, epoch)
	if !dup || again.Seq != 1 {
		t.Fatalf("redelivery of superseded progress = seq %d, duplicate %v; want 1, a duplicate", again.Seq, dup)
	}
	if got, w := since(t, h, "acct_1", 0, 100, keep, epoch); fmt.Sprint(seqs(got)) != "[4 7 9 10 11 12]" || w.Head != 12 {
		t.Fatalf("after the redelivery: %v, head %d", seqs(got), w.Head)
	}
	// Retention by count still counts every seq given.
	if got, w := since(t, h, "acct_1", 0, 100, 4, epoch); fmt.Sprint(seqs(got)) != "[9 10 11 12]" || w != (store.Window{Head: 12, Oldest: 9}) {
		t.Fatalf("keep 4: %v, %+v", seqs(got), w)
	}
}

func testEventsSince(t *testing.T, h notify.History) {
	if got, w := since(t, h, "acct_1", 0, 100, keep, epoch); len(got) != 0 || w != (store.Window{Head: 0, Oldest: 1}) {
		t.Fatalf("empty history: %v, %+v", seqs(got), w)
	}
	for i := range 7 {
		record(t, h, ev("acct_1", fmt.Sprintf("e%d", i), "file_uploaded", ""), keep, epoch)
	}
	got, w := since(t, h, "acct_1", 0, 100, keep, epoch)
	if fmt.Sprint(seqs(got)) != "[1 2 3 4 5 6 7]" || w != (store.Window{Head: 7, Oldest: 1}) {
		t.Fatalf("since 0: %v, %+v", seqs(got), w)
	}
	if string(got[2].Body) != string(ev("acct_1", "e2", "file_uploaded", "").Body) || got[2].ID != "e2" {
		t.Fatalf("event 3 came back as %s (id %q)", got[2].Body, got[2].ID)
	}
	if got, _ := since(t, h, "acct_1", 4, 100, keep, epoch); fmt.Sprint(seqs(got)) != "[5 6 7]" {
		t.Fatalf("since 4: %v", seqs(got))
	}
	if got, _ := since(t, h, "acct_1", 1, 3, keep, epoch); fmt.Sprint(seqs(got)) != "[2 3 4]" {
		t.Fatalf("since 1, limit 3: %v", seqs(got))
	}
	if got, _ := since(t, h, "acct_1", 7, 100, keep, epoch); len(got) != 0 {
		t.Fatalf("since the head: %v", seqs(got))
	}
}

func testRetentionByCount(t *testing.T, h notify.History) {
	for i := range 8 {
		record(t, h, ev("acct_1", fmt.Sprintf("e%d", i), "file_uploaded", ""), 5, epoch)
	}
	got, w := since(t, h, "acct_1", 0, 100, 5, epoch)
	if fmt.Sprint(seqs(got)) != "[4 5 6 7 8]" || w != (store.Window{Head: 8, Oldest: 4}) {
		t.Fatalf("keep 5 of 8: %v, %+v", seqs(got), w)
	}
}

func testRetentionByTime(t *testing.T, h notify.History) {
	for i := range 4 {
		e := ev("acct_1", fmt.Sprintf("e%d", i), "file_uploaded", "")
		e.ExpiresAt = epoch.Add(time.Duration(i+1) * time.Hour)
		record(t, h, e, keep, epoch)
	}
	// Two hours and a half later, the first two have expired.
	later := epoch.Add(150 * time.Minute)
	got, w := since(t, h, "acct_1", 0, 100, keep, later)
	if fmt.Sprint(seqs(got)) != "[3 4]" || w != (store.Window{Head: 4, Oldest: 3}) {
		t.Fatalf("after two expiries: %v, %+v", seqs(got), w)
	}
	// The numbering goes on from the head, expired or not.
	if e, _ := record(t, h, ev("acct_1", "e9", "file_uploaded", ""), keep, later); e.Seq != 5 {
		t.Fatalf("next seq %d, want 5", e.Seq)
	}
}

func testCurrentJobs(t *testing.T, h notify.History) {
	for i, x := range []struct{ typ, job string }{
		{"job_progress", "j1"}, {"job_progress", "j2"}, {"file_uploaded", ""}, {"job_complete", "j1"},
		{"job_progress", "j3"}, {"job_progress", "j2"}, {"error", "j4"}, {"job_progress", "j5"}, {"error", "j5"},
	} {
		record(t, h, ev("acct_1", fmt.Sprintf("e%d", i+1), x.typ, x.job), keep, epoch)
	}
	got, head, err := h.CurrentJobs(ctxT(t), "acct_1", keep, epoch)
	if err != nil {
		t.Fatal(err)
	}
	// j1 completed, j4 and j5 ended on an error; j3 (seq 5) and j2 (seq 6) run.
	if fmt.Sprint(seqs(got)) != "[5 6]" || got[0].JobID != "j3" || got[1].JobID != "j2" || head != 9 {
		t.Fatalf("current jobs %v (head %d), want j3 at 5 and j2 at 6 as of head 9", seqs(got), head)
	}
	if got, _, _ := h.CurrentJobs(ctxT(t), "acct_other", keep, epoch); len(got) != 0 {
		t.Fatalf("another owner's jobs: %v", seqs(got))
	}
}

func testConcurrentPublishers(t *testing.T, h notify.History) {
	const publishers, each = 6, 20
	var mu sync.Mutex
	seqOf := map[string]int64{}
	var wg sync.WaitGroup
	errs := make(chan error, publishers*each*2)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("p%d-%d", p, i)
				// Events of no job and the last events of jobs: each
				// kept, each id held by another kind of item.
				e := ev("acct_1", id, "file_uploaded", "")
				if i%2 == 1 {
					e = ev("acct_1", id, "job_complete", id)
				}
				// Each record is delivered twice at once, as SQS may.
				var inner sync.WaitGroup
				for range 2 {
					inner.Add(1)
					go func() {
						defer inner.Done()
						e, _, err := h.RecordEvent(ctxT(t), e, keep, epoch)
						if err != nil {
							errs <- err
							return
						}
						mu.Lock()
						defer mu.Unlock()
						if prev, ok := seqOf[id]; ok && prev != e.Seq {
							errs <- fmt.Errorf("id %s got seq %d and %d", id, prev, e.Seq)
						}
						seqOf[id] = e.Seq
					}()
				}
				inner.Wait()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, w := since(t, h, "acct_1", 0, publishers*each+10, keep, epoch)
	all := seqs(got)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all) != publishers*each || w.Head != publishers*each {
		t.Fatalf("%d events held, head %d; want %d, no gap and no duplicate", len(all), w.Head, publishers*each)
	}
	for i, s := range all {
		if s != int64(i+1) {
			t.Fatalf("seq %d at position %d: a gap or a duplicate", s, i)
		}
	}
}
