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
type Store struct {
	mu     sync.Mutex
	byKey  map[clientKey]store.Connection
	byConn map[string]clientKey
	keys   map[string]auth.Key
}

var (
	_ notify.Store  = (*Store)(nil)
	_ auth.KeyStore = (*Store)(nil)
)

// New returns an empty Store.
func New() *Store {
	return &Store{
		byKey:  make(map[clientKey]store.Connection),
		byConn: make(map[string]clientKey),
		keys:   make(map[string]auth.Key),
	}
}

// PutConnection implements notify.Store.
func (s *Store) PutConnection(_ context.Context, c store.Connection, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := clientKey{c.OwnerID, c.ClientID}
	if old, ok := s.byKey[k]; ok {
		if !old.Expired(now) {
			return &store.ClientTakenError{Existing: old}
		}
		delete(s.byConn, old.ConnectionID)
	}
	s.put(k, c)
	return nil
}

// ReplaceConnection implements notify.Store.
func (s *Store) ReplaceConnection(_ context.Context, c store.Connection, oldConnectionID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := clientKey{c.OwnerID, c.ClientID}
	old, ok := s.byKey[k]
	if !ok || old.ConnectionID != oldConnectionID {
		return store.ErrConditionFailed
	}
	delete(s.byConn, old.ConnectionID)
	s.put(k, c)
	return nil
}

func (s *Store) put(k clientKey, c store.Connection) {
	s.byKey[k] = c
	s.byConn[c.ConnectionID] = k
}

// DeleteConnection implements notify.Store.
func (s *Store) DeleteConnection(_ context.Context, connectionID string) (store.Connection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.byConn[connectionID]
	if !ok {
		return store.Connection{}, store.ErrNotFound
	}
	c := s.byKey[k]
	delete(s.byConn, connectionID)
	delete(s.byKey, k)
	return c, nil
}

// RemoveClient implements notify.Store.
func (s *Store) RemoveClient(_ context.Context, ownerID, clientID, connectionID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := clientKey{ownerID, clientID}
	if c, ok := s.byKey[k]; ok && c.ConnectionID == connectionID {
		delete(s.byConn, connectionID)
		delete(s.byKey, k)
	}
	return nil
}

// ListConnections implements notify.Store. Records come in client id order,
// as a DynamoDB Query on the owner's partition returns them.
func (s *Store) ListConnections(_ context.Context, ownerID string, now time.Time) ([]store.Connection, error) {
	s.mu.Lock()
	var out []store.Connection
	for k, c := range s.byKey {
		if k.owner == ownerID && !c.Expired(now) {
			out = append(out, c)
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out, nil
}

// Len returns the number of connection records, expired or not.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byKey)
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
