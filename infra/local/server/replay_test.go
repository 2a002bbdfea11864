package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/push/hub"
)

// replayWait bounds the wait for a whole replay.
const replayWait = 2 * time.Minute

// publishMany publishes n owner-wide job_complete events of owner, each of
// a job of its own, in batches of 100.
func publishMany(t *testing.T, h *harness, owner string, n int, event func(i int) string) {
	t.Helper()
	var batch []string
	for i := 1; i <= n; i++ {
		batch = append(batch, envelope(owner, "", event(i)))
		if len(batch) == 100 || i == n {
			if failed := h.publishJobs(t, batch...); len(failed) > 0 {
				t.Fatalf("records failed: %v", failed)
			}
			batch = batch[:0]
		}
	}
}

func completeEvent(i int) string {
	return fmt.Sprintf(`{"type":"job_complete","jobId":"job-%06d","status":"completed","organized":%d,"failed":0}`, i, i)
}

// replayStats is what a client read of one replay: raw messages, replay
// messages and their largest size, and the events' seqs in order.
type replayStats struct {
	messages, frames, largest int
	seqs                      []int64
	live                      []int64 // events outside replay messages
	resumed                   msg
}

// readReplay reads up to and including resumed, checking every message
// against the protocol (asyncapi.Conn does) and counting replay messages.
func readReplay(ctx context.Context, c *asyncapi.Conn) (replayStats, error) {
	return readReplayOf(ctx, c.Read)
}

// readReplayOf is readReplay through read: a connection's Read, which holds
// every message to the protocol's schemas, or its ReadUnchecked.
func readReplayOf(ctx context.Context, read func(context.Context) (websocket.MessageType, []byte, error)) (replayStats, error) {
	var st replayStats
	for {
		_, data, err := read(ctx)
		if err != nil {
			return st, fmt.Errorf("after %d messages, %d events: %w", st.messages, len(st.seqs), err)
		}
		st.messages++
		var m msg
		if err := jsonUnmarshal(data, &m); err != nil {
			return st, err
		}
		switch m.Type {
		case "replay":
			st.frames++
			st.largest = max(st.largest, len(data))
			for _, raw := range m.Events {
				var e msg
				if err := jsonUnmarshal(raw, &e); err != nil {
					return st, err
				}
				st.seqs = append(st.seqs, e.Seq)
			}
		case "resumed":
			m.raw = string(data)
			st.resumed = m
			return st, nil
		default:
			if m.Seq == 0 {
				return st, fmt.Errorf("unexpected message during the replay: %s", data)
			}
			st.live = append(st.live, m.Seq)
		}
	}
}

