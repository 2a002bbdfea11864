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
	// ExpiresAt is past API Gateway's 2-hour connection limit; a record past
	// it is stale whether or not anything has deleted it yet.
	ExpiresAt time.Time
}

// Expired reports whether the record is stale at now.
func (c Connection) Expired(now time.Time) bool { return !now.Before(c.ExpiresAt) }

// ErrNotFound is returned when no live record matches.
var ErrNotFound = errors.New("connection not found")

// ErrConditionFailed is returned when a conditional write lost its race: the
// record it was conditioned on is no longer there as it was.
var ErrConditionFailed = errors.New("connection record changed concurrently")

// ClientTakenError is returned by Put when a live record already holds the
// owner's client id. Existing is that record, so the caller can decide whether
// it is stale (its connection gone) and replace it.
type ClientTakenError struct {
	Existing Connection
}

func (e *ClientTakenError) Error() string {
	return fmt.Sprintf("client %s of owner %s is held by connection %s", e.Existing.ClientID, e.Existing.OwnerID, e.Existing.ConnectionID)
}
