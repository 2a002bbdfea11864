package server

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

// Close codes and reasons local mode closes connections with. 1001 is what
// API Gateway sends when it ends a connection itself (idle, age, shutdown).
const (
	reasonShutdown    = "server shutting down"
	reasonIdle        = "idle timeout"
	reasonMaxAge      = "maximum connection age"
	reasonDeleted     = "connection deleted"
	reasonSlowClient  = "slow consumer"
	statusSlowClient  = websocket.StatusTryAgainLater // 1013: the client may reconnect, and resume once that exists
	statusDeleted     = websocket.StatusNormalClosure
	statusServerEnded = websocket.StatusGoingAway
)

// slowConsumerGrace is how long a connection closed as a slow consumer may
// take to finish the write in flight before its socket is dropped. A client
// that still reads takes a queued message in far less and then gets the
// 1013 close frame; one whose socket has stopped accepting data never would,
// and waiting out the whole write timeout would only hold its client id.
const slowConsumerGrace = 2 * time.Second

// errShuttingDown refuses new connections once Shutdown has begun.
var errShuttingDown = errors.New("server is shutting down")

// Hub holds the live WebSocket connections of local mode and is its
// notify.Pusher: the in-process counterpart of the API Gateway Management
// API. Every connection has a bounded outgoing queue drained by one writer
// goroutine, so Post never blocks on a client and never holds a lock across
// network I/O; a client whose queue is full (in messages or in bytes) is too
// slow and is closed with 1013 (try again later) and reason "slow consumer".
type Hub struct {
	log          *slog.Logger
	queueSize    int
	queueBytes   int
	writeTimeout time.Duration
	idleTimeout  time.Duration
	maxAge       time.Duration

	mu       sync.Mutex
	conns    map[string]*conn
	shutdown bool
	// wg counts reserved connections until they are released, that is until
	// their $disconnect has run. Shutdown waits on it.
	wg sync.WaitGroup
}

var _ notify.Pusher = (*Hub)(nil)

// hubConfig is the part of Config the Hub uses, with defaults applied.
type hubConfig struct {
	queueSize    int
	queueBytes   int // >= notify.MaxMessageBytes, so an empty queue takes any message
	writeTimeout time.Duration
	idleTimeout  time.Duration // <= 0: never
	maxAge       time.Duration // <= 0: never
}

func newHub(cfg hubConfig, log *slog.Logger) *Hub {
	if cfg.queueBytes <= 0 {
		cfg.queueBytes = DefaultQueueBytes
	}
	return &Hub{
		log:          log,
		queueSize:    cfg.queueSize,
		queueBytes:   cfg.queueBytes,
		writeTimeout: cfg.writeTimeout,
		idleTimeout:  cfg.idleTimeout,
		maxAge:       cfg.maxAge,
		conns:        make(map[string]*conn),
	}
}

// ConnectionInfo is what the Management API's GetConnection reports.
type ConnectionInfo struct {
	ConnectedAt  time.Time
	LastActiveAt time.Time
	SourceIP     string
	UserAgent    string
}

type connState int

const (
	// stateConnecting: the id is reserved and $connect is running. Like API
	// Gateway, nothing can be posted to the connection yet.
	stateConnecting connState = iota
	// stateOpen: $connect accepted it; posts are queued and written.
	stateOpen
	// stateClosing: it is being closed or is closed; posts answer ErrGone
	// until $disconnect has run and the id is released.
	stateClosing
)

// conn is one connection of the Hub.
type conn struct {
	id          string
	sourceIP    string
	userAgent   string
	domain      string // the Host the client connected to, without port
	connectedAt time.Time
	lastActive  atomic.Int64 // unix nanoseconds of the connect or the last client message

	// wake tells the writer that queue is not empty (capacity 1: one
	// pending signal covers any number of posts).
	wake       chan struct{}
	closing    chan struct{} // closed once, when the connection starts closing
	writerDone chan struct{} // closed when the writer goroutine has returned

	mu sync.Mutex
	// queue is the outgoing queue, at most queueSize messages and
	// byteLimit bytes (queued holds its size). A slice that grows on demand
	// rather than a buffered channel: a channel allocates its whole buffer up
	// front, 24 KB per connection for 1,000 messages, which ten thousand
	// mostly idle connections would pay for nothing. The byte bound matters
	// as much: 1,000 messages of 128 KB would be 128 MB for one client.
	queue     [][]byte
	queued    int
	queueSize int
	byteLimit int
	state     connState
	code      websocket.StatusCode // why it closed, for the $disconnect event
	reason    string
	drain     bool // write what is queued before the close frame
	ws        *websocket.Conn
	idle      *time.Timer
	idleAfter time.Duration
	maxAge    *time.Timer
	cutoff    *time.Timer // drops a slow consumer's socket after slowConsumerGrace
}

