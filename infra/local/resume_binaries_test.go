package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/wsnotify/wsnotify/infra/iamcheck"
)

// resumeSuite runs "never miss an event" on the
// cloud's code path: the jobevents binary numbers and keeps events in the
// DynamoDB history while several publishers run, and the default binary
// replays them to a client that resumes, posting through the Management API
// from another process, as in the cloud. There the replay and the live
// stream are not ordered with each other: the guarantee is that nothing is
// lost and every event keeps one id and one seq, so a client that orders by
// seq and drops repeated ids sees each event once, in order.
func resumeSuite(t *testing.T, env *iamcheck.Env) {
	const key, owner = "wsn_resume_binaries_key", "acct_resume"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	addr, _, _ := startBinaries(ctx, t, env, key, owner)

	var batch atomic.Int64
	// publish sends one SQS batch of bodies and fails if any record failed.
	publish := func(bodies ...string) error {
		n := batch.Add(1)
		var ev events.SQSEvent
		for i, b := range bodies {
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprintf("b%d-%d", n, i), Body: b})
		}
		payload, _ := json.Marshal(ev)
		var resp events.SQSEventResponse
		if err := tryInvoke(addr, "JobEventsFunction", payload, &resp); err != nil {
			return err
		}
		if len(resp.BatchItemFailures) != 0 {
			return fmt.Errorf("%d of the batch failed", len(resp.BatchItemFailures))
		}
		return nil
	}
	progress := func(job string, n int) string {
		return fmt.Sprintf(`{"ownerId":%q,"event":{"type":"job_progress","jobId":%q,"progress":1,"processedCount":%d,"totalCount":1000}}`, owner, job, n)
	}

	// Each event is a job of its own: a replay sends a job's latest
	// progress only, and here every event is to come back.
	const early, publishers, each = 10, 3, 10
	const total = early + publishers*each
	for i := range early {
		if err := publish(progress(fmt.Sprint("early-", i), i)); err != nil {
			t.Fatal(err)
		}
	}
	c := dialLocal(t, addr, "resumer", key)

	// A publisher that fails ends the wait for the events at once.
	publishing, pctx := errgroup.WithContext(ctx)
	for p := range publishers {
		publishing.Go(func() error {
			for i := range each {
				if err := publish(progress(fmt.Sprintf("p%d-%d", p, i), i)); err != nil {
					return fmt.Errorf("publisher %d: %w", p, err)
				}
			}
			return nil
		})
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"action":"resume","since":0}`)); err != nil {
		t.Fatal(err)
	}

	seqOf := map[string]int64{} // id -> seq
	idOf := map[int64]string{}
	received, resumedAt := 0, int64(-1)
	for len(idOf) < total || resumedAt < 0 {
		rctx, rcancel := context.WithTimeout(pctx, processWait)
		_, data, err := c.Read(rctx)
		rcancel()
		if err != nil {
			if pctx.Err() != nil && ctx.Err() == nil {
				t.Fatal(publishing.Wait())
			}
			t.Fatalf("after %d messages (%d distinct events, resumed at %d): %v", received, len(idOf), resumedAt, err)
		}
		var m struct {
			Type   string            `json:"type"`
			ID     string            `json:"id"`
			Seq    int64             `json:"seq"`
			Events []json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if m.Type == "resumed" {
			resumedAt = m.Seq
			continue
		}
		events := []json.RawMessage{data}
		if m.Type == "replay" {
			events = m.Events
		}
		for _, raw := range events {
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			received++
			if m.ID == "" || m.Seq < 1 || m.Seq > total {
				t.Fatalf("event without its place in the stream: %s", raw)
			}
			if s, ok := seqOf[m.ID]; ok && s != m.Seq {
				t.Fatalf("id %s came with seq %d and %d", m.ID, s, m.Seq)
			}
			if id, ok := idOf[m.Seq]; ok && id != m.ID {
				t.Fatalf("seq %d came as %s and %s", m.Seq, id, m.ID)
			}
			seqOf[m.ID], idOf[m.Seq] = m.Seq, m.ID
		}
	}
	if err := publishing.Wait(); err != nil {
		t.Fatal(err)
	}
	seqs := make([]int64, 0, len(idOf))
	for s := range idOf {
		seqs = append(seqs, s)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("seq %d missing: got %v", i+1, seqs)
		}
	}
	if resumedAt < early {
		t.Fatalf("resumed at %d, before the %d events published before the connect", resumedAt, early)
	}
	t.Logf("%d events, %d messages received (%d repeated, dropped by id), resumed at seq %d", total, received, received-total, resumedAt)
}
