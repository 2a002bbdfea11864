package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
)

type state int

const (
	// connecting: the id is reserved and the handshake is being decided.
	// Like API Gateway during $connect, nothing can be posted yet.
	connecting state = iota
	// open: posts are queued and written.
	open
	// closing: it is being closed or is closed; posts answer ErrGone until
	// it is released.
	closing
)

// Conn is one connection of a Hub, from Reserve to Release.
type Conn struct {
	id          string
	peer        Peer
	connectedAt time.Time
	lastActive  atomic.Int64 // unix nanoseconds of the connect or the last client message
	firstSeq    atomic.Int64 // the first owner-wide event it got live (PostEvent), 0 before
	cfg         Config
	log         *slog.Logger
	counts      *counts // the Hub's

	writerDone chan struct{} // closed once the close frame is sent (finish)

	mu    sync.Mutex
	queue Queue
	state state
	// writing says a writer goroutine runs: it drains the queue and ends
	// when the queue is empty, or finishes the connection once it closes.
	// An idle connection has none (see kick).
	writing bool
	// writerIdle, if set (by tests), is called each time a writer ends
	// with nothing left to write.
	writerIdle func()
	code       websocket.StatusCode // why it closed
	reason     string
	drain      bool // write what is queued before the close frame
	ws         *websocket.Conn
	idle       *time.Timer
	maxAge     *time.Timer
	cutoff     *time.Timer // drops a slow consumer's socket after slowConsumerGrace
	// stream, while a replay runs, gives the writer its next message
	// once the streamAfter messages queued before it are written; what is
	// queued meanwhile waits for the stream to end (PostStream).
	stream      func(context.Context) ([]byte, error)
	streamAfter int
	// farewell is written before the close frame of a connection closed
	// as a slow consumer: the client learns why (an error event).
	farewell []byte
	// reply is the route response queued and not yet written, if any: an
	// identical one posted meanwhile is not queued again (PostReply).
	reply []byte
}

func newConn(id string, peer Peer, now time.Time, cfg Config, log *slog.Logger, counts *counts) *Conn {
	c := &Conn{
		id:          id,
		peer:        peer,
		connectedAt: now,
		cfg:         cfg,
		log:         log,
		counts:      counts,
		queue:       NewQueue(cfg.QueueMessages, cfg.QueueBytes),
		writerDone:  make(chan struct{}),
	}
	c.lastActive.Store(now.UnixNano())
	return c
}

// ID returns the connection id.
func (c *Conn) ID() string { return c.id }

// Peer returns what the connection's client told of itself.
func (c *Conn) Peer() Peer { return c.peer }

// ConnectedAt returns when the connection was reserved.
func (c *Conn) ConnectedAt() time.Time { return c.connectedAt }

// Open lets posts in, once the connection has been accepted. It is called
// just before the handshake completes, so a client that sees its connection
// open can always be posted to; what is posted before Serve starts waits in
// the queue. A connection closed meanwhile (Shutdown) stays closed.
func (c *Conn) Open() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == connecting {
		c.state = open
		c.counts.open.Add(1)
	}
}

// Abandon closes a connection whose handshake did not complete.
func (c *Conn) Abandon(reason string) {
	c.close(websocket.StatusAbnormalClosure, reason, false)
}

// Serve runs the open connection over ws until it closes, and returns the
// close code and reason: the client's, or the Hub's (idle, maximum age,
// slow consumer, deleted, shutdown, a message too big or not UTF-8). It arms
// the idle and age limits, writes what is posted, and calls onMessage for
// each client message, one at a time and in order, on the calling
// goroutine. When it returns, the writer has stopped and the close frame is
// sent.
func (c *Conn) Serve(ws *websocket.Conn, onMessage func(websocket.MessageType, []byte)) (websocket.StatusCode, string) {
	// API Gateway's message limit; a larger message closes with 1009.
	ws.SetReadLimit(notify.MaxMessageBytes)
	c.mu.Lock()
	c.ws = ws
	if c.cfg.IdleTimeout > 0 {
		c.idle = time.AfterFunc(c.cfg.IdleTimeout, func() { c.close(StatusGoingAway, ReasonIdle, true) })
	}
	if c.cfg.MaxAge > 0 {
		c.maxAge = time.AfterFunc(c.cfg.MaxAge, func() { c.close(StatusGoingAway, ReasonMaxAge, true) })
	}
	c.kick() // what was posted before, or a close that came first
	c.mu.Unlock()

	code, reason := c.readLoop(ws, onMessage)
	c.close(code, reason, false)
	<-c.writerDone
	return c.CloseStatus()
}

