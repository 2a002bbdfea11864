// Package auth turns an API key into the owner it belongs to. Keys are held
// only as SHA-256 hashes: the clear key exists in the client's hands and, for
// one request, in memory here; it is never stored or logged.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Key is the stored record of one API key. It holds the key's hash, never the key.
type Key struct {
	Hash      string // hex SHA-256 of the key
	OwnerID   string
	Name      string
	CreatedAt time.Time
	Revoked   bool
}

// NewKeyRecord returns the record of a new API key of ownerID, named name,
// created at now: the key's hash, never the key. The key tool and local mode
// both build their records here, so a stored key looks the same whoever
// wrote it.
func NewKeyRecord(key, ownerID, name string, now time.Time) Key {
	return Key{Hash: Hash(key), OwnerID: ownerID, Name: name, CreatedAt: now.UTC()}
}

// ErrNotFound is returned by a KeyStore that holds no key with the given hash.
var ErrNotFound = errors.New("key not found")

// ErrUnauthorized is returned for a missing, unknown or revoked key, or a
// refused signed token. The cases are deliberately one answer to the client;
// a *Refusal carrying it says which for the log.
var ErrUnauthorized = errors.New("unauthorized")

// KeyStore looks up a key record by the key's hash.
type KeyStore interface {
	LookupKey(ctx context.Context, hash string) (Key, error)
}

// Hash returns the hex SHA-256 of a key, the form in which keys are stored.
func Hash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// Prefix is how a key is referred to in listings and logs: the first 12 hex
// digits of its hash, enough to tell keys apart and useless to an attacker.
func Prefix(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

// NewKey returns a fresh random API key: "wsn_" and 43 URL-safe characters
// (256 bits), safe in a query string without escaping.
func NewKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	return "wsn_" + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Authenticator checks API keys against a KeyStore and, when given a
// TokenVerifier (WithTokens), signed tokens.
type Authenticator struct {
	keys   KeyStore
	tokens *TokenVerifier // nil: signed tokens refused
}

// NewAuthenticator returns an Authenticator over keys.
func NewAuthenticator(keys KeyStore) *Authenticator { return &Authenticator{keys: keys} }

// Authenticate returns the owner of key, an API key or a signed token (see
// Identify). A missing, unknown or revoked key, or a refused token, gives an
// error that errors.Is ErrUnauthorized; a store failure gives a wrapped
// store error.
func (a *Authenticator) Authenticate(ctx context.Context, key string) (string, error) {
	id, err := a.Identify(ctx, key)
	return id.OwnerID, err
}

// authenticateKey returns the owner of the API key whose Hash is hash.
func (a *Authenticator) authenticateKey(ctx context.Context, hash string) (string, error) {
	k, err := a.keys.LookupKey(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return "", refuse("unknown API key %s", Prefix(hash))
	}
	if err != nil {
		return "", fmt.Errorf("look up key %s: %w", Prefix(hash), err)
	}
	// The lookup is by hash, so the record matches by construction; compare in
	// constant time anyway so that a store which matched loosely (a prefix
	// index, a case-folding backend) cannot leak how close a guess came.
	if subtle.ConstantTimeCompare([]byte(k.Hash), []byte(hash)) != 1 {
		return "", refuse("unknown API key %s", Prefix(hash))
	}
	if k.Revoked {
		return "", refuse("revoked API key %s", Prefix(hash))
	}
	return k.OwnerID, nil
}
