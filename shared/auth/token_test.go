package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The tests' clock and secrets. Fixed, so that the tokens they sign, and the
// fuzz seeds made from them, are the same strings on every run.
var (
	tokenNow  = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	secretOld = []byte("old-secret-0123456789abcdefghijklmnopqrstuvwxyz")
	secretNew = []byte("new-secret-0123456789abcdefghijklmnopqrstuvwxyz")
	secretBad = []byte("not-a-secret-of-ours-0123456789abcdefghijklmnop")
)

func testVerifier() *TokenVerifier {
	return NewTokenVerifier(StaticSecrets{secretNew, secretOld}, TokenConfig{Now: func() time.Time { return tokenNow }})
}

// sign returns claims signed with method and key, as any JWT library would.
func sign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claimsFor are valid claims for owner, to be changed one at a time.
func claimsFor(owner string) jwt.MapClaims {
	return jwt.MapClaims{"sub": owner, "iat": tokenNow.Unix(), "exp": tokenNow.Add(10 * time.Minute).Unix()}
}

func with(c jwt.MapClaims, key string, value any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	if value == nil {
		delete(out, key)
	} else {
		out[key] = value
	}
	return out
}

func TestVerifyAcceptsTokensUnderEitherSecret(t *testing.T) {
	v := testVerifier()
	for name, secret := range map[string][]byte{"the signing secret": secretNew, "the previous secret": secretOld} {
		t.Run("a token signed with "+name+" gives its owner", func(t *testing.T) {
			token, err := MintToken(secret, "acct_42", 10*time.Minute, tokenNow)
			if err != nil {
				t.Fatal(err)
			}
			owner, err := v.Verify(context.Background(), token)
			if err != nil || owner != "acct_42" {
				t.Fatalf("Verify = %q, %v; want acct_42", owner, err)
			}
		})
	}
	t.Run("claims within the clock-skew leeway are accepted", func(t *testing.T) {
		for name, c := range map[string]jwt.MapClaims{
			"exp just past":          with(claimsFor("acct_42"), "exp", tokenNow.Add(-5*time.Second).Unix()),
			"nbf just ahead":         with(claimsFor("acct_42"), "nbf", tokenNow.Add(5*time.Second).Unix()),
			"iat just ahead":         with(claimsFor("acct_42"), "iat", tokenNow.Add(5*time.Second).Unix()),
			"exp exactly max ahead":  with(claimsFor("acct_42"), "exp", tokenNow.Add(DefaultTokenMaxTTL).Unix()),
			"no iat (optional)":      with(claimsFor("acct_42"), "iat", nil),
			"an owner with @ and . ": with(claimsFor("ann@example.com"), "sub", "ann@example.com"),
		} {
			token := sign(t, jwt.SigningMethodHS256, secretNew, c)
			if _, err := v.Verify(context.Background(), token); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
}

func TestVerifyRefusals(t *testing.T) {
	v := testVerifier()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := claimsFor("acct_42")
	goodToken := sign(t, jwt.SigningMethodHS256, secretNew, good)
	parts := strings.Split(goodToken, ".")
	otherPayload := strings.Split(sign(t, jwt.SigningMethodHS256, secretBad, claimsFor("acct_7")), ".")[1]
	tests := []struct {
		name, token, reason string
	}{
		{"an expired token", sign(t, jwt.SigningMethodHS256, secretNew, with(good, "exp", tokenNow.Add(-time.Minute).Unix())), "signed token expired"},
		{"a token signed with another secret", sign(t, jwt.SigningMethodHS256, secretBad, good), "signature matches no secret"},
		{"a token whose payload was swapped", parts[0] + "." + otherPayload + "." + parts[2], "signature matches no secret"},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good), "algorithm is not HS256"},
		{"HS512 with the right secret", sign(t, jwt.SigningMethodHS512, secretNew, good), "algorithm is not HS256"},
		{"ES256", sign(t, jwt.SigningMethodES256, ecKey, good), "algorithm is not HS256"},
		{"an unknown alg", fakeToken(`{"alg":"XX256","typ":"JWT"}`, `{"sub":"acct_42"}`), "unknown or no algorithm"},
		{"no alg", fakeToken(`{"typ":"JWT"}`, `{"sub":"acct_42"}`), "unknown or no algorithm"},
		{"no exp", sign(t, jwt.SigningMethodHS256, secretNew, with(good, "exp", nil)), "signed token has no exp"},
		{"exp a day and an hour ahead", sign(t, jwt.SigningMethodHS256, secretNew, with(good, "exp", tokenNow.Add(25*time.Hour).Unix())), "more than the 24h0m0s allowed"},
		{"exp as a string", sign(t, jwt.SigningMethodHS256, secretNew, with(good, "exp", "tomorrow")), "malformed"},
		{"nbf an hour ahead", sign(t, jwt.SigningMethodHS256, secretNew, with(good, "nbf", tokenNow.Add(time.Hour).Unix())), "not valid yet"},
		{"iat an hour ahead", sign(t, jwt.SigningMethodHS256, secretNew, with(good, "iat", tokenNow.Add(time.Hour).Unix())), "issued in the future"},
		{"no sub", sign(t, jwt.SigningMethodHS256, secretNew, with(good, "sub", nil)), "signed token has no sub"},
		{"a sub with a slash", sign(t, jwt.SigningMethodHS256, secretNew, with(good, "sub", "acct/42")), "sub is not an owner id"},
		{"a sub of 129 characters", sign(t, jwt.SigningMethodHS256, secretNew, with(good, "sub", strings.Repeat("a", 129))), "sub is not an owner id"},
		{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2], "malformed"},
		{"a signature spelt another way for the same bytes", parts[0] + "." + parts[1] + "." + respell(parts[2]), "malformed"},
		{"a token of 5,000 bytes", parts[0] + "." + strings.Repeat("A", 5000) + "." + parts[2], "longer than 4096 bytes"},
		{"a header that is not JSON", fakeToken(`not json`, `{}`), "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			owner, err := v.Verify(context.Background(), tt.token)
			var refusal *Refusal
			if !errors.As(err, &refusal) || !errors.Is(err, ErrUnauthorized) || owner != "" {
				t.Fatalf("Verify = %q, %v; want a Refusal", owner, err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("reason %q, want it to say %q", refusal.Reason, tt.reason)
			}
			for _, part := range strings.Split(tt.token, ".") {
				if len(part) > 8 && strings.Contains(refusal.Reason, part) {
					t.Errorf("reason %q quotes the token", refusal.Reason)
				}
			}
		})
	}
}