// reserve registers a new connection id in the connecting state, before its
// $connect runs: the id cannot be taken twice, and a Post to it answers
// ErrGone as API Gateway does during $connect. The caller must release it.
func (h *Hub) reserve(id, sourceIP, userAgent, domain string, now time.Time) (*conn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.shutdown {
		return nil, errShuttingDown
	}
	if _, taken := h.conns[id]; taken {
		// 88 random bits make this practically impossible; refuse rather than mix two clients.
		return nil, fmt.Errorf("connection id %s is already in use", id)
	}
	c := &conn{
		id:          id,
		sourceIP:    sourceIP,
		userAgent:   userAgent,
		domain:      domain,
		connectedAt: now,
		queueSize:   h.queueSize,
		byteLimit:   h.queueBytes,
		wake:        make(chan struct{}, 1),
		closing:     make(chan struct{}),
		writerDone:  make(chan struct{}),
	}
	c.lastActive.Store(now.UnixNano())
	h.conns[id] = c
	h.wg.Add(1)
	return c, nil
}

// release forgets a connection after its $disconnect has run (or after a
// refused $connect): from then on its client id is free and Shutdown no
// longer waits for it.
func (h *Hub) release(c *conn) {
	c.mu.Lock()
	c.state = stateClosing
	if c.idle != nil {
		c.idle.Stop()
	}
	if c.maxAge != nil {
		c.maxAge.Stop()
	}
	if c.cutoff != nil {
		c.cutoff.Stop()
	}
	c.mu.Unlock()
	h.mu.Lock()
	delete(h.conns, c.id)
	h.mu.Unlock()
	h.wg.Done()
}

// open lets posts in once $connect has accepted the connection. It is called
// just before the handshake completes, so a client that sees its connection
// open can always be posted to; what is posted before the writer starts
// waits in the queue. A connection closed meanwhile (Shutdown) stays closed.
func (c *conn) open() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stateConnecting {
		c.state = stateOpen
	}
}

// start attaches the upgraded WebSocket, arms the idle and age limits and
// starts the writer goroutine. The caller owns the writer: it waits on
// writerDone before running $disconnect.
func (h *Hub) start(c *conn, ws *websocket.Conn) {
	c.mu.Lock()
	c.ws = ws
	if h.idleTimeout > 0 {
		c.idleAfter = h.idleTimeout
		c.idle = time.AfterFunc(h.idleTimeout, func() { c.close(statusServerEnded, reasonIdle, true) })
	}
	if h.maxAge > 0 {
		c.maxAge = time.AfterFunc(h.maxAge, func() { c.close(statusServerEnded, reasonMaxAge, true) })
	}
	c.mu.Unlock()
	go c.writeLoop(h.writeTimeout, h.log)
}

// touch records client activity. Like API Gateway's idle timeout, only data
// messages from the client count, not protocol pings.
func (c *conn) touch(now time.Time) {
	c.lastActive.Store(now.UnixNano())
	c.mu.Lock()
	if c.idle != nil && c.state == stateOpen {
		c.idle.Reset(c.idleAfter)
	}
	c.mu.Unlock()
}

// close starts closing the connection with code and reason, unless it is
// already closing; it reports whether this call started it. It never blocks:
// the writer goroutine sends the close frame. With drain, what is already
// queued is written first (within one write timeout), so that a message
// posted before a DELETE or a shutdown still arrives.
func (c *conn) close(code websocket.StatusCode, reason string, drain bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stateClosing {
		return false
	}
	c.state = stateClosing
	c.code, c.reason, c.drain = code, reason, drain
	close(c.closing)
	return true
}

// closeStatus returns the code and reason the connection closed with.
func (c *conn) closeStatus() (websocket.StatusCode, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.code, c.reason
}

// enqueue queues data for the writer. A full queue means the client does not
// read fast enough: it is closed rather than let it hold memory or slow the
// publisher, and the post fails as if the connection were gone.
//
// The close frame follows the write in flight, if any. When the client's
// socket has stopped taking data, that write never ends: after
// slowConsumerGrace the socket is dropped, so the connection's $disconnect
// runs and its client id is free again without waiting for the write timeout.
func (c *conn) enqueue(data []byte) error {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return fmt.Errorf("post to %s: %w", c.id, notify.ErrGone)
	}
	if len(c.queue) >= c.queueSize || c.queued+len(data) > c.byteLimit {
		n, size := len(c.queue), c.queued
		c.state = stateClosing
		c.code, c.reason, c.drain = statusSlowClient, reasonSlowClient, false
		close(c.closing)
		c.cutoff = time.AfterFunc(slowConsumerGrace, c.abort)
		c.mu.Unlock()
		return fmt.Errorf("post to %s: outgoing queue full (%d messages, %d bytes), closing slow consumer: %w", c.id, n, size, notify.ErrGone)
	}
	c.queue = append(c.queue, data)
	c.queued += len(data)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
	return nil
}

