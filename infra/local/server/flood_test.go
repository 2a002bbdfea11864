package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/shared/handler"
	"github.com/wsnotify/wsnotify/shared/push/hub"
)

// TestAPingFloodOwesOnePongAndNeverClosesAReader: a client pipelines 5,000
// pings while reading as fast as it can, on a connection whose queue holds
// 4 messages. The pongs it still owes are coalesced into one queued answer,
// so it is never closed 1013; its last ping is answered.
func TestAPingFloodOwesOnePongAndNeverClosesAReader(t *testing.T) {
	cfg := twoOwners()
	cfg.Connections = hub.Config{QueueMessages: 4}
	h := start(t, cfg)
	c := h.connect(t, "flooder", keyA)
	const pings = 5000
	ctx, cancel := context.WithTimeout(context.Background(), 3*wait)
	defer cancel()
	sent := make(chan error, 1)
	go func() {
		for range pings {
			if err := c.Write(ctx, websocket.MessageText, []byte(`{"action":"ping"}`)); err != nil {
				sent <- err
				return
			}
		}
		// A marker with an answer of its own: every pong owed comes before it.
		sent <- c.Write(ctx, websocket.MessageText, []byte(`{"action":"marker"}`))
	}()
	pongs := 0
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("after %d pongs: %v", pongs, err)
		}
		m := decode(t, string(data))
		if m["type"] == "pong" {
			pongs++
			continue
		}
		if m["type"] != "error" || m["code"] != "BAD_REQUEST" {
			t.Fatalf("got %s during the flood", data)
		}
		break
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if pongs < 1 || pongs > pings {
		t.Fatalf("%d pongs for %d pings", pongs, pings)
	}
	if n := h.srv.Hub().Stats().SlowConsumerCloses; n != 0 {
		t.Fatalf("%d slow-consumer closes", n)
	}
	appPing(t, c)
	t.Logf("%d pings answered with %d pongs", pings, pongs)
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// linesWith returns the log lines containing every one of s, and their bytes.
func (b *syncBuffer) linesWith(s ...string) (lines, size int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range strings.Split(b.buf.String(), "\n") {
		if l != "" && !slices.ContainsFunc(s, func(s string) bool { return !strings.Contains(l, s) }) {
			lines++
			size += len(l) + 1
		}
	}
	return lines, size
}

// TestJunkCostsAFewLogLinesAndEndsInAClose: a connection that sends junk
// as fast as it can is logged a few times, then closed after
// handler.MaxBadMessages with an error saying why; one that sends a little
// junk stays open, and its lines are bounded by the minute's allowance.
func TestJunkCostsAFewLogLinesAndEndsInAClose(t *testing.T) {
	var logs syncBuffer
	cfg := twoOwners()
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	h := start(t, cfg)

	c := h.connect(t, "junk", keyA)
	id := h.connectionID(t, ownerA, "junk")
	ctx, cancel := context.WithTimeout(context.Background(), 3*wait)
	defer cancel()
	const sent = 3 * handler.MaxBadMessages
	go func() {
		for range sent {
			if c.Write(ctx, websocket.MessageText, []byte("x")) != nil {
				return // closed
			}
		}
	}()
	var last map[string]any
	answers := 0
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			if ce := closeOf(t, err); ce.Code != websocket.StatusNormalClosure {
				t.Fatalf("closed with %v, want 1000 (DeleteConnection)", ce)
			}
			break
		}
		answers++
		last = decode(t, string(data))
	}
	if last["code"] != handler.CodeTooManyBadMessages {
		t.Fatalf("the last message before the close was %v, want %s", last, handler.CodeTooManyBadMessages)
	}
	if answers > handler.MaxBadMessages {
		t.Fatalf("%d answers: more than the %d bad messages allowed were served", answers, handler.MaxBadMessages)
	}
	lines, size := logs.linesWith(id)
	badLines, _ := logs.linesWith(`msg="bad client message"`, id)
	// The allowance, the line of the hundredth with its count, the close,
	// and the connection's own lines (open, connected, closed, …).
	if badLines != handler.BadMessageLogsPerMinute+1 || size > 4096 {
		t.Fatalf("%d bad-message lines, %d lines and %d bytes about the connection in all; want %d and a few KB",
			badLines, lines, size, handler.BadMessageLogsPerMinute+1)
	}
	t.Logf("%d junk messages sent: %d answers, then closed; %d log lines, %d bytes about the connection", sent, answers, lines, size)

	t.Run("a little junk is answered and logged within the allowance, and the connection stays", func(t *testing.T) {
		c := h.connect(t, "clumsy", keyA)
		id := h.connectionID(t, ownerA, "clumsy")
		for range 10 {
			send(t, c, `{"action":"dance"}`)
			if m := read(t, c); m["code"] != "BAD_REQUEST" {
				t.Fatalf("got %v", m)
			}
		}
		appPing(t, c)
		if n, _ := logs.linesWith(`msg="bad client message"`, id); n != handler.BadMessageLogsPerMinute {
			t.Fatalf("%d bad-message lines for 10 bad messages in a minute, want %d", n, handler.BadMessageLogsPerMinute)
		}
	})
}
