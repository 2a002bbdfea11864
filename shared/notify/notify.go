// Package notify is the core of the service: it registers and unregisters
// client connections and publishes events to an owner's live connections.
//
// It depends on two small interfaces it declares, Store and Pusher. Lambda
// handlers and the local mode are adapters around one Notifier; no business
// rule lives in them.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/store"
)

// MaxMessageBytes is API Gateway's WebSocket message payload limit (128 KB).
const MaxMessageBytes = 128 * 1024

// MaxConnectionAge is API Gateway's hard limit on one connection's life.
const MaxConnectionAge = 2 * time.Hour

// DefaultConcurrency bounds the pushes in flight for one publish. On
// BenchmarkFanOut's curve (each post answered after 20 ms) it posts to
// 10,000 connections in about 1.1 s, within 1.1× of ⌈N / 192⌉ × 20 ms
// for 1,000 and 10,000 connections; 256 is faster (0.86 s) but further from
// the rounds' ideal, and at some 11,600 posts a second one fan-out would
// outrun API Gateway's account-wide throttle of 10,000 requests a second (a
// token bucket with a burst of 5,000, shared by every API of the account in
// the region); 192 stays under it (about 9,000 a second). A post throttled by
// fan-outs that run together is answered 429 LimitExceededException and
// retried with backoff (apigw.NewClient).
const DefaultConcurrency = 192

// Store keeps one record per live connection. Implementations: store/memory
// and store/dynamo.
type Store interface {
	// PutConnection writes c unless a live record (one not expired at now)
	// already holds c's owner and client id; then it returns
	// *store.ClientTakenError carrying that record.
	PutConnection(ctx context.Context, c store.Connection, now time.Time) error
	// ReplaceConnection overwrites the record of c's owner and client id only
	// if it still names oldConnectionID; else store.ErrConditionFailed.
	ReplaceConnection(ctx context.Context, c store.Connection, oldConnectionID string) error
	// DeleteConnection removes the record naming connectionID and returns it,
	// or store.ErrNotFound if there is none.
	DeleteConnection(ctx context.Context, connectionID string) (store.Connection, error)
	// FindConnection returns the record naming connectionID, or
	// store.ErrNotFound. Like DeleteConnection it finds a record written
	// just before the call.
	FindConnection(ctx context.Context, connectionID string) (store.Connection, error)
	// RemoveClient removes the record of ownerID's clientID only if it still
	// names connectionID, and reports whether it did; a missing or newer
	// record is left alone and is not an error.
	RemoveClient(ctx context.Context, ownerID, clientID, connectionID string) (bool, error)
	// ListConnections returns every record of ownerID not expired at now,
	// including one written just before the call.
	ListConnections(ctx context.Context, ownerID string, now time.Time) ([]store.Connection, error)
	ConnectionCounter
}

// ConnectionCounter keeps a count of each owner's connections, so that a
// connect enforces the per-owner cap with one write of one item instead of
// reading the owner's records. The Notifier counts a connection before its
// record is written and releases it when the record goes (or was never
// written); a publish, which lists the records anyway, corrects a count that
// has drifted from them.
type ConnectionCounter interface {
	// ReserveConnection adds one to ownerID's count, unless max are counted
	// already: then it changes nothing and returns store.ErrOwnerFull. held
	// is the count before the call.
	ReserveConnection(ctx context.Context, ownerID string, max int) (held int, err error)
	// ReleaseConnections takes k from ownerID's count, never below zero.
	ReleaseConnections(ctx context.Context, ownerID string, k int) error
	// ConnectionCount returns ownerID's count, 0 if it has none.
	ConnectionCount(ctx context.Context, ownerID string) (int, error)
	// CorrectConnectionCount sets ownerID's count to n if it is still was
	// (a missing count is 0); else it returns store.ErrConditionFailed.
	CorrectConnectionCount(ctx context.Context, ownerID string, was, n int) error
}

// Pusher sends messages to connections: the API Gateway Management API in
// the cloud, the in-process hub in local mode.
type Pusher interface {
	// Post sends data to the connection as one text message. It returns an
	// error wrapping ErrGone when the connection no longer exists.
	Post(ctx context.Context, connectionID string, data []byte) error
	// Alive reports whether the connection still exists.
	Alive(ctx context.Context, connectionID string) (bool, error)
}

