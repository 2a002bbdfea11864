package handler

import (
	"sync"
	"time"
)

// Limits on what a connection's bad messages (ones $default cannot
// understand) may cost. Each is answered with an error event; but only
// BadMessageLogsPerMinute of them per connection and minute are logged, the
// next line logged saying how many were not, and after MaxBadMessages the
// connection is closed: an error event with code TOO_MANY_BAD_MESSAGES, then
// the close (the Management API's DeleteConnection).
const (
	BadMessageLogsPerMinute = 3
	MaxBadMessages          = 100
)

// CodeTooManyBadMessages is the code of the error sent before the close.
const CodeTooManyBadMessages = "TOO_MANY_BAD_MESSAGES"

// maxTrackedConns bounds the connections whose bad messages are counted in
// one process; past it, counts older than a minute are forgotten, or all.
const maxTrackedConns = 10000

// badMessages counts each connection's bad messages, in one process (a warm
// Lambda instance, or local mode).
type badMessages struct {
	mu    sync.Mutex
	conns map[string]*badCount
	now   func() time.Time
}

type badCount struct {
	window     time.Time // when the current minute of logging began
	logged     int       // lines logged in it
	suppressed int       // bad messages not logged since the last line
	total      int       // bad messages in the connection's life
	closed     bool      // closed for them: what still comes is not logged
}

// badVerdict says what to do with one bad message.
type badVerdict struct {
	log        bool // log it
	suppressed int  // bad messages not logged before it (with log)
	close      bool // the connection has sent MaxBadMessages: close it
	total      int
}

func newBadMessages(now func() time.Time) *badMessages {
	return &badMessages{conns: make(map[string]*badCount), now: now}
}

// note counts a bad message of connectionID.
func (b *badMessages) note(connectionID string) badVerdict {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	c := b.conns[connectionID]
	if c == nil {
		if len(b.conns) >= maxTrackedConns {
			b.forget(now)
		}
		c = &badCount{window: now}
		b.conns[connectionID] = c
	}
	c.total++
	if c.closed {
		return badVerdict{total: c.total}
	}
	if now.Sub(c.window) >= time.Minute {
		c.window, c.logged = now, 0
	}
	v := badVerdict{total: c.total, close: c.total >= MaxBadMessages}
	if c.logged < BadMessageLogsPerMinute || v.close {
		c.logged++
		v.log, v.suppressed = true, c.suppressed
		c.suppressed = 0
	} else {
		c.suppressed++
	}
	c.closed = v.close
	return v
}

// forget drops the counts idle for a minute, or every count if none is.
func (b *badMessages) forget(now time.Time) {
	for id, c := range b.conns {
		if now.Sub(c.window) >= time.Minute {
			delete(b.conns, id)
		}
	}
	if len(b.conns) >= maxTrackedConns {
		clear(b.conns)
	}
}