// respell changes the unused low bits of a base64url segment's last
// character: a lenient decoder reads the same bytes from it.
func respell(seg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[i^1])
}

// fakeToken is a token with the given header and claims and a made-up
// signature, for the shapes no library signs.
func fakeToken(header, claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(claims)) + "." + enc([]byte("signature"))
}

func TestVerifyMaxTTLIsConfigurable(t *testing.T) {
	v := NewTokenVerifier(StaticSecrets{secretNew}, TokenConfig{MaxTTL: time.Hour, Now: func() time.Time { return tokenNow }})
	ok := sign(t, jwt.SigningMethodHS256, secretNew, with(claimsFor("acct_42"), "exp", tokenNow.Add(time.Hour).Unix()))
	if _, err := v.Verify(context.Background(), ok); err != nil {
		t.Errorf("exp 1h ahead with MaxTTL 1h: %v", err)
	}
	far := sign(t, jwt.SigningMethodHS256, secretNew, with(claimsFor("acct_42"), "exp", tokenNow.Add(2*time.Hour).Unix()))
	if _, err := v.Verify(context.Background(), far); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("exp 2h ahead with MaxTTL 1h: %v, want refused", err)
	}
}

func TestVerifyRequiresAudienceAndIssuerWhenConfigured(t *testing.T) {
	scoped := NewTokenVerifier(StaticSecrets{secretNew}, TokenConfig{Audience: "wsnotify", Issuer: "https://app.example.com",
		Now: func() time.Time { return tokenNow }})
	good := with(with(claimsFor("acct_42"), "aud", "wsnotify"), "iss", "https://app.example.com")
	for _, tt := range []struct {
		name   string
		claims jwt.MapClaims
		says   string // "" if accepted
	}{
		{"aud and iss as configured", good, ""},
		{"aud as a list naming this service", with(good, "aud", []string{"billing", "wsnotify"}), ""},
		{"no aud", with(good, "aud", nil), "has no aud"},
		{"another service's aud", with(good, "aud", "billing"), "aud does not name this service"},
		{"no iss", with(good, "iss", nil), "has no iss"},
		{"another issuer", with(good, "iss", "https://evil.example.com"), "iss is not the issuer"},
	} {
		_, err := scoped.Verify(context.Background(), sign(t, jwt.SigningMethodHS256, secretNew, tt.claims))
		switch {
		case tt.says == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.says != "" && (!errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), tt.says)):
			t.Errorf("%s: %v, want a refusal saying %q", tt.name, err, tt.says)
		}
	}
	t.Run("unconfigured, a token without them is accepted", func(t *testing.T) {
		if _, err := testVerifier().Verify(context.Background(), sign(t, jwt.SigningMethodHS256, secretNew, claimsFor("acct_42"))); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("MintToken sets them", func(t *testing.T) {
		token, err := MintToken(secretNew, "acct_42", time.Minute, tokenNow, TokenScope{Audience: "wsnotify", Issuer: "https://app.example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if owner, err := scoped.Verify(context.Background(), token); err != nil || owner != "acct_42" {
			t.Fatalf("Verify = %q, %v", owner, err)
		}
		unscoped, _ := MintToken(secretNew, "acct_42", time.Minute, tokenNow)
		if _, err := scoped.Verify(context.Background(), unscoped); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("a token minted without aud/iss: %v, want refused", err)
		}
	})
}

type failingSecrets struct{}

func (failingSecrets) TokenSecrets(context.Context) ([][]byte, error) {
	return nil, errors.New("secrets manager throttled")
}

func TestVerifyReportsASecretSourceFailureAsAFailureNotARefusal(t *testing.T) {
	v := NewTokenVerifier(failingSecrets{}, TokenConfig{Now: func() time.Time { return tokenNow }})
	token, _ := MintToken(secretNew, "acct_42", time.Minute, tokenNow)
	_, err := v.Verify(context.Background(), token)
	if err == nil || errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "throttled") {
		t.Fatalf("err = %v, want the source's error", err)
	}
}

