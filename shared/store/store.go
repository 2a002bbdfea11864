// Package store holds the records the service keeps: one per live client
// connection. Implementations live in subpackages (memory, dynamo) and pass
// the same contract suite (storetest).
package store

import (
	"errors"
	"fmt"
	"time"
)

// Connection records one live WebSocket connection of one client of one owner.
// (OwnerID, ClientID) is unique among live records.
type Connection struct {
	OwnerID      string
	ClientID     string
	ConnectionID string
	ConnectedAt  time.Time
	// KeyID names the API key the connection authenticated with (the
	// Prefix of its hash, never the key), so that revoking the key finds
	// the connections to close. Empty for a signed token.
	KeyID string
	// TokenExpiresAt is when the signed token the connection opened with
	// expires (whole seconds, as the token states it); zero for an API key.
	// Past it, the connection may be closed to make room under its owner's
	// cap.
	TokenExpiresAt time.Time
	// ExpiresAt is past API Gateway's 2-hour connection limit; a record past
	// it is stale whether or not anything has deleted it yet.
	ExpiresAt time.Time
}

// Expired reports whether the record is stale at now.
func (c Connection) Expired(now time.Time) bool { return !now.Before(c.ExpiresAt) }

// TokenExpired reports whether the connection opened with a signed token
// that has expired at now. A connection opened with an API key never has.
func (c Connection) TokenExpired(now time.Time) bool {
	return !c.TokenExpiresAt.IsZero() && !now.Before(c.TokenExpiresAt)
}

// ErrNotFound is returned when no live record matches.
var ErrNotFound = errors.New("connection not found")

// ErrConditionFailed is returned when a conditional write lost its race: the
// record it was conditioned on is no longer there as it was.
var ErrConditionFailed = errors.New("connection record changed concurrently")

// ErrOwnerFull is returned by ReserveConnection when the owner's count of
// connections has reached the cap it was given.
var ErrOwnerFull = errors.New("owner has reached its connection cap")

// ClientTakenError is returned by Put when a live record already holds the
// owner's client id. Existing is that record, so the caller can decide whether
// it is stale (its connection gone) and replace it.
type ClientTakenError struct {
	Existing Connection
}

func (e *ClientTakenError) Error() string {
	return fmt.Sprintf("client %s of owner %s is held by connection %s", e.Existing.ClientID, e.Existing.OwnerID, e.Existing.ConnectionID)
}

// Event is one owner-wide event as the history keeps it, for replay on
// resume: its place in the owner's sequence, its id, and its JSON as it was
// published, without the id and seq fields the wire form adds.
type Event struct {
	OwnerID string
	// Seq is the event's number among its owner's owner-wide events: 1, 2,
	// 3, … Set by the store when the event is recorded. A replay skips the
	// seq of a job_progress that a later event of its job superseded (the
	// job's state is that later event), and the rare seq that no event got
	// (see the DynamoDB store's RecordEvent).
	Seq int64
	// ID is stable for one trigger record: a redelivery of the record
	// carries the same id and gets back the same Seq.
	ID string
	// Type and JobID let the store answer for a job's current state.
	Type  string
	JobID string
	// Body is the event's JSON, as event.Marshal encoded it.
	Body []byte
	// ExpiresAt is when the event leaves the history (its time to live).
	ExpiresAt time.Time
}

// Window is what an owner's history holds at a moment: the head (the last
// seq given, 0 before any) and the oldest seq it still accounts for: every
// event from Oldest on is held, or superseded by a held event of its job
// (Head+1 when the history has dropped everything, by count or by time).
type Window struct {
	Head   int64
	Oldest int64
}
