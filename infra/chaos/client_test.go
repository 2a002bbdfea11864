package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/store"
)

// client is a WebSocket client following the resume rule of the client
// module (clients/js): it numbers nothing itself, holds back an event that
// comes before the ones preceding it, drops one it has delivered, asks for
// the missing ones with resume once it sees a gap, and delivers each event
// once, in seq order. It also counts what arrived before that dedupe.
type client struct {
	id, addr, token string
	owner           string

	mu         sync.Mutex
	conn       *websocket.Conn
	closing    bool // close was called: a read error is the end
	reconnects int

	seq       int64                // the highest seq delivered
	pending   map[int64]chaosEvent // arrived early, by seq
	delivered []chaosEvent         // in delivery order
	idAtSeq   map[int64]string     // every id seen per seq
	gaps      int                  // seqs skipped: no event has them
	// unregistered counts NOT_REGISTERED answers: the connection's record
	// was removed (a push answered 410); the server closes it after.
	unregistered  int
	racedResumes  int           // resumes refused as sent before the last replay ended
	failedResumes int           // resumes answered with an internal error
	raw           int           // events received, duplicates included
	final         bool          // set by catchUp: publishing is over
	resuming      bool          // a resume awaits its resumed
	changed       chan struct{} // closed and replaced on each message
	err           error         // the read loop's end
	bad           []string      // protocol violations seen
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
	cl := &client{id: clientID, addr: addr, token: token, conn: c, pending: map[int64]chaosEvent{}, idAtSeq: map[int64]string{}, changed: make(chan struct{})}
	go cl.read()
	return cl, nil
}

func (c *client) read() {
	for {
		c.mu.Lock()
		conn := c.conn
		c.mu.Unlock()
		_, data, err := conn.Read(context.Background())
		c.mu.Lock()
		if err != nil && !c.closing {
			c.mu.Unlock()
			err = c.reconnect()
			c.mu.Lock()
			if err == nil {
				c.mu.Unlock()
				continue
			}
		}
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

// reconnectWithin bounds a client's attempts to connect again after its
// connection ended (local mode restarted).
const reconnectWithin = 30 * time.Second

// reconnect connects again, as the client module does after a connection
// it did not close ends, and resumes from the last event it delivered.
func (c *client) reconnect() error {
	ctx, cancel := context.WithTimeout(context.Background(), reconnectWithin)
	defer cancel()
	retry := time.NewTicker(50 * time.Millisecond) // the module backs off; here briefly
	defer retry.Stop()
	for {
		conn, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://%s/api/v1/ws/%s?token=%s", c.addr, c.id, c.token), nil)
		if err == nil {
			conn.SetReadLimit(1 << 20)
			c.mu.Lock()
			defer c.mu.Unlock()
			c.conn = conn
			c.reconnects++
			c.sendResume()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reconnect %s: %w", c.id, err)
		case <-retry.C:
		}
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
	case ev.Type == "replay":
		// Replayed events, packed: each as if it came alone.
		var frame struct {
			Events []json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal(data, &frame); err != nil {
			c.bad = append(c.bad, fmt.Sprintf("a replay message that is not one: %.200s", data))
		}
		for _, e := range frame.Events {
			c.handle(e)
		}
		return
	case ev.Type == "resumed":
		c.resuming = false
		if c.final {
			// Nothing is being published any more: the replay before it
			// held every event up to its head, and a seq still missing is
			// a gap no event will ever have (a publisher that died between
			// numbering and writing it), skipped. While publishers run, the
			// head can count an event numbered but not written yet, which
			// arrives later: the client module skips nothing on a resume
			// from a seq, and neither does this one.
			for s := c.seq + 1; s <= ev.Seq; s++ {
				if next, ok := c.pending[s]; ok {
					delete(c.pending, s)
					c.delivered = append(c.delivered, next)
				} else {
					c.gaps++
				}
				c.seq = s
			}
			c.release()
		}
		return
	case ev.Type == "error" && strings.Contains(string(data), `"code":"`+string(notify.CodeUnregistered)+`"`):
		c.unregistered++ // the close follows: reconnect and resume
		return
	case ev.Type == "error" && strings.Contains(string(data), "a replay is already under way"):
		// This client resumes the moment a resumed leaves a gap, which can
		// be before local mode has ended the replay that sent it: ask again.
		c.racedResumes++
		c.resuming = false
		return
	case ev.Type == "error" && strings.Contains(string(data), `"code":"INTERNAL"`) && c.resuming,
		ev.Type == "" && strings.Contains(string(data), `"message":"Internal server error"`):
		// The resume failed (the store is faulted; or the function behind
		// it timed out, which API Gateway answers so): ask again.
		c.failedResumes++
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
	c.release()
	if len(c.pending) > 0 && !c.resuming {
		c.sendResume()
	}
}

// release delivers the events that follow the last delivered one; c.mu is
// held.
func (c *client) release() {
	for {
		next, ok := c.pending[c.seq+1]
		if !ok {
			return
		}
		delete(c.pending, c.seq+1)
		c.seq++
		c.delivered = append(c.delivered, next)
	}
}

// sendResume asks for what follows the last delivered event; c.mu is held.
func (c *client) sendResume() {
	c.resuming = true
	msg, conn := fmt.Sprintf(`{"action":"resume","since":%d}`, c.seq), c.conn
	go func() { // never write while holding the lock the reader needs
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if conn.Write(ctx, websocket.MessageText, []byte(msg)) != nil {
			c.mu.Lock()
			c.resuming = false // a reconnect resumes again
			c.mu.Unlock()
		}
	}()
}

// catchUp resumes until n events are delivered, by deadline: after the
// faults are healed, a resume answers from the history in full.
func (c *client) catchUp(ctx context.Context, n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.final = true
	for len(c.delivered) < n {
		if c.err != nil {
			return fmt.Errorf("%s: connection ended after %d of %d events: %w", c.id, len(c.delivered), n, c.err)
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
			return fmt.Errorf("%s: %d of %d events delivered (up to seq %d, %d held back) by the deadline; %d reconnects, %d NOT_REGISTERED, a resume awaiting its answer: %t, saw %v",
				c.id, len(c.delivered), n, c.seq, len(c.pending), c.reconnects, c.unregistered, c.resuming, c.bad)
		}
		c.mu.Lock()
	}
	return nil
}

// record returns c's connection record.
func (c *client) record(t *testing.T, r *rig) store.Connection {
	t.Helper()
	conns, err := r.store.ListConnections(context.Background(), c.owner, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, conn := range conns {
		if conn.ClientID == c.id {
			return conn
		}
	}
	t.Fatalf("no record of %s", c.id)
	return store.Connection{}
}

func (c *client) close() {
	c.mu.Lock()
	c.closing = true
	conn := c.conn
	c.mu.Unlock()
	_ = conn.Close(websocket.StatusNormalClosure, "")
}