// ErrGone means the connection no longer exists (API Gateway's 410 GoneException).
var ErrGone = errors.New("connection gone")

// ErrPayloadTooLarge means a message exceeds MaxMessageBytes (API Gateway's 413).
var ErrPayloadTooLarge = errors.New("payload too large")

// Config holds the Notifier's settings. Zero values take defaults.
type Config struct {
	// Concurrency bounds the pushes in flight per publish (default DefaultConcurrency).
	Concurrency int
	// ConnectionTTL is how long a record lives without a disconnect; set past
	// MaxConnectionAge so a live connection is never taken for stale
	// (default MaxConnectionAge + 10 minutes).
	ConnectionTTL time.Duration
	// ConnectGrace is how long after its connect a record is protected from
	// 410 cleanup and take-over (default DefaultConnectGrace).
	ConnectGrace time.Duration
	// MaxMessageBytes refuses larger events before any push (default
	// MaxMessageBytes). The event rules keep every valid event far below
	// API Gateway's limit; this is the guard should they ever not.
	MaxMessageBytes int
	// ConnectRate and ConnectBurst are the token bucket of connects per API
	// key, and per owner for signed tokens (auth.Identity.RateKey; defaults
	// DefaultConnectRate, DefaultConnectBurst); a connect over it is refused
	// with CodeRateLimited before any store write.
	ConnectRate  float64
	ConnectBurst int
	// MaxConnectionsPerOwner caps an owner's live connections (default
	// DefaultMaxConnectionsPerOwner); a connect over it gets CodeForbidden.
	MaxConnectionsPerOwner int
	// HistoryTTL and HistoryMaxEvents bound each owner's history, the events
	// a resume can replay (defaults DefaultHistoryTTL, DefaultHistoryMaxEvents).
	HistoryTTL       time.Duration
	HistoryMaxEvents int
	// Metrics receives the figures of connects, disconnects and publishes
	// (default: none).
	Metrics Metrics
	// CleanPublishLevel is the level of the "published" line of a publish
	// that is new and reached every connection it found: none failed, gone
	// or still connecting. Any other publish is logged at Info. The default,
	// Info, logs every publish; the Lambda functions choose Debug, since
	// their figures count clean publishes and CloudWatch Logs charges by
	// the byte (a line is some 170 bytes: $0.08 per million events).
	CleanPublishLevel slog.Level
	// Handoff, when set, sends the publishes of an owner of more than
	// HandoffAbove connection records from elsewhere (see Handoff): the
	// event is numbered and kept here, posted there, and reported here.
	// Ignored with an ordered pusher (local mode: one process).
	Handoff      Handoff
	HandoffAbove int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// DefaultConnectGrace covers the window between a $connect handler writing
// its record and API Gateway completing the handshake. In that window the
// Management API answers 410 for the new connection, as if it were gone, so a
// publish or a duplicate connect must not treat the young record as stale.
const DefaultConnectGrace = 30 * time.Second

// Notifier is the core: Connect, Disconnect, Publish, Resume.
type Notifier struct {
	auth    *auth.Authenticator
	store   Store
	history History // nil: the store keeps no history; events carry no seq
	pusher  Pusher
	ordered OrderedPusher // the pusher, when it keeps publish order (local mode)
	owners  ownerLocks
	log     *slog.Logger
	cfg     Config
	limiter *keyLimiter
	sweeps  sweepHolds // when each owner's expired tokens may be looked for again
}

// New returns a Notifier. log receives connection ids, owners and client ids,
// never keys.
func New(a *auth.Authenticator, s Store, p Pusher, log *slog.Logger, cfg Config) *Notifier {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.ConnectionTTL <= 0 {
		cfg.ConnectionTTL = MaxConnectionAge + 10*time.Minute
	}
	if cfg.ConnectGrace <= 0 {
		cfg.ConnectGrace = DefaultConnectGrace
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = MaxMessageBytes
	}
	if cfg.ConnectRate <= 0 {
		cfg.ConnectRate = DefaultConnectRate
	}
	if cfg.ConnectBurst <= 0 {
		cfg.ConnectBurst = DefaultConnectBurst
	}
	if cfg.MaxConnectionsPerOwner <= 0 {
		cfg.MaxConnectionsPerOwner = DefaultMaxConnectionsPerOwner
	}
	if cfg.HistoryTTL <= 0 {
		cfg.HistoryTTL = DefaultHistoryTTL
	}
	if cfg.HistoryMaxEvents <= 0 {
		cfg.HistoryMaxEvents = DefaultHistoryMaxEvents
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	n := &Notifier{auth: a, store: s, pusher: p, log: log, cfg: cfg,
		limiter: newKeyLimiter(cfg.ConnectRate, cfg.ConnectBurst)}
	n.history, _ = s.(History)
	n.ordered, _ = p.(OrderedPusher)
	return n
}

// Metrics returns what the Notifier reports its figures to, for an adapter
// that refuses a request before it reaches the Notifier (the $connect
// handler's origin check), so the refusal is counted with the others.
func (n *Notifier) Metrics() Metrics { return n.cfg.Metrics }

// ConnectRequest is what a $connect carries.
type ConnectRequest struct {
	Token        string
	ClientID     string
	ConnectionID string
}

// Connect authenticates the token and registers the connection under the
// token's owner. A client id held by a live connection of the same owner is
// refused (CodeConflict); one held by a gone or expired connection is taken over.
func (n *Notifier) Connect(ctx context.Context, req ConnectRequest) (store.Connection, error) {
	c, held, err := n.connect(ctx, req)
	if err != nil {
		n.cfg.Metrics.ConnectRefused(ErrorCode(err))
		return store.Connection{}, err
	}
	n.cfg.Metrics.ConnectAccepted(held)
	return c, nil
}

// connect is Connect; held is how many live connections the owner had.
func (n *Notifier) connect(ctx context.Context, req ConnectRequest) (c store.Connection, held int, err error) {
	if !event.ValidClientID(req.ClientID) {
		return c, 0, Errorf(CodeInvalid, "client_id must be 1-%d characters of A-Z a-z 0-9 . _ : -", event.MaxClientIDLength)
	}
	if req.ConnectionID == "" {
		return c, 0, Errorf(CodeInvalid, "missing connection id")
	}
	id, err := n.auth.Identify(ctx, req.Token)
	if errors.Is(err, auth.ErrUnauthorized) {
		// Every refusal is one answer to the client; the log says which.
		var refusal *auth.Refusal
		if errors.As(err, &refusal) {
			n.log.InfoContext(ctx, "token refused", "reason", refusal.Reason, "clientId", req.ClientID, "connectionId", req.ConnectionID)
		}
		return c, 0, Errorf(CodeUnauthorized, "missing, unknown or revoked API key")
	}
	if err != nil {
		return c, 0, err
	}
	owner := id.OwnerID
	now := n.cfg.Now()
	if !n.limiter.allow(id.RateKey, now) {
		return c, 0, Errorf(CodeRateLimited, "too many connects with this API key or for this owner's signed tokens: at most %g per second, %d at once", n.cfg.ConnectRate, n.cfg.ConnectBurst)
	}
	if held, err = n.reserve(ctx, owner); err != nil {
		return c, held, err
	}
	c = store.Connection{
		OwnerID:        owner,
		ClientID:       req.ClientID,
		ConnectionID:   req.ConnectionID,
		KeyID:          id.KeyID,
		TokenExpiresAt: id.TokenExpiresAt,
		ConnectedAt:    now,
		ExpiresAt:      now.Add(n.cfg.ConnectionTTL),
	}
	err = n.store.PutConnection(ctx, c, now)
	var taken *store.ClientTakenError
	if errors.As(err, &taken) {
		err = n.takeOver(ctx, c, taken.Existing)
	}
	if err != nil {
		n.release(ctx, owner, 1) // no record of this connect was written
		return store.Connection{}, held, err
	}
	n.log.InfoContext(ctx, "connected", "owner", owner, "clientId", c.ClientID, "connectionId", c.ConnectionID)
	return c, held, nil
}

// reserve counts a connection of owner before its record is written,
// refusing one that would take the owner past its cap. It is one conditional
// write of the owner's counter, whatever the owner's size: a reconnect storm
// of a large owner costs no more per connect than a small owner's connect.
// Concurrent connects cannot overshoot the cap together, as each one's
// write is conditioned on the count it finds. held is the owner's count
// before this connect.
//
// An owner at its cap first gets back the places of its connections whose
// signed token has expired (evictExpiredTokens), then the reservation is
// tried once more: a leaked short-lived token cannot fill the cap for the
// two hours its connections may live and lock the owner out.
func (n *Notifier) reserve(ctx context.Context, owner string) (held int, err error) {
	held, err = n.store.ReserveConnection(ctx, owner, n.cfg.MaxConnectionsPerOwner)
	if errors.Is(err, store.ErrOwnerFull) && n.evictExpiredTokens(ctx, owner) > 0 {
		held, err = n.store.ReserveConnection(ctx, owner, n.cfg.MaxConnectionsPerOwner)
	}
	if errors.Is(err, store.ErrOwnerFull) {
		return held, Errorf(CodeForbidden, "this account has reached its limit of %d live connections", n.cfg.MaxConnectionsPerOwner)
	}
	if err != nil {
		return held, fmt.Errorf("count connection of %s: %w", owner, err)
	}
	return held, nil
}

// release takes back the count of k connections of owner whose records are
// gone or were never written. A failure only leaves the count high, which
// the owner's next publish corrects, so it is logged, not returned.
func (n *Notifier) release(ctx context.Context, owner string, k int) {
	if err := n.store.ReleaseConnections(ctx, owner, k); err != nil {
		n.log.WarnContext(ctx, "release connection count", "owner", owner, "err", err)
	}
}

// listConnections lists ownerID's live records for a publish and corrects
// the owner's connection count when it has drifted from them: $disconnect is
// best effort, so connections that ended without one stay counted until a
// publish meets their records gone, expired or answering 410.
//
// The count is read with the list, or before it, and rewritten only if it
// is still what was read, so a connect or disconnect that counts after the
// read is never undone. One that counted just before the read and writes
// its record after the list leaves the count one low until the next
// publish: the cap is then off by at most the connects in flight at that
// moment.
func (n *Notifier) listConnections(ctx context.Context, ownerID string) ([]store.Connection, error) {
	conns, counted, countErr, err := n.countedList(ctx, ownerID)
	if countErr != nil {
		n.log.WarnContext(ctx, "read connection count", "owner", ownerID, "err", countErr)
	}
	if err != nil || countErr != nil {
		return conns, err
	}
	n.correctCount(ctx, ownerID, counted, len(conns))
	return conns, nil
}

// correctCount sets ownerID's count to live, the records a list found, if
// it differs and is still counted, what the same read found.
func (n *Notifier) correctCount(ctx context.Context, ownerID string, counted, live int) {
	if counted == live {
		return
	}
	err := n.store.CorrectConnectionCount(ctx, ownerID, counted, live)
	switch {
	case err == nil:
		n.log.InfoContext(ctx, "corrected connection count", "owner", ownerID, "counted", counted, "live", live)
	case !errors.Is(err, store.ErrConditionFailed): // a changed count is left to the next publish
		n.log.WarnContext(ctx, "correct connection count", "owner", ownerID, "err", err)
	}
}

// CountedLister is a Store that reads an owner's connection count in the
// same request as its records (store/dynamo, whose count item lies in the
// owner's partition): a publish's correction of the count then costs no
// request of its own.
type CountedLister interface {
	// ListConnectionsCounted is ListConnections, with ownerID's count as
	// the same read found it (0 if it has none).
	ListConnectionsCounted(ctx context.Context, ownerID string, now time.Time) ([]store.Connection, int, error)
}

// countedList is ownerID's live records and its count: from one read when
// the store can, else the count read first, then the records.
func (n *Notifier) countedList(ctx context.Context, ownerID string) (conns []store.Connection, counted int, countErr, err error) {
	if cl, ok := n.store.(CountedLister); ok {
		conns, counted, err = cl.ListConnectionsCounted(ctx, ownerID, n.cfg.Now())
		return conns, counted, nil, err
	}
	counted, countErr = n.store.ConnectionCount(ctx, ownerID)
	conns, err = n.store.ListConnections(ctx, ownerID, n.cfg.Now())
	return conns, counted, countErr, err
}

// takeOver replaces old with c if old's connection is gone. $disconnect is
// best effort in API Gateway, so a record can outlive its connection; asking
// the Management API is the only way to tell a live duplicate from a ghost.
func (n *Notifier) takeOver(ctx context.Context, c, old store.Connection) error {
	if n.young(old) {
		return Errorf(CodeConflict, "client_id %q is already connected", c.ClientID)
	}
	alive, err := n.pusher.Alive(ctx, old.ConnectionID)
	if err != nil {
		return fmt.Errorf("check connection %s: %w", old.ConnectionID, err)
	}
	if alive {
		return Errorf(CodeConflict, "client_id %q is already connected", c.ClientID)
	}
	err = n.store.ReplaceConnection(ctx, c, old.ConnectionID)
	if errors.Is(err, store.ErrConditionFailed) {
		// Another connect of the same client id won the race for the stale record.
		return Errorf(CodeConflict, "client_id %q is already connected", c.ClientID)
	}
	if err != nil {
		return err
	}
	// The stale record was counted when it connected, and this connect
	// counted its own: one record stands where two were counted.
	n.release(ctx, c.OwnerID, 1)
	n.log.InfoContext(ctx, "replaced stale connection", "owner", c.OwnerID, "clientId", c.ClientID, "staleConnectionId", old.ConnectionID)
	return nil
}

// young reports whether c connected within the connect grace period.
func (n *Notifier) young(c store.Connection) bool {
	return n.cfg.Now().Sub(c.ConnectedAt) < n.cfg.ConnectGrace
}

// Disconnect unregisters a connection. A connection with no record (never
// registered, or already cleaned up) is not an error.
func (n *Notifier) Disconnect(ctx context.Context, connectionID string) error {
	c, err := n.store.DeleteConnection(ctx, connectionID)
	if errors.Is(err, store.ErrNotFound) {
		n.log.InfoContext(ctx, "disconnect of unregistered connection", "connectionId", connectionID)
		return nil
	}
	if err != nil {
		return err // the store's error names the operation and the connection
	}
	n.release(ctx, c.OwnerID, 1)
	n.cfg.Metrics.Disconnected()
	n.log.InfoContext(ctx, "disconnected", "owner", c.OwnerID, "clientId", c.ClientID, "connectionId", connectionID)
	return nil
}

// Result counts the outcome of one publish over the owner's connections.
type Result struct {
	// ID is the event's id; Seq its number among the owner's owner-wide
	// events (0 for an event to one client, or without a history).
	ID  string `json:"id"`
	Seq int64  `json:"seq,omitempty"`
	// Duplicate says the trigger record was published before (same id):
	// the event went out again with its first seq, as no new event.
	Duplicate bool `json:"duplicate,omitempty"`

	Delivered int `json:"delivered"`
	// Gone connections answered 410; their records were removed.
	Gone int `json:"gone"`
	// Connecting connections answered 410 within the connect grace: most
	// likely still in their handshake, so neither delivered nor removed.
	Connecting int `json:"connecting"`
	// Failed pushes failed for another reason (throttled past the retries,
	// 5xx, deadline). The caller decides whether to retry the event.
	Failed int `json:"failed"`
}

// Publish sends ev to every live connection of ownerID, or only to clientID's
// when it is not empty. id identifies the trigger record the event comes
// from (the same on a redelivery of the record); empty gives a fresh id.
//
// An owner-wide event is numbered and kept in the owner's history first (the
// store's, when it keeps one), so a client that reconnects can resume from
// it; a redelivered record goes out again with its first number, never as a
// second event. An event for one client carries an id but no number and is
// not kept.
//
// The event is encoded once, whatever the number of connections. A
// connection that is gone has its record removed; one that fails otherwise
// is counted and logged, and does not stop the others. The returned error is
// for what stops the whole publish: an invalid or oversized event, or a
// store failure.
func (n *Notifier) Publish(ctx context.Context, ownerID, clientID, id string, ev event.Event) (Result, error) {
	return n.publish(ctx, ownerID, clientID, id, ev, false)
}

// publish is Publish; once leaves out the pushes of an owner-wide event
// whose id the history holds already (PublishOnce).
func (n *Notifier) publish(ctx context.Context, ownerID, clientID, id string, ev event.Event, once bool) (Result, error) {
	if clientID == "" && n.history != nil && n.ordered != nil {
		// Local mode: numbering and queueing under the owner's lock, so
		// every connection gets the owner's events in seq order, and a
		// resume (which takes the same lock) sees exactly what each
		// connection got live.
		unlock := n.owners.lock(ownerID)
		defer unlock()
	}
	p, err := n.prepare(ctx, ownerID, clientID, id, ev)
	if err != nil {
		return Result{}, err
	}
	if once && p.res.Duplicate {
		return p.res.held(p.held, p.sent)
	}
	conns, whole, err := n.publishList(ctx, ownerID)
	if err != nil {
		return Result{}, err // the store's error names the operation and the owner
	}
	if !whole {
		n.handOff(ctx, &p, conns)
		return p.res, nil
	}
	n.send(ctx, &p, conns)
	return p.res, nil
}

// prepared is an event ready to go out: encoded once, and numbered and kept
// in its owner's history when it is owner-wide.
type prepared struct {
	ownerID, clientID string
	kind              event.Type
	data              []byte // as every connection gets it
	res               Result
	start             time.Time
	// held is the history's event when the id was held already (a
	// duplicate), sent the event as this publish encoded it: PublishOnce
	// compares them.
	held store.Event
	sent []byte
}

// prepare is the first half of a publish: the event encoded, checked
// against the message limit and, owner-wide, recorded. Its error is a
// CodeInvalid one for an event that can never be sent, else the store's.
func (n *Notifier) prepare(ctx context.Context, ownerID, clientID, id string, ev event.Event) (prepared, error) {
	p := prepared{ownerID: ownerID, clientID: clientID, kind: ev.Kind(), start: time.Now()}
	data, err := event.Marshal(ev)
	if err != nil {
		return p, Errorf(CodeInvalid, "%v", err)
	}
	if id == "" {
		id = newEventID()
	}
	owned := clientID == "" && n.history != nil
	// The size is checked before the event is numbered and kept: one that
	// cannot be sent must not be replayed either. Its number is not known
	// yet, so it counts at its longest.
	var longestSeq int64
	if owned {
		longestSeq = math.MaxInt64
	}
	if size := len(event.Stamp(data, id, longestSeq)); size > n.cfg.MaxMessageBytes {
		return p, Errorf(CodeInvalid, "event is %d bytes, over the %d-byte message limit", size, n.cfg.MaxMessageBytes)
	}
	p.res = Result{ID: id}
	if owned {
		now := n.cfg.Now()
		rec, dup, err := n.history.RecordEvent(ctx, store.Event{
			OwnerID: ownerID, ID: id, Type: string(ev.Kind()), JobID: event.JobOf(ev),
			Body: data, ExpiresAt: now.Add(n.cfg.HistoryTTL),
		}, n.cfg.HistoryMaxEvents, now)
		if err != nil {
			return p, fmt.Errorf("record event %s of %s: %w", id, ownerID, err)
		}
		if dup {
			p.held, p.sent = rec, data
		}
		data, p.res.Seq, p.res.Duplicate = rec.Body, rec.Seq, dup
	}
	p.data = event.Stamp(data, id, p.res.Seq)
	return p, nil
}

// send is the second half: p pushed to conns, the owner's live records
// listed after p was recorded (or only to p's client's among them), and
// the outcome counted, reported and logged. It returns the connections
// found gone.
func (n *Notifier) send(ctx context.Context, p *prepared, conns []store.Connection) map[string]bool {
	if p.clientID != "" {
		conns = slices.DeleteFunc(slices.Clone(conns), func(c store.Connection) bool { return c.ClientID != p.clientID })
	}
	gone := n.fanOut(ctx, conns, p.data, p.res.Seq, &p.res)
	n.report(ctx, p)
	return gone
}

// report counts and logs p's outcome, sent from here or handed off.
func (n *Notifier) report(ctx context.Context, p *prepared) {
	res := p.res
	n.cfg.Metrics.Published(Publication{Type: p.kind, Path: PathOf(ctx), Result: res,
		Bytes: int64(len(p.data)) * int64(res.Delivered), Duration: time.Since(p.start)})
	level := slog.LevelInfo
	if !res.Duplicate && res.Failed == 0 && res.Gone == 0 && res.Connecting == 0 {
		level = n.cfg.CleanPublishLevel
	}
	n.log.Log(ctx, level, "published", publishedAttrs(p)...)
}

// publishedAttrs are the attributes of a publish's log line. The ones that
// are nearly always empty, false or zero are left out then: the line is
// written for every event, and CloudWatch Logs charges by the byte (a
// quarter of this line's bytes were those).
func publishedAttrs(p *prepared) []any {
	res := p.res
	attrs := []any{"owner", p.ownerID, "type", string(p.kind), "id", res.ID, "seq", res.Seq, "delivered", res.Delivered}
	for _, a := range []struct {
		key  string
		val  any
		zero bool
	}{
		{"clientId", p.clientID, p.clientID == ""},
		{"duplicate", res.Duplicate, !res.Duplicate},
		{"gone", res.Gone, res.Gone == 0},
		{"connecting", res.Connecting, res.Connecting == 0},
		{"failed", res.Failed, res.Failed == 0},
	} {
		if !a.zero {
			attrs = append(attrs, a.key, a.val)
		}
	}
	return attrs
}

// fanOutWorkers is how many goroutines post a fan-out: Concurrency, or none
// but the publisher's own for an ordered pusher, whose posts only queue.
func (n *Notifier) fanOutWorkers() int {
	if n.ordered != nil {
		return 0
	}
	return n.cfg.Concurrency
}

// fanOut posts data to conns, Concurrency at a time, and counts the outcome
// in res. seq is the event's number (0: none), for an ordered pusher. It
// returns the connections that are gone (answered 410 past the connect
// grace), nil if none.
func (n *Notifier) fanOut(ctx context.Context, conns []store.Connection, data []byte, seq int64, res *Result) map[string]bool {
	var delivered, gone, connecting, failed, removed atomic.Int64
	var goneMu sync.Mutex
	var goneIDs map[string]bool
	post := n.pusher.Post
	if n.ordered != nil && seq != 0 {
		post = func(ctx context.Context, connectionID string, data []byte) error {
			return n.ordered.PostEvent(ctx, connectionID, data, seq)
		}
	}
	g := newWorkers(n.fanOutWorkers())
	for _, c := range conns {
		g.Go(func() {
			err := post(ctx, c.ConnectionID, data)
			switch {
			case err == nil:
				delivered.Add(1)
			case errors.Is(err, ErrGone) && n.young(c):
				connecting.Add(1)
				n.log.InfoContext(ctx, "push to connection still connecting", "owner", c.OwnerID, "clientId", c.ClientID, "connectionId", c.ConnectionID)
			case errors.Is(err, ErrGone):
				gone.Add(1)
				goneMu.Lock()
				if goneIDs == nil {
					goneIDs = map[string]bool{}
				}
				goneIDs[c.ConnectionID] = true
				goneMu.Unlock()
				if ok, err := n.store.RemoveClient(ctx, c.OwnerID, c.ClientID, c.ConnectionID); err != nil {
					n.log.WarnContext(ctx, "remove gone connection", "owner", c.OwnerID, "clientId", c.ClientID, "connectionId", c.ConnectionID, "err", err)
				} else if ok {
					removed.Add(1)
				}
			default:
				failed.Add(1)
				n.log.WarnContext(ctx, "push failed", "owner", c.OwnerID, "clientId", c.ClientID, "connectionId", c.ConnectionID, "err", err)
			}
		})
	}
	g.Wait() // one connection's failure never stops the others
	if k := int(removed.Load()); k > 0 {
		// One write of the owner's count for all the records removed: a
		// fan-out that meets thousands of gone connections (after a deploy
		// or a network blip) would otherwise write that one item thousands
		// of times.
		n.release(ctx, conns[0].OwnerID, k)
	}
	res.Delivered, res.Gone = int(delivered.Load()), int(gone.Load())
	res.Connecting, res.Failed = int(connecting.Load()), int(failed.Load())
	return goneIDs
}