// next takes the oldest queued message, if any.
func (c *conn) next() ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		c.queue = nil // let an emptied queue's array go
		return nil, false
	}
	data := c.queue[0]
	c.queue[0] = nil
	c.queue = c.queue[1:]
	c.queued -= len(data)
	return data, true
}

// isClosing reports whether the connection has started closing.
func (c *conn) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// writeLoop writes queued messages, each within timeout, until the
// connection closes; then it sends the close frame.
func (c *conn) writeLoop(timeout time.Duration, log *slog.Logger) {
	defer close(c.writerDone)
	for {
		select {
		case <-c.closing:
			c.finish(timeout)
			return
		case <-c.wake:
		}
		// A closing connection stops at once, even with messages queued.
		for !c.isClosing() {
			data, ok := c.next()
			if !ok {
				break
			}
			if err := c.write(data, timeout); err != nil {
				log.Info("write to connection failed", "connectionId", c.id, "err", err)
				c.close(websocket.StatusAbnormalClosure, "write failed", false)
				_ = c.ws.CloseNow()
				return
			}
		}
	}
}

func (c *conn) write(data []byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// A write that times out closes the socket (coder/websocket's rule): a
	// client that stops reading is cut off after one write timeout.
	return c.ws.Write(ctx, websocket.MessageText, data)
}

// finish writes what a draining close must deliver, then closes.
func (c *conn) finish(timeout time.Duration) {
	c.mu.Lock()
	code, reason, drain := c.code, c.reason, c.drain
	c.mu.Unlock()
	if drain {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
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
func (c *conn) abort() {
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		_ = ws.CloseNow()
	}
}

func (h *Hub) get(id string) *conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conns[id]
}

// Post implements notify.Pusher: it queues data as one text message for the
// connection and returns without waiting for the write. An unknown, still
// connecting or closing connection gives an error wrapping notify.ErrGone;
// data over notify.MaxMessageBytes gives notify.ErrPayloadTooLarge.
func (h *Hub) Post(ctx context.Context, connectionID string, data []byte) error {
	if len(data) > notify.MaxMessageBytes {
		// Logged as the cloud pusher (push/apigw) logs it: whoever posted
		// gets a 413, but the operator should see that something produces
		// messages API Gateway would never deliver.
		h.log.WarnContext(ctx, "message over the size limit not sent", "connectionId", connectionID,
			"bytes", len(data), "limit", notify.MaxMessageBytes)
		return fmt.Errorf("post %d bytes to %s: %w", len(data), connectionID, notify.ErrPayloadTooLarge)
	}
	c := h.get(connectionID)
	if c == nil {
		return fmt.Errorf("post to %s: %w", connectionID, notify.ErrGone)
	}
	return c.enqueue(data)
}

// Alive implements notify.Pusher: only an open connection is alive.
func (h *Hub) Alive(_ context.Context, connectionID string) (bool, error) {
	c := h.get(connectionID)
	if c == nil {
		return false, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == stateOpen, nil
}

// Info returns what GetConnection reports about an open connection, or an
// error wrapping notify.ErrGone.
func (h *Hub) Info(connectionID string) (ConnectionInfo, error) {
	c := h.get(connectionID)
	if c == nil {
		return ConnectionInfo{}, fmt.Errorf("get %s: %w", connectionID, notify.ErrGone)
	}
	c.mu.Lock()
	open := c.state == stateOpen
	c.mu.Unlock()
	if !open {
		return ConnectionInfo{}, fmt.Errorf("get %s: %w", connectionID, notify.ErrGone)
	}
	return ConnectionInfo{
		ConnectedAt:  c.connectedAt,
		LastActiveAt: time.Unix(0, c.lastActive.Load()),
		SourceIP:     c.sourceIP,
		UserAgent:    c.userAgent,
	}, nil
}

// Close closes an open connection as the Management API's DeleteConnection
// does: what is already queued is delivered, then the close frame (1000);
// $disconnect runs afterwards. It returns without waiting for either. An
// unknown or not open connection gives an error wrapping notify.ErrGone.
func (h *Hub) Close(connectionID string) error {
	c := h.get(connectionID)
	if c == nil {
		return fmt.Errorf("delete %s: %w", connectionID, notify.ErrGone)
	}
	c.mu.Lock()
	open := c.state == stateOpen
	c.mu.Unlock()
	if !open || !c.close(statusDeleted, reasonDeleted, true) {
		return fmt.Errorf("delete %s: %w", connectionID, notify.ErrGone)
	}
	return nil
}

// Len returns the number of connections the Hub holds, from the start of
// their $connect to the end of their $disconnect. Zero means every
// $disconnect has run.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// Shutdown refuses new connections, closes every connection with 1001 (going
// away) after delivering what is queued, and waits until each one's
// $disconnect has run. If ctx ends first, the remaining sockets are dropped
// without a close handshake and Shutdown still waits for their $disconnect,
// then returns ctx's error.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.shutdown = true
	conns := make([]*conn, 0, len(h.conns))
	for _, c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.close(statusServerEnded, reasonShutdown, true)
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
