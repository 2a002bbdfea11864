// Package memory is the embedded store of local mode: connection records and
// API keys in maps behind one mutex, with the same conditional semantics as
// the DynamoDB store (the storetest contract suite runs on both).
package memory

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/store"
)

type clientKey struct{ owner, client string }

// Store keeps connections and keys in memory. The zero value is not usable; call New.
//
// Connections are indexed by owner, as the DynamoDB table is partitioned by
// owner, so a publish reads its owner's records and not everyone's.
type Store struct {
	mu      sync.Mutex
	byOwner map[string]map[string]store.Connection // owner -> client id -> record
	byConn  map[string]clientKey
	keys    map[string]auth.Key
	history map[string]*ownerHistory
	counts  map[string]int // owner -> connections counted (notify.ConnectionCounter)
}

var (
	_ notify.Store      = (*Store)(nil)
	_ notify.History    = (*Store)(nil)
	_ notify.FirstPager = (*Store)(nil)
	_ auth.KeyStore     = (*Store)(nil)
)

// New returns an empty Store.
func New() *Store {
	return &Store{
		byOwner: make(map[string]map[string]store.Connection),
		byConn:  make(map[string]clientKey),
		keys:    make(map[string]auth.Key),
		history: make(map[string]*ownerHistory),
		counts:  make(map[string]int),
	}
}

// PutConnection implements notify.Store.
func (s *Store) PutConnection(_ context.Context, c store.Connection, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.get(c.OwnerID, c.ClientID); ok {
		if !old.Expired(now) {
			return &store.ClientTakenError{Existing: old}
		}
		delete(s.byConn, old.ConnectionID)
	}
	s.put(c)
	return nil
}

// ReplaceConnection implements notify.Store.
func (s *Store) ReplaceConnection(_ context.Context, c store.Connection, oldConnectionID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.get(c.OwnerID, c.ClientID)
	if !ok || old.ConnectionID != oldConnectionID {
		return store.ErrConditionFailed
	}
	delete(s.byConn, old.ConnectionID)
	s.put(c)
	return nil
}

func (s *Store) get(owner, client string) (store.Connection, bool) {
	c, ok := s.byOwner[owner][client]
	return c, ok
}

func (s *Store) put(c store.Connection) {
	clients := s.byOwner[c.OwnerID]
	if clients == nil {
		clients = make(map[string]store.Connection)
		s.byOwner[c.OwnerID] = clients
	}
	clients[c.ClientID] = c
	s.byConn[c.ConnectionID] = clientKey{c.OwnerID, c.ClientID}
}

// remove deletes the record of k, which names connectionID.
func (s *Store) remove(k clientKey, connectionID string) {
	delete(s.byConn, connectionID)
	delete(s.byOwner[k.owner], k.client)
	if len(s.byOwner[k.owner]) == 0 {
		delete(s.byOwner, k.owner)
	}
}

// DeleteConnection implements notify.Store.
func (s *Store) DeleteConnection(_ context.Context, connectionID string) (store.Connection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.find(connectionID)
	if !ok {
		return store.Connection{}, store.ErrNotFound
	}
	s.remove(clientKey{c.OwnerID, c.ClientID}, connectionID)
	return c, nil
}

// find returns the record naming connectionID. s.mu must be held.
func (s *Store) find(connectionID string) (store.Connection, bool) {
	k, ok := s.byConn[connectionID]
	if !ok {
		return store.Connection{}, false
	}
	return s.get(k.owner, k.client)
}

// FindConnection implements notify.Store.
func (s *Store) FindConnection(_ context.Context, connectionID string) (store.Connection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.find(connectionID); ok {
		return c, nil
	}
	return store.Connection{}, store.ErrNotFound
}

// RemoveClient implements notify.Store.
func (s *Store) RemoveClient(_ context.Context, ownerID, clientID, connectionID string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.get(ownerID, clientID); ok && c.ConnectionID == connectionID {
		s.remove(clientKey{ownerID, clientID}, connectionID)
		return true, nil
	}
	return false, nil
}

// ReserveConnection implements notify.ConnectionCounter.
func (s *Store) ReserveConnection(_ context.Context, ownerID string, max int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	held := s.counts[ownerID]
	if held >= max {
		return held, store.ErrOwnerFull
	}
	s.counts[ownerID]++
	return held, nil
}

// ReleaseConnections implements notify.ConnectionCounter.
func (s *Store) ReleaseConnections(_ context.Context, ownerID string, k int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch n := s.counts[ownerID]; {
	case n > k:
		s.counts[ownerID] = n - k
	default:
		delete(s.counts, ownerID) // zero: an owner that left holds no memory
	}
	return nil
}

// ConnectionCount implements notify.ConnectionCounter.
func (s *Store) ConnectionCount(_ context.Context, ownerID string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[ownerID], nil
}

// CorrectConnectionCount implements notify.ConnectionCounter.
func (s *Store) CorrectConnectionCount(_ context.Context, ownerID string, was, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts[ownerID] != was {
		return store.ErrConditionFailed
	}
	if n > 0 {
		s.counts[ownerID] = n
	} else {
		delete(s.counts, ownerID)
	}
	return nil
}

// ListConnections implements notify.Store. Records come in client id order,
// as a DynamoDB Query on the owner's partition returns them.
func (s *Store) ListConnections(_ context.Context, ownerID string, now time.Time) ([]store.Connection, error) {
	s.mu.Lock()
	var out []store.Connection
	for _, c := range s.byOwner[ownerID] {
		if !c.Expired(now) {
			out = append(out, c)
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out, nil
}

// ListConnectionsUpTo implements notify.FirstPager. Expired records not
// yet removed count against limit, as the DynamoDB store's one page does.
func (s *Store) ListConnectionsUpTo(_ context.Context, ownerID string, limit int, now time.Time) ([]store.Connection, int, bool, error) {
	s.mu.Lock()
	records, counted := s.byOwner[ownerID], s.counts[ownerID]
	var conns []store.Connection
	for _, c := range records {
		if !c.Expired(now) {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	sort.Slice(conns, func(i, j int) bool { return conns[i].ClientID < conns[j].ClientID })
	if len(records) > limit {
		return conns[:min(len(conns), limit+1)], counted, false, nil
	}
	return conns, counted, true, nil
}

// Len returns the number of connection records, expired or not.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, clients := range s.byOwner {
		n += len(clients)
	}
	return n
}

// LookupKey implements auth.KeyStore.
func (s *Store) LookupKey(_ context.Context, hash string) (auth.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[hash]
	if !ok {
		return auth.Key{}, auth.ErrNotFound
	}
	return k, nil
}

// PutKey stores a key record (by its hash), replacing one with the same hash.
func (s *Store) PutKey(_ context.Context, k auth.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[k.Hash] = k
	return nil
}

// RevokeKey marks the key with the given hash revoked; auth.ErrNotFound if there is none.
func (s *Store) RevokeKey(_ context.Context, hash string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[hash]
	if !ok {
		return auth.ErrNotFound
	}
	k.Revoked = true
	s.keys[hash] = k
	return nil
}

// ListKeys returns every key record, ordered by hash.
func (s *Store) ListKeys(_ context.Context) ([]auth.Key, error) {
	s.mu.Lock()
	out := make([]auth.Key, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, k)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Hash < out[j].Hash })
	return out, nil
}