func TestIdentify(t *testing.T) {
	const key = "wsn_good"
	keys := keyMap{keys: map[string]Key{Hash(key): {Hash: Hash(key), OwnerID: "acct_42"}}}
	withTokens := NewAuthenticator(keys).WithTokens(testVerifier())
	token, _ := MintToken(secretNew, "acct_7", time.Minute, tokenNow)
	ctx := context.Background()

	t.Run("an API key is limited by its hash and named by its prefix", func(t *testing.T) {
		id, err := withTokens.Identify(ctx, key)
		if err != nil || id != (Identity{OwnerID: "acct_42", RateKey: Hash(key), KeyID: Prefix(Hash(key))}) {
			t.Fatalf("Identify = %+v, %v", id, err)
		}
	})
	t.Run("a signed token is limited by its owner, names no key and says when it expires", func(t *testing.T) {
		id, err := withTokens.Identify(ctx, token)
		exp := id.TokenExpiresAt
		id.TokenExpiresAt = time.Time{}
		if err != nil || id != (Identity{OwnerID: "acct_7", RateKey: "sub:acct_7"}) || !exp.Equal(tokenNow.Add(time.Minute)) {
			t.Fatalf("Identify = %+v (expiring %v), %v", id, exp, err)
		}
	})
	t.Run("a signed token is refused when tokens are off", func(t *testing.T) {
		_, err := NewAuthenticator(keys).Identify(ctx, token)
		if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "not enabled") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a token is never looked up as an API key", func(t *testing.T) {
		// Even if a key of that text existed, the token's shape decides.
		shaped := NewAuthenticator(keyMap{keys: map[string]Key{Hash(token): {Hash: Hash(token), OwnerID: "acct_evil"}}})
		if _, err := shaped.Identify(ctx, token); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("err = %v, want refused", err)
		}
	})
	for name, tt := range map[string]struct{ token, reason string }{
		"a missing token": {"", "no token"},
		"an unknown key":  {"wsn_unknown", "unknown API key " + Prefix(Hash("wsn_unknown"))},
	} {
		t.Run(name+" says why", func(t *testing.T) {
			_, err := withTokens.Identify(ctx, tt.token)
			var refusal *Refusal
			if !errors.As(err, &refusal) || refusal.Reason != tt.reason {
				t.Fatalf("err = %v, want reason %q", err, tt.reason)
			}
		})
	}
}

