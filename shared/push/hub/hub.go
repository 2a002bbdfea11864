// Package hub is the in-process WebSocket transport: it holds live
// connections and pushes messages to them, the counterpart, for a process
// that serves WebSockets itself, of the API Gateway Management API client in
// shared/push/apigw. Both are a notify.Pusher; one contract suite
// (notify/pushertest) runs on each.
//
// Every connection has a bounded outgoing queue (Queue) drained by a writer
// goroutine that runs while there is something to write, so a Post never
// blocks on a client and never holds a lock across network I/O, and an idle
// connection holds one goroutine only, its reader. A client whose queue fills is too slow and is
// closed with 1013 (try again later). Idle connections and connections older
// than the maximum age are closed with 1001, as API Gateway closes them.
//
// A connection's life, as local mode drives it:
//
//	c, _ := h.Reserve(id, peer, now) // the id exists; posts answer ErrGone
//	…run $connect…
//	c.Open()                         // posts are queued from now on
//	…complete the WebSocket handshake…
//	code, reason := c.Serve(ws, onMessage) // until the connection closes
//	…run $disconnect…
//	h.Release(c)                     // the id is free; Shutdown stops waiting
package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/shared/notify"
)

// Defaults of Config: API Gateway's limits, and queue bounds that let a
// reading client absorb bursts but stop a stalled one from holding memory.
const (
	DefaultQueueMessages = 1000
	DefaultQueueBytes    = 4 << 20
	DefaultWriteTimeout  = 10 * time.Second
	DefaultIdleTimeout   = 10 * time.Minute
	DefaultMaxAge        = notify.MaxConnectionAge
)

// Never, as Config.IdleTimeout or Config.MaxAge, turns that limit off.
const Never time.Duration = -1

// Close codes and reasons. 1001 is what API Gateway sends when it ends a
// connection itself (idle, age, shutdown).
const (
	StatusGoingAway    = websocket.StatusGoingAway
	StatusDeleted      = websocket.StatusNormalClosure
	StatusSlowConsumer = websocket.StatusTryAgainLater // 1013: the client may reconnect
	StatusInvalidUTF8  = websocket.StatusInvalidFramePayloadData
	StatusTooBig       = websocket.StatusMessageTooBig

	ReasonShutdown     = "server shutting down"
	ReasonIdle         = "idle timeout"
	ReasonMaxAge       = "maximum connection age"
	ReasonDeleted      = "connection deleted"
	ReasonSlowConsumer = "slow consumer"
	ReasonInvalidUTF8  = "text message is not valid UTF-8"
	ReasonTooBig       = "message too big"
)

// CodeSlowConsumer is the code of the error event a connection closed as a
// slow consumer gets before its close frame.
const CodeSlowConsumer = "SLOW_CONSUMER"

// slowConsumerGrace is how long a connection closed as a slow consumer may
// take to finish the write in flight before its socket is dropped. A client
// that still reads takes a queued message in far less and then gets the
// 1013 close frame; one whose socket has stopped accepting data never would,
// and waiting out the whole write timeout would only hold its client id.
const slowConsumerGrace = 2 * time.Second

// ErrShuttingDown refuses new connections once Shutdown has begun.
var ErrShuttingDown = errors.New("shutting down")

// Config bounds the Hub's connections. Zero values take the defaults.
type Config struct {
	// QueueMessages and QueueBytes bound each connection's outgoing queue
	// (defaults DefaultQueueMessages, DefaultQueueBytes). QueueBytes must
	// hold one message of notify.MaxMessageBytes.
	QueueMessages int
	QueueBytes    int
	// WriteTimeout bounds the write of one message (default DefaultWriteTimeout).
	WriteTimeout time.Duration
	// IdleTimeout closes a connection whose client has sent no message for
	// that long; only data messages count, not protocol pings, as on API
	// Gateway (default DefaultIdleTimeout; Never: no limit).
	IdleTimeout time.Duration
	// MaxAge closes every connection that old (default DefaultMaxAge;
	// Never: no limit).
	MaxAge time.Duration
	// Logger receives the Hub's log lines (default slog.Default()).
	Logger *slog.Logger
}

