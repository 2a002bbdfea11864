package auth

import (
	"context"
	"fmt"
	"time"
)

// Identity is what a connect's token proves.
type Identity struct {
	// OwnerID is the owner the token belongs to.
	OwnerID string
	// RateKey names the token's connect rate-limit bucket. For an API key
	// it is the key's hash: a leaked or runaway key is slowed on its own.
	// For a signed token it is its owner, "sub:" and the owner id: each
	// browser session brings a fresh token, so a bucket per token would
	// never fill, while one per owner bounds what any backend mints for
	// that owner.
	RateKey string
	// KeyID names the API key the token is: its hash's Prefix, which a
	// connection's record keeps so that revoking the key can find and
	// close its connections. Empty for a signed token, which names no key.
	KeyID string
	// TokenExpiresAt is a signed token's expiry (its exp); zero for an API
	// key. A connection opened with the token outlives it, but past it the
	// connection yields its place under the owner's cap to a new connect
	// (see notify.Notifier.Connect).
	TokenExpiresAt time.Time
}

// Refusal is an ErrUnauthorized that says why, for the service's log. The
// client is shown ErrUnauthorized's one answer whatever the reason. A reason
// never contains the token.
type Refusal struct {
	Reason string
}

func (r *Refusal) Error() string { return "unauthorized: " + r.Reason }

// Is makes errors.Is(r, ErrUnauthorized) true.
func (r *Refusal) Is(target error) bool { return target == ErrUnauthorized }

func refuse(format string, args ...any) *Refusal {
	return &Refusal{Reason: fmt.Sprintf(format, args...)}
}

// WithTokens makes a accept signed tokens checked by v besides API keys, and
// returns a. A nil v leaves signed tokens refused.
func (a *Authenticator) WithTokens(v *TokenVerifier) *Authenticator {
	a.tokens = v
	return a
}

// Identify checks token, an API key or a signed token (told apart by
// IsSignedToken), and returns who it belongs to. A token refused for any
// reason gives a *Refusal; a store or secret source failure gives that
// failure's error.
func (a *Authenticator) Identify(ctx context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, refuse("no token")
	}
	if !IsSignedToken(token) {
		hash := Hash(token) // the key's lookup and its rate key
		owner, err := a.authenticateKey(ctx, hash)
		if err != nil {
			return Identity{}, err
		}
		return Identity{OwnerID: owner, RateKey: hash, KeyID: Prefix(hash)}, nil
	}
	if a.tokens == nil {
		return Identity{}, refuse("signed token, and signed tokens are not enabled (no token secret configured)")
	}
	owner, expires, err := a.tokens.verify(ctx, token)
	if err != nil {
		return Identity{}, err
	}
	return Identity{OwnerID: owner, RateKey: "sub:" + owner, TokenExpiresAt: expires}, nil
}
