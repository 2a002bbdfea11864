package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// keyMap is a KeyStore over a map, with an optional failure.
type keyMap struct {
	keys map[string]Key
	err  error
}

func (m keyMap) LookupKey(_ context.Context, hash string) (Key, error) {
	if m.err != nil {
		return Key{}, m.err
	}
	k, ok := m.keys[hash]
	if !ok {
		return Key{}, ErrNotFound
	}
	return k, nil
}

func TestAuthenticate(t *testing.T) {
	good, revoked := "wsn_good", "wsn_revoked"
	store := keyMap{keys: map[string]Key{
		Hash(good):    {Hash: Hash(good), OwnerID: "acct_42"},
		Hash(revoked): {Hash: Hash(revoked), OwnerID: "acct_7", Revoked: true},
	}}
	a := NewAuthenticator(store)
	ctx := context.Background()

	t.Run("a good key gives its owner", func(t *testing.T) {
		owner, err := a.Authenticate(ctx, good)
		if err != nil || owner != "acct_42" {
			t.Fatalf("Authenticate = %q, %v", owner, err)
		}
	})
	for name, key := range map[string]string{
		"a missing key":         "",
		"an unknown key":        "wsn_unknown",
		"a revoked key":         revoked,
		"the hash of a key":     Hash(good),
		"a key with a new line": good + "\n",
	} {
		t.Run(name+" is unauthorized", func(t *testing.T) {
			owner, err := a.Authenticate(ctx, key)
			if !errors.Is(err, ErrUnauthorized) || owner != "" {
				t.Fatalf("Authenticate = %q, %v; want ErrUnauthorized", owner, err)
			}
		})
	}
	t.Run("a store failure is not mistaken for a bad key", func(t *testing.T) {
		broken := NewAuthenticator(keyMap{err: errors.New("throttled")})
		_, err := broken.Authenticate(ctx, good)
		if err == nil || errors.Is(err, ErrUnauthorized) {
			t.Fatalf("err = %v, want the store's error", err)
		}
		if strings.Contains(err.Error(), good) {
			t.Fatalf("error %q contains the key", err)
		}
	})
}

func TestHashIsHexSHA256(t *testing.T) {
	// sha256("abc"), from FIPS 180-2.
	if got := Hash("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("Hash(abc) = %s", got)
	}
	if got := Prefix(Hash("abc")); got != "ba7816bf8f01" {
		t.Fatalf("Prefix = %s", got)
	}
}

func TestNewKeyIsRandomAndURLSafe(t *testing.T) {
	a, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewKey()
	if a == b {
		t.Fatal("two keys are equal")
	}
	if !strings.HasPrefix(a, "wsn_") || len(a) != 4+43 || strings.ContainsAny(a, "+/=?&%") {
		t.Fatalf("key %q is not 'wsn_' and 43 URL-safe characters", a)
	}
}

func TestNewKeyRecordHoldsTheHashNeverTheKey(t *testing.T) {
	now := time.Date(2026, 11, 26, 11, 15, 30, 0, time.FixedZone("CET", 3600))
	k := NewKeyRecord("wsn_secret", "acct_42", "web app", now)
	want := Key{Hash: Hash("wsn_secret"), OwnerID: "acct_42", Name: "web app", CreatedAt: now.UTC()}
	if k != want {
		t.Fatalf("NewKeyRecord = %+v, want %+v", k, want)
	}
	if k.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt is in %v, want UTC", k.CreatedAt.Location())
	}
	if strings.Contains(fmt.Sprintf("%+v", k), "wsn_secret") {
		t.Error("the record holds the key")
	}
}
