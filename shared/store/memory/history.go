package memory

import (
	"context"
	"sort"
	"time"

	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/store"
)

// ownerHistory is one owner's history: its events in seq order, bounded by
// the keep count given with each call (oldest dropped first), the seq of
// each held event by id, for redeliveries, and the latest event of each job.
// A job_progress stays in the sequence once superseded, for its id, but is
// no longer replayed.
type ownerHistory struct {
	head int64
	// events[off:] are the held events, in ascending seq, consecutive.
	// Dropping from the front only advances off; the slice is compacted
	// when more than half of it is dropped, so a full history costs no copy
	// per event.
	events []store.Event
	off    int
	byID   map[string]int64
	jobs   map[string]int64 // job id -> seq of its latest event
}

// held returns the held events.
func (h *ownerHistory) held() []store.Event { return h.events[h.off:] }

func (s *Store) ownerHistory(owner string) *ownerHistory {
	h := s.history[owner]
	if h == nil {
		h = &ownerHistory{byID: map[string]int64{}, jobs: map[string]int64{}}
		s.history[owner] = h
	}
	return h
}

// get returns the held event seq, if it is held (not dropped, not expired).
func (h *ownerHistory) get(seq int64, now time.Time) (store.Event, bool) {
	held := h.held()
	if len(held) == 0 || seq < held[0].Seq || seq > h.head {
		return store.Event{}, false
	}
	e := held[seq-held[0].Seq]
	return e, now.Before(e.ExpiresAt)
}

// superseded reports whether e is a job_progress that a later event of its
// job has replaced: the job's state is that later event, and a replay skips e
// (as the DynamoDB store, which keeps a job_progress only as its job's state).
func (h *ownerHistory) superseded(e store.Event) bool {
	return e.Type == string(event.TypeJobProgress) && e.JobID != "" && h.jobs[e.JobID] != e.Seq
}

// trim drops what keep and the clock no longer allow, with its ids and jobs.
func (h *ownerHistory) trim(keep int, now time.Time) {
	for h.off < len(h.events) && (len(h.events)-h.off > keep || !now.Before(h.events[h.off].ExpiresAt)) {
		e := h.events[h.off]
		delete(h.byID, e.ID)
		if h.jobs[e.JobID] == e.Seq {
			delete(h.jobs, e.JobID)
		}
		h.events[h.off] = store.Event{} // let its body go
		h.off++
	}
	if h.off > 0 && h.off >= len(h.events)/2 {
		h.events = append([]store.Event(nil), h.held()...)
		h.off = 0
	}
}

func (h *ownerHistory) window() store.Window {
	held := h.held()
	if len(held) == 0 {
		return store.Window{Head: h.head, Oldest: h.head + 1}
	}
	return store.Window{Head: h.head, Oldest: held[0].Seq}
}

// RecordEvent implements notify.History.
func (s *Store) RecordEvent(_ context.Context, e store.Event, keep int, now time.Time) (store.Event, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.ownerHistory(e.OwnerID)
	h.trim(keep, now)
	if seq, ok := h.byID[e.ID]; ok {
		held, _ := h.get(seq, now)
		return held, true, nil
	}
	h.head++
	e.Seq = h.head
	e.Body = append([]byte(nil), e.Body...)
	h.events = append(h.events, e)
	h.byID[e.ID] = e.Seq
	if e.JobID != "" {
		h.jobs[e.JobID] = e.Seq
	}
	h.trim(keep, now)
	return e, false, nil
}

// EventsSince implements notify.History.
func (s *Store) EventsSince(_ context.Context, owner string, since int64, limit, keep int, now time.Time) ([]store.Event, store.Window, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.ownerHistory(owner)
	h.trim(keep, now)
	var out []store.Event
	for seq := max(since+1, h.window().Oldest); seq <= h.head && len(out) < limit; seq++ {
		if e, ok := h.get(seq, now); ok && !h.superseded(e) {
			out = append(out, e)
		}
	}
	return out, h.window(), nil
}

// CurrentJobs implements notify.History.
func (s *Store) CurrentJobs(_ context.Context, owner string, keep int, now time.Time) ([]store.Event, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.ownerHistory(owner)
	h.trim(keep, now)
	var out []store.Event
	for _, seq := range h.jobs {
		if e, ok := h.get(seq, now); ok && e.Type == string(event.TypeJobProgress) {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, h.head, nil
}
