package server_test

import (
	"strings"
	"testing"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
)

// TestABatchOfOneJobsProgressPostsOnlyItsLatest runs an SQS batch through the
// running server's Invoke API: ten job_progress of one job and its
// job_complete, for an owner with two connections. Each connection gets the
// last progress and the job_complete, numbered 1 and 2, and nothing else:
// 9 progress × 2 connections = 18 posts saved.
func TestABatchOfOneJobsProgressPostsOnlyItsLatest(t *testing.T) {
	t.Parallel()
	h := start(t, twoOwners())
	tabs := []string{"tab-1", "tab-2"}
	conns := make(map[string]*asyncapi.Conn)
	for _, tab := range tabs {
		conns[tab] = h.connect(t, tab, keyA)
	}
	var bodies []string
	for i := 1; i <= 10; i++ {
		bodies = append(bodies, envelope(ownerA, "", progressEvent("job-1", i)))
	}
	bodies = append(bodies, envelope(ownerA, "", `{"type":"job_complete","jobId":"job-1","status":"completed","organized":10,"failed":0}`))
	// SQS delivers at most ten records at once: the eleventh, the job's
	// completion, comes in a batch of its own.
	for _, batch := range [][]string{bodies[:10], bodies[10:]} {
		if failed := h.publishJobs(t, batch...); len(failed) > 0 {
			t.Fatalf("batchItemFailures %v: a superseded progress is acknowledged", failed)
		}
	}
	for _, tab := range tabs {
		c := conns[tab]
		if m := readMsg(t, c); m.Type != "job_progress" || m.Seq != 1 || !strings.Contains(m.raw, `"processedCount":10,`) {
			t.Fatalf("%s got %s, want the tenth progress as event 1", tab, m.raw)
		}
		if m := readMsg(t, c); m.Type != "job_complete" || m.Seq != 2 {
			t.Fatalf("%s got %s, want the job_complete as event 2", tab, m.raw)
		}
		// A pong next proves nothing else was queued before it.
		appPing(t, c)
	}
}
