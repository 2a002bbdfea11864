package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsnotify/wsnotify/shared/event"
)

// FuzzVerifyToken feeds arbitrary text to the token check. Nothing may
// panic, every refusal is a *Refusal whose reason does not quote the input,
// and the only texts accepted are the tokens the test signed itself: no
// change to a token's header, claims or signature survives the check.
func FuzzVerifyToken(f *testing.F) {
	v := testVerifier()
	signed := map[string]string{} // token → owner
	for owner, secret := range map[string][]byte{"acct_42": secretNew, "acct_7": secretOld} {
		token, err := MintToken(secret, owner, 10*time.Minute, tokenNow)
		if err != nil {
			f.Fatal(err)
		}
		signed[token] = owner
		f.Add(token)
	}
	f.Add(sign(f, jwt.SigningMethodHS512, secretNew, claimsFor("acct_42")))
	f.Add(sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claimsFor("acct_42")))
	f.Add("wsn_key.with.dots")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		owner, err := v.Verify(context.Background(), token)
		if err == nil {
			if want, ok := signed[token]; !ok || owner != want {
				t.Fatalf("accepted %q as %q: not a token the test signed", token, owner)
			}
			return
		}
		var refusal *Refusal
		if !errors.As(err, &refusal) || !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("err = %v, want a Refusal", err)
		}
		for _, part := range strings.Split(token, ".") {
			if len(part) >= 12 && strings.Contains(refusal.Reason, part) {
				t.Fatalf("reason %q quotes the token", refusal.Reason)
			}
		}
	})
}

// FuzzTokenClaims signs arbitrary claims with the right secret, as a buggy
// or hostile backend could, and checks that what the service accepts keeps
// its rules: a valid owner id in sub, an exp present and within the maximum
// lifetime, nbf and iat not ahead of the clock beyond the leeway.
func FuzzTokenClaims(f *testing.F) {
	v := testVerifier()
	f.Add(`{"sub":"acct_42","exp":1893553745}`)
	f.Add(`{"sub":"acct_42","exp":1893553745,"nbf":1893553445,"iat":1893553445}`)
	f.Add(`{"sub":"acct_42","exp":1.8935537459e9}`)
	f.Add(`{"sub":["acct_42"],"exp":1893553745}`)
	f.Add(`{"sub":"acct_42","exp":99999999999999999999}`)
	f.Add(`{"sub":"","exp":"1893553745"}`)
	enc := base64.RawURLEncoding.EncodeToString
	header := enc([]byte(`{"alg":"HS256","typ":"JWT"}`))
	f.Fuzz(func(t *testing.T, claims string) {
		text := header + "." + enc([]byte(claims))
		sig, err := jwt.SigningMethodHS256.Sign(text, secretNew)
		if err != nil {
			t.Fatal(err)
		}
		owner, err := v.Verify(context.Background(), text+"."+enc(sig))
		if err != nil {
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("err = %v, want a refusal", err)
			}
			return
		}
		var c jwt.RegisteredClaims
		if _, _, err := jwt.NewParser().ParseUnverified(text+"."+enc(sig), &c); err != nil {
			t.Fatalf("accepted claims the library cannot read: %v", err)
		}
		leeway := DefaultTokenLeeway
		switch {
		case !event.ValidOwnerID(owner) || owner != c.Subject:
			t.Fatalf("accepted owner %q (sub %q)", owner, c.Subject)
		case c.ExpiresAt == nil || c.ExpiresAt.Before(tokenNow.Add(-leeway)) || c.ExpiresAt.After(tokenNow.Add(DefaultTokenMaxTTL+leeway)):
			t.Fatalf("accepted exp %v at %v", c.ExpiresAt, tokenNow)
		case c.NotBefore != nil && c.NotBefore.After(tokenNow.Add(leeway)):
			t.Fatalf("accepted nbf %v at %v", c.NotBefore, tokenNow)
		case c.IssuedAt != nil && c.IssuedAt.After(tokenNow.Add(leeway)):
			t.Fatalf("accepted iat %v at %v", c.IssuedAt, tokenNow)
		}
	})
}