func TestIsSignedToken(t *testing.T) {
	token, _ := MintToken(secretNew, "acct_42", time.Minute, tokenNow)
	key, _ := NewKey()
	for s, want := range map[string]bool{
		token:       true,
		"a.b.c":     true,
		key:         false,
		"a.b":       false,
		"a.b.c.d":   false,
		"a..c":      false,
		".b.c":      false,
		"a.b.":      true, // alg none: refused for its algorithm, not as an unknown key
		"a.b+.c":    false,
		"a.b=.c":    false,
		"a.b/c.d":   false,
		"wsn_x.y.z": true, // not a key the service issues: keys have no dots
		"":          false,
	} {
		if got := IsSignedToken(s); got != want {
			t.Errorf("IsSignedToken(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestSecrets(t *testing.T) {
	t.Run("a JSON array of long strings is read in order", func(t *testing.T) {
		got, err := ParseSecretList([]byte(`["` + string(secretNew) + `", "` + string(secretOld) + `"]`))
		if err != nil || len(got) != 2 || string(got[0]) != string(secretNew) || string(got[1]) != string(secretOld) {
			t.Fatalf("ParseSecretList = %q, %v", got, err)
		}
	})
	for name, data := range map[string]string{
		"a bare string":       `"` + string(secretNew) + `"`,
		"one secret per line": string(secretNew) + "\n" + string(secretOld),
		"an object":           `{"secret":"` + string(secretNew) + `"}`,
		"an empty array":      `[]`,
		"a short secret":      `["` + string(secretNew) + `", "0123456789abcdefghijklmnopqrstu"]`,
		"a number":            `[12345678901234567890123456789012345]`,
	} {
		t.Run(name+" is refused without quoting it", func(t *testing.T) {
			_, err := ParseSecretList([]byte(data))
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "secret-0123") {
				t.Errorf("error %q quotes a secret", err)
			}
		})
	}
	t.Run("the short secret is named by its position", func(t *testing.T) {
		err := CheckSecrets([][]byte{secretNew, []byte("short")})
		if err == nil || !strings.Contains(err.Error(), "token secret 2 of 2 is 5 bytes: at least 32") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestMintTokenRefusesWhatVerifyWouldRefuse(t *testing.T) {
	for name, mint := range map[string]func() (string, error){
		"a short secret":    func() (string, error) { return MintToken([]byte("short"), "acct_42", time.Minute, tokenNow) },
		"an invalid owner":  func() (string, error) { return MintToken(secretNew, "acct/42", time.Minute, tokenNow) },
		"a zero ttl":        func() (string, error) { return MintToken(secretNew, "acct_42", 0, tokenNow) },
		"a negative ttl":    func() (string, error) { return MintToken(secretNew, "acct_42", -time.Minute, tokenNow) },
		"an owner of space": func() (string, error) { return MintToken(secretNew, " ", time.Minute, tokenNow) },
	} {
		if token, err := mint(); err == nil {
			t.Errorf("%s: minted %q", name, token)
		}
	}
}

// TestClockSkewBetweenTheMinterAndTheServiceIsToleratedUpTo10Seconds: the
// backend that mints a token and the service that checks it read different
// clocks. A minter whose clock is ahead writes iat (and exp) in the
// service's future; one behind writes an exp that comes early. Both are
// tolerated up to DefaultTokenLeeway (10 s) each way, and refused past it.
func TestClockSkewBetweenTheMinterAndTheServiceIsToleratedUpTo10Seconds(t *testing.T) {
	v := testVerifier()
	const ttl = time.Minute
	tests := []struct {
		name   string
		minter time.Time     // the minter's clock when the service's reads tokenNow
		ttl    time.Duration // the token's lifetime as minted
		reason string        // "" when accepted
	}{
		{"minter 10 s ahead", tokenNow.Add(10 * time.Second), ttl, ""},
		{"minter 11 s ahead", tokenNow.Add(11 * time.Second), ttl, "issued in the future"},
		{"minter 10 s ahead, the longest lifetime", tokenNow.Add(10 * time.Second), DefaultTokenMaxTTL, ""},
		{"minter 11 s ahead, the longest lifetime", tokenNow.Add(11 * time.Second), DefaultTokenMaxTTL, "issued in the future"},
		// Behind by d, a token of lifetime ttl is checked d after its
		// minting: accepted while d < ttl + 10 s.
		{"minter behind by the lifetime and 9 s", tokenNow.Add(-ttl - 9*time.Second), ttl, ""},
		{"minter behind by the lifetime and 10 s", tokenNow.Add(-ttl - 10*time.Second), ttl, "expired"},
	}
	for _, tc := range tests {
		token, err := MintToken(secretNew, "acct_42", tc.ttl, tc.minter)
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(context.Background(), token)
		switch {
		case tc.reason == "" && err != nil:
			t.Errorf("%s: %v, want accepted", tc.name, err)
		case tc.reason != "" && (!errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), tc.reason)):
			t.Errorf("%s: %v, want refused as %q", tc.name, err, tc.reason)
		}
	}
}
