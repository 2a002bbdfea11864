package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// client is a WebSocket client following the resume rule of the client
// module (clients/js): it numbers nothing itself, holds back an event that
// comes before the ones preceding it, drops one it has delivered, asks for
// the missing ones with resume once it sees a gap, and delivers each event
// once, in seq order. It also counts what arrived before that dedupe.
type client struct {
	id   string
	conn *websocket.Conn

	mu        sync.Mutex
	seq       int64                // the highest seq delivered
	pending   map[int64]chaosEvent // arrived early, by seq
	delivered []chaosEvent         // in delivery order
	idAtSeq   map[int64]string     // every id seen per seq
	raw       int                  // events received, duplicates included
	resuming  bool                 // a resume awaits its resumed
	changed   chan struct{}        // closed and replaced on each message
	err       error                // the read loop's end
	bad       []string             // protocol violations seen
}

// chaosEvent is what the client keeps of an event.
type chaosEvent struct {
	ID    string `json:"id"`
	Seq   int64  `json:"seq"`
	Type  string `json:"type"`
	JobID string `json:"jobId"`
}

// dial connects clientID with token to local mode and starts reading.
func dial(ctx context.Context, addr, clientID, token string) (*client, error) {
	c, resp, err := websocket.Dial(ctx, fmt.Sprintf("ws://%s/api/v1/ws/%s?token=%s", addr, clientID, token), nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, fmt.Errorf("connect %s: status %d: %w", clientID, status, err)
	}
	c.SetReadLimit(1 << 20)
	cl := &client{id: clientID, conn: c, pending: map[int64]chaosEvent{}, idAtSeq: map[int64]string{}, changed: make(chan struct{})}
	go cl.read()
	return cl, nil
}

func (c *client) read() {
	for {
		_, data, err := c.conn.Read(context.Background())
		c.mu.Lock()
		if err != nil {
			c.err = err
			c.signal()
			c.mu.Unlock()
			return
		}
		c.handle(data)
		c.signal()
		c.mu.Unlock()
	}
}

// signal wakes the waiters; c.mu is held.
func (c *client) signal() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// handle takes one message; c.mu is held.
func (c *client) handle(data []byte) {
	var ev chaosEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		c.bad = append(c.bad, fmt.Sprintf("not JSON: %s", data))
		return
	}
	var job struct {
		Event struct {
			JobID string `json:"jobId"`
		} `json:"event"`
	}
	if ev.JobID == "" && json.Unmarshal(data, &job) == nil {
		ev.JobID = job.Event.JobID
	}
	switch {
	case ev.Type == "resumed":
		c.resuming = false
		return
	case ev.Type == "error":
		c.bad = append(c.bad, string(data))
		return
	case ev.ID == "" || ev.Seq < 1:
		return // a reply to this client alone
	}
	c.raw++
	if id, ok := c.idAtSeq[ev.Seq]; ok && id != ev.ID {
		c.bad = append(c.bad, fmt.Sprintf("seq %d came as %s and as %s", ev.Seq, id, ev.ID))
	}
	c.idAtSeq[ev.Seq] = ev.ID
	if ev.Seq <= c.seq {
		return // delivered already
	}
	c.pending[ev.Seq] = ev
	for {
		next, ok := c.pending[c.seq+1]
		if !ok {
			break
		}
		delete(c.pending, c.seq+1)
		c.seq++
		c.delivered = append(c.delivered, next)
	}
	if len(c.pending) > 0 && !c.resuming {
		c.sendResume()
	}
}

// sendResume asks for what follows the last delivered event; c.mu is held.
func (c *client) sendResume() {
	c.resuming = true
	msg := fmt.Sprintf(`{"action":"resume","since":%d}`, c.seq)
	go func() { // never write while holding the lock the reader needs
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.conn.Write(ctx, websocket.MessageText, []byte(msg))
	}()
}

// catchUp resumes until n events are delivered, by deadline: after the
// faults are healed, a resume answers from the history in full.
func (c *client) catchUp(ctx context.Context, n int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.seq < n {
		if c.err != nil {
			return fmt.Errorf("%s: connection ended after %d of %d events: %w", c.id, c.seq, n, c.err)
		}
		if !c.resuming {
			c.sendResume()
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			c.mu.Lock()
			return fmt.Errorf("%s: %d of %d events delivered (%d held back) by the deadline", c.id, c.seq, n, len(c.pending))
		}
		c.mu.Lock()
	}
	return nil
}

func (c *client) close() { _ = c.conn.Close(websocket.StatusNormalClosure, "") }