// TestAResumeOfTheWholeHistoryIsPacedByTheConnection resumes the whole
// default history (10,000 events) on several connections at once, each with
// an outgoing queue of 4 messages: had the replay gone into the queue, as
// it once did, every one would close 1013 at the fifth event.
func TestAResumeOfTheWholeHistoryIsPacedByTheConnection(t *testing.T) {
	t.Parallel()
	cfg := twoOwners()
	cfg.Connections = hub.Config{QueueMessages: 4}
	h := start(t, cfg)
	const total, clients = notify.DefaultHistoryMaxEvents, 4
	publishMany(t, h, ownerA, total, completeEvent)

	var g errgroup.Group
	results := make([]replayStats, clients)
	for i := range clients {
		c := h.connect(t, fmt.Sprintf("resumer-%d", i), keyA)
		g.Go(func() error {
			// Generous: under the race detector, checking each 128 KB
			// message against the protocol's schemas is slow.
			ctx, cancel := context.WithTimeout(context.Background(), replayWait)
			defer cancel()
			if err := c.Write(ctx, websocket.MessageText, []byte(`{"action":"resume","since":0}`)); err != nil {
				return err
			}
			// One connection holds the messages to the schemas; the
			// others get the same ones, and checking them three times
			// more took a third of the package's CPU time.
			read := c.ReadUnchecked
			if i == 0 {
				read = c.Read
			}
			st, err := readReplayOf(ctx, read)
			results[i] = st
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for i, st := range results {
		if st.resumed.Seq != total || st.resumed.Replayed != total || len(st.seqs) != total {
			t.Fatalf("client %d: %d events, then %s; want all %d", i, len(st.seqs), st.resumed.raw, total)
		}
		for k, seq := range st.seqs {
			if seq != int64(k+1) {
				t.Fatalf("client %d: event %d has seq %d", i, k, seq)
			}
		}
		if st.largest > notify.MaxMessageBytes {
			t.Errorf("client %d: a replay message of %d bytes, over the %d limit", i, st.largest, notify.MaxMessageBytes)
		}
		// Some 140 bytes an event: a frame holds about 900 of them.
		if st.frames > 20 {
			t.Errorf("client %d: %d replay messages for %d events; want them packed (at most 20)", i, st.frames, total)
		}
	}
	if n := h.srv.Hub().Stats().SlowConsumerCloses; n != 0 {
		t.Fatalf("%d connections closed as slow consumers", n)
	}
	t.Logf("%d events in %d replay messages of up to %d bytes", total, results[0].frames, results[0].largest)

	t.Run("live events published during a replay come after resumed", func(t *testing.T) {
		c := h.connect(t, "late", keyA)
		// From 3: the three new events push the first three out of the
		// history, which keeps 10,000.
		send(t, c, `{"action":"resume","since":3}`)
		publishMany(t, h, ownerA, 3, func(i int) string { return completeEvent(total + i) })
		ctx, cancel := context.WithTimeout(context.Background(), replayWait)
		defer cancel()
		st, err := readReplay(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		// Those published before the resume took its head came live,
		// before the replay, which then stops short of them; the others
		// come after resumed. Each arrives once.
		head := st.resumed.Seq
		got := append(slices.Clone(st.seqs), st.live...)
		for next := head + 1; next <= total+3; next++ {
			m := readMsg(t, c)
			if m.Seq != next || m.replayed {
				t.Fatalf("got %s, want the live event %d", m.raw, next)
			}
			got = append(got, m.Seq)
		}
		slices.Sort(got)
		for k, seq := range got {
			if seq != int64(k+4) || len(got) != total {
				t.Fatalf("got events %v…%v (%d), want 4 to %d once each", got[:3], got[len(got)-3:], len(got), total+3)
			}
		}
		if len(st.live) > 0 && st.seqs[len(st.seqs)-1] >= st.live[0] {
			t.Fatalf("live %v, then a replay up to %d", st.live, st.seqs[len(st.seqs)-1])
		}
	})
}

// TestAResumeWithoutSinceSendsAtMostTheMostRecentJobs: an owner with more
// running jobs than notify.MaxCurrentJobs gets the most recently active
// ones and "more": true.
func TestAResumeWithoutSinceSendsAtMostTheMostRecentJobs(t *testing.T) {
	t.Parallel()
	h := start(t, twoOwners())
	const running = notify.MaxCurrentJobs + 500
	publishMany(t, h, ownerA, running, func(i int) string { return progressEvent(fmt.Sprintf("job-%06d", i), i) })
	c := h.connect(t, "fresh", keyA)
	send(t, c, `{"action":"resume"}`)
	ctx, cancel := context.WithTimeout(context.Background(), replayWait)
	defer cancel()
	st, err := readReplay(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.seqs) != notify.MaxCurrentJobs || st.seqs[0] != running-notify.MaxCurrentJobs+1 || st.seqs[len(st.seqs)-1] != running {
		t.Fatalf("got %d jobs, seqs %d to %d; want the latest %d", len(st.seqs), st.seqs[0], st.seqs[len(st.seqs)-1], notify.MaxCurrentJobs)
	}
	if !st.resumed.More || st.resumed.Seq != running {
		t.Fatalf("got %s, want more: true at seq %d", st.resumed.raw, running)
	}

	t.Run("with fewer running jobs, resumed has no more", func(t *testing.T) {
		h := start(t, twoOwners())
		publishMany(t, h, ownerA, 3, func(i int) string { return progressEvent(fmt.Sprintf("job-%d", i), i) })
		c := h.connect(t, "fresh", keyA)
		send(t, c, `{"action":"resume"}`)
		st, err := readReplay(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.seqs) != 3 || st.resumed.More || st.resumed.Replayed != 3 {
			t.Fatalf("got %d jobs, then %s", len(st.seqs), st.resumed.raw)
		}
	})
}

func jsonUnmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("message %.200s: %w", data, err)
	}
	return nil
}