// readLoop reads client messages until the connection ends, and returns why.
func (c *Conn) readLoop(ws *websocket.Conn, onMessage func(websocket.MessageType, []byte)) (websocket.StatusCode, string) {
	for {
		// No deadline: the idle timer and the writer's close end this read.
		typ, data, err := ws.Read(context.Background())
		if err != nil {
			var ce websocket.CloseError
			switch {
			case errors.As(err, &ce):
				return ce.Code, ce.Reason
			case errors.Is(err, websocket.ErrMessageTooBig):
				return StatusTooBig, ReasonTooBig
			default:
				return websocket.StatusAbnormalClosure, ""
			}
		}
		if !c.isOpen() {
			// Closing (deleted, slow, …): like API Gateway, routes no more
			// of its messages while the close completes.
			continue
		}
		c.touch(time.Now())
		if typ == websocket.MessageText && !utf8.Valid(data) {
			// RFC 6455 §8.1: a text message that is not UTF-8 fails the
			// connection, with 1007.
			return StatusInvalidUTF8, ReasonInvalidUTF8
		}
		onMessage(typ, data)
	}
}

// touch records client activity. Like API Gateway's idle timeout, only data
// messages from the client count, not protocol pings.
func (c *Conn) touch(now time.Time) {
	c.lastActive.Store(now.UnixNano())
	c.mu.Lock()
	if c.idle != nil && c.state == open {
		c.idle.Reset(c.cfg.IdleTimeout)
	}
	c.mu.Unlock()
}

// CloseStatus returns the code and reason the connection closed with.
func (c *Conn) CloseStatus() (websocket.StatusCode, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.code, c.reason
}

func (c *Conn) isOpen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == open
}

// close starts closing the connection with code and reason, unless it is
// already closing; it reports whether this call started it. It never blocks:
// the writer sends the close frame. With drain, what is already queued is
// written first (within one write timeout), so that a message posted before
// a DELETE or a shutdown still arrives.
func (c *Conn) close(code websocket.StatusCode, reason string, drain bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeLocked(code, reason, drain)
}

func (c *Conn) closeLocked(code websocket.StatusCode, reason string, drain bool) bool {
	if c.state == closing {
		return false
	}
	c.leave()
	c.code, c.reason, c.drain = code, reason, drain
	c.kick()
	return true
}

// leave moves the connection to closing, counting it out of the open ones
// if it was open. The caller holds c.mu.
func (c *Conn) leave() {
	if c.state == open {
		c.counts.open.Add(-1)
	}
	c.state = closing
}

// kick starts a writer if there is work for one and none runs: messages
// queued or a close to finish, once Serve has the socket. The writer ends
// when the queue is empty, so an idle connection holds no goroutine and no
// stack for writing: at 10,000 mostly idle connections, a writer each,
// parked on a channel, was a quarter of local mode's memory. c.mu is held.
func (c *Conn) kick() {
	if c.writing || c.ws == nil || (c.queue.Len() == 0 && c.stream == nil && c.state != closing) {
		return
	}
	c.writing = true
	go c.writeQueued()
}

func (c *Conn) stopTimers() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leave()
	for _, t := range []*time.Timer{c.idle, c.maxAge, c.cutoff} {
		if t != nil {
			t.Stop()
		}
	}
}

// enqueue queues data for the writer. A full queue means the client does not
// read fast enough: it is closed rather than let it hold memory or slow the
// publisher, and the post fails as if the connection were gone.
//
// The close frame follows the write in flight, if any. When the client's
// socket has stopped taking data, that write never ends: after
// slowConsumerGrace the socket is dropped, so the connection ends and its
// client id is free again without waiting for the write timeout.
func (c *Conn) enqueue(data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.enqueueLocked(data)
}

func (c *Conn) enqueueLocked(data []byte) error {
	if c.state != open {
		return fmt.Errorf("post to %s: %w", c.id, notify.ErrGone)
	}
	if !c.queue.Push(data) {
		n, size := c.queue.Len(), c.queue.Size()
		c.farewell = slowConsumerError(n, size)
		c.closeLocked(StatusSlowConsumer, ReasonSlowConsumer, false)
		c.counts.slowConsumer.Add(1)
		c.cutoff = time.AfterFunc(slowConsumerGrace, c.abort)
		return fmt.Errorf("post to %s: outgoing queue full (%d messages, %d bytes), closing slow consumer: %w", c.id, n, size, notify.ErrGone)
	}
	c.kick()
	return nil
}

// enqueueReply queues a route response unless the same answer is queued
// already and not yet written: a client that sends a thousand pings before
// it reads owes one pong, not a thousand.
func (c *Conn) enqueueReply(data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reply != nil && bytes.Equal(c.reply, data) && c.state == open {
		return nil
	}
	if err := c.enqueueLocked(data); err != nil {
		return err
	}
	c.reply = data
	return nil
}