// withDefaults fills in zero values and checks the rest.
func (c Config) withDefaults() (Config, error) {
	orDefault(&c.QueueMessages, DefaultQueueMessages)
	orDefault(&c.QueueBytes, DefaultQueueBytes)
	orDefault(&c.WriteTimeout, DefaultWriteTimeout)
	orDefault(&c.IdleTimeout, DefaultIdleTimeout)
	orDefault(&c.MaxAge, DefaultMaxAge)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	var errs []error
	if c.QueueMessages < 1 {
		errs = append(errs, fmt.Errorf("queue messages %d: must be at least 1", c.QueueMessages))
	}
	if c.QueueBytes < notify.MaxMessageBytes {
		errs = append(errs, fmt.Errorf("queue bytes %d: must be at least %d, one message of the largest size", c.QueueBytes, notify.MaxMessageBytes))
	}
	if c.WriteTimeout < 0 {
		errs = append(errs, fmt.Errorf("write timeout %v: must be positive", c.WriteTimeout))
	}
	for _, limit := range []struct {
		name string
		d    time.Duration
	}{{"idle timeout", c.IdleTimeout}, {"maximum age", c.MaxAge}} {
		if limit.d < 0 && limit.d != Never {
			errs = append(errs, fmt.Errorf("%s %v: must be positive, or Never", limit.name, limit.d))
		}
	}
	return c, errors.Join(errs...)
}

// orDefault sets *v to d if it is zero.
func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

// Hub holds the live connections of a process that serves WebSockets, and
// pushes to them: a notify.Pusher.
type Hub struct {
	cfg Config
	log *slog.Logger

	counts counts // for Stats

	mu       sync.Mutex
	conns    map[string]*Conn
	shutdown bool
	// wg counts reserved connections until they are released. Shutdown
	// waits on it.
	wg sync.WaitGroup
}

var _ notify.StreamPusher = (*Hub)(nil)

// New returns an empty Hub.
func New(cfg Config) (*Hub, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Hub{cfg: cfg, log: cfg.Logger, conns: make(map[string]*Conn)}, nil
}

// Peer is what the Hub knows of a connection's client, for Info.
type Peer struct {
	SourceIP  string
	UserAgent string
}

// Info is what API Gateway's GetConnection reports about a connection.
type Info struct {
	Peer
	ConnectedAt  time.Time
	LastActiveAt time.Time
}

// Reserve registers a new connection id before its handshake is accepted:
// the id cannot be taken twice, and a Post to it answers ErrGone, as API
// Gateway answers during $connect. The caller must Release it.
func (h *Hub) Reserve(id string, peer Peer, now time.Time) (*Conn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.shutdown {
		return nil, ErrShuttingDown
	}
	if _, taken := h.conns[id]; taken {
		// Random ids make this practically impossible; refuse rather than mix two clients.
		return nil, fmt.Errorf("connection id %s is already in use", id)
	}
	c := newConn(id, peer, now, h.cfg, h.log, &h.counts)
	h.conns[id] = c
	h.wg.Add(1)
	return c, nil
}

// Release forgets a connection once it is over: its id is free, and
// Shutdown no longer waits for it.
func (h *Hub) Release(c *Conn) {
	c.stopTimers()
	h.mu.Lock()
	delete(h.conns, c.id)
	h.mu.Unlock()
	h.wg.Done()
}

func (h *Hub) get(id string) *Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conns[id]
}

// Post implements notify.Pusher: it queues data as one text message for the
// connection and returns without waiting for the write. An unknown, still
// connecting or closing connection gives an error wrapping notify.ErrGone;
// data over notify.MaxMessageBytes gives notify.ErrPayloadTooLarge.
func (h *Hub) Post(ctx context.Context, connectionID string, data []byte) error {
	_, err := h.post(ctx, connectionID, data)
	return err
}

// post is Post, returning the connection it queued data for.
func (h *Hub) post(ctx context.Context, connectionID string, data []byte) (*Conn, error) {
	if len(data) > notify.MaxMessageBytes {
		// Logged as the cloud pusher logs it: whoever posted gets a 413,
		// but the operator should see that something produces messages API
		// Gateway would never deliver.
		h.log.ErrorContext(ctx, "message over the size limit not sent", "connectionId", connectionID,
			"bytes", len(data), "limit", notify.MaxMessageBytes)
		return nil, fmt.Errorf("post %d bytes to %s: %w", len(data), connectionID, notify.ErrPayloadTooLarge)
	}
	c := h.get(connectionID)
	if c == nil {
		return nil, fmt.Errorf("post to %s: %w", connectionID, notify.ErrGone)
	}
	return c, c.enqueue(data)
}