// next takes the oldest queued message, if any.
func (c *Conn) next() ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queue.Pop()
}

// writeQueued writes queued messages, each within the write timeout, until
// the queue is empty; then it ends, and the next post starts another. Once
// the connection closes, it sends the close frame instead (finish): a
// closing connection stops at once, even with messages queued.
func (c *Conn) writeQueued() {
	for {
		c.mu.Lock()
		if c.state == closing {
			c.mu.Unlock()
			c.finish()
			close(c.writerDone) // writing stays set: no writer starts again
			return
		}
		if c.stream != nil && c.streamAfter == 0 {
			next := c.stream
			c.mu.Unlock()
			data, err := c.pull(next)
			if err != nil || data == nil {
				c.mu.Lock()
				c.stream = nil
				c.mu.Unlock()
				if err != nil {
					c.log.Error("replay failed", "connectionId", c.id, "err", err)
					c.close(websocket.StatusInternalError, "replay failed", false)
				}
				continue
			}
			c.writeOrBreak(data)
			continue
		}
		data, ok := c.queue.Pop()
		if ok && c.streamAfter > 0 {
			c.streamAfter--
		}
		if ok && c.reply != nil && len(data) > 0 && &data[0] == &c.reply[0] {
			c.reply = nil // written from now on: the next answer is owed again
		}
		if !ok {
			c.writing = false
			idle := c.writerIdle
			c.mu.Unlock()
			if idle != nil {
				idle()
			}
			return
		}
		c.mu.Unlock()
		c.writeOrBreak(data)
	}
}

// writeOrBreak writes data; a failed write breaks the connection.
func (c *Conn) writeOrBreak(data []byte) {
	if err := c.write(data); err != nil {
		c.log.Info("write to connection failed", "connectionId", c.id, "err", err)
		c.close(websocket.StatusAbnormalClosure, "write failed", false)
		_ = c.ws.CloseNow() // whatever close came first: the WebSocket is broken
	}
}

// pull asks a stream for its next message, within one write timeout.
func (c *Conn) pull(next func(context.Context) ([]byte, error)) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.WriteTimeout)
	defer cancel()
	return next(ctx)
}

// setStream starts a stream (see Hub.PostStream).
func (c *Conn) setStream(next func(context.Context) ([]byte, error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.state != open:
		return fmt.Errorf("stream to %s: %w", c.id, notify.ErrGone)
	case c.stream != nil:
		return notify.Errorf(notify.CodeInvalid, "a replay is already under way on this connection: wait for its resumed message")
	}
	c.stream, c.streamAfter = next, c.queue.Len()
	c.kick()
	return nil
}

// slowConsumerError is the error event a slow consumer gets before its close.
func slowConsumerError(n, size int) []byte {
	msg, _ := json.Marshal(event.Error{Type: event.TypeError, Code: CodeSlowConsumer,
		Error: fmt.Sprintf("the connection did not read fast enough (%d messages, %d bytes waiting) and is closed; reconnect and resume", n, size)})
	return msg
}

func (c *Conn) write(data []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.WriteTimeout)
	defer cancel()
	// A write that times out closes the socket (coder/websocket's rule): a
	// client that stops reading is cut off after one write timeout.
	return c.ws.Write(ctx, websocket.MessageText, data)
}

// finish writes what a draining close must deliver, then closes.
func (c *Conn) finish() {
	c.mu.Lock()
	code, reason, drain, farewell := c.code, c.reason, c.drain, c.farewell
	c.mu.Unlock()
	if farewell != nil {
		// Bounded by the slow consumer's cutoff: its socket may take nothing.
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.WriteTimeout)
		_ = c.ws.Write(ctx, websocket.MessageText, farewell)
		cancel()
	}
	if drain {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.WriteTimeout)
		for data, ok := c.next(); ok; data, ok = c.next() {
			if err := c.ws.Write(ctx, websocket.MessageText, data); err != nil {
				break
			}
		}
		cancel()
	}
	switch code {
	case websocket.StatusNoStatusRcvd, websocket.StatusAbnormalClosure, websocket.StatusTLSHandshake:
		// Codes that only describe a close and may not be sent in one: the
		// socket is already gone or broken.
		_ = c.ws.CloseNow()
	default:
		// Close does the handshake: up to 5 s to send and 5 s to hear back.
		_ = c.ws.Close(code, reason)
	}
}

// abort drops the socket without a close handshake. A write blocked on it
// fails at once; a close handshake under way is left to finish (CloseNow
// then waits for it, at most its own 5 s timeouts).
func (c *Conn) abort() {
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		_ = ws.CloseNow()
	}
}