// PostReply queues a route response (the answer to a client's message) as
// Post does, except that an answer identical to one still queued is not
// queued again: a client that pipelines pings gets the pongs it still owes
// coalesced, so answering a flood costs a bounded queue.
func (h *Hub) PostReply(ctx context.Context, connectionID string, data []byte) error {
	if len(data) > notify.MaxMessageBytes {
		return h.Post(ctx, connectionID, data) // refused as Post refuses it
	}
	c := h.get(connectionID)
	if c == nil {
		return fmt.Errorf("post to %s: %w", connectionID, notify.ErrGone)
	}
	return c.enqueueReply(data)
}

// PostEvent implements notify.OrderedPusher: Post, and the connection
// remembers the first owner-wide event it got live, so that a resume does
// not send it again what it has.
func (h *Hub) PostEvent(ctx context.Context, connectionID string, data []byte, seq int64) error {
	c, err := h.post(ctx, connectionID, data)
	if err != nil {
		return err
	}
	c.firstSeq.CompareAndSwap(0, seq)
	return nil
}

// PostStream implements notify.StreamPusher: the connection's writer pulls
// the stream's messages one at a time as it writes them, after what is
// queued now; what is posted meanwhile is queued behind the stream. A replay
// of any size so holds one message at a time and never fills the queue.
func (h *Hub) PostStream(_ context.Context, connectionID string, next func(context.Context) ([]byte, error)) error {
	c := h.get(connectionID)
	if c == nil {
		return fmt.Errorf("stream to %s: %w", connectionID, notify.ErrGone)
	}
	return c.setStream(next)
}

// FirstSeq implements notify.OrderedPusher.
func (h *Hub) FirstSeq(connectionID string) int64 {
	if c := h.get(connectionID); c != nil {
		return c.firstSeq.Load()
	}
	return 0
}

// Alive implements notify.Pusher: only an open connection is alive.
func (h *Hub) Alive(_ context.Context, connectionID string) (bool, error) {
	c := h.get(connectionID)
	return c != nil && c.isOpen(), nil
}

// Info returns what GetConnection reports about an open connection, or an
// error wrapping notify.ErrGone.
func (h *Hub) Info(connectionID string) (Info, error) {
	c := h.get(connectionID)
	if c == nil || !c.isOpen() {
		return Info{}, fmt.Errorf("get %s: %w", connectionID, notify.ErrGone)
	}
	return Info{Peer: c.peer, ConnectedAt: c.connectedAt, LastActiveAt: time.Unix(0, c.lastActive.Load())}, nil
}

// Close closes an open connection as the Management API's DeleteConnection
// does: what is already queued is delivered, then the close frame (1000).
// It returns without waiting. An unknown or not open connection gives an
// error wrapping notify.ErrGone.
func (h *Hub) Close(connectionID string) error {
	c := h.get(connectionID)
	if c == nil || !c.isOpen() || !c.close(StatusDeleted, ReasonDeleted, true) {
		return fmt.Errorf("delete %s: %w", connectionID, notify.ErrGone)
	}
	return nil
}

// CloseConnection implements notify.Closer: Close.
func (h *Hub) CloseConnection(_ context.Context, connectionID string) error {
	return h.Close(connectionID)
}

// Len returns the number of connections from Reserve to Release. Zero means
// every connection is over.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// Stats is what the Hub counts, for local mode's /metrics.
type Stats struct {
	// Open is the number of connections open now: accepted (Open) and not
	// closing. Connections still in their $connect, or closing, are not.
	Open int64
	// SlowConsumerCloses counts the connections closed with 1013 because
	// their queue filled.
	SlowConsumerCloses uint64
}

// counts are the Hub's Stats, kept by its connections as their state changes.
type counts struct {
	open         atomic.Int64
	slowConsumer atomic.Uint64
}

// Stats returns the Hub's counts, exact at the moment of the call.
func (h *Hub) Stats() Stats {
	return Stats{Open: h.counts.open.Load(), SlowConsumerCloses: h.counts.slowConsumer.Load()}
}

// Shutdown refuses new connections, closes every connection with 1001
// (going away) after delivering what is queued, and waits until each is
// released. If ctx ends first, the remaining sockets are dropped without a
// close handshake and Shutdown still waits for their release, then returns
// ctx's error.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.shutdown = true
	conns := make([]*Conn, 0, len(h.conns))
	for _, c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.close(StatusGoingAway, ReasonShutdown, true)
	}
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range conns {
			c.abort()
		}
		<-done
		return fmt.Errorf("close connections: %w", ctx.Err())
	}
}
