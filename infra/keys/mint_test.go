package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsnotify/wsnotify/shared/auth"
)

const (
	signingSecret = "signing-secret-0123456789-abcdefghijklmnopq"
	olderSecret   = "older-secret-0123456789-abcdefghijklmnopqrst"
)

// noTable fails a test that reaches for the table: mint needs none.
func noTable(context.Context, string, string) (keyStore, error) {
	return nil, errors.New("mint opened the table")
}

func TestMintPrintsATokenTheServiceAccepts(t *testing.T) {
	env := map[string]string{envTokenSecrets: signingSecret + "," + olderSecret}
	stdout, stderr, err := invoke(t, env, "", noTable, "mint", "--owner", "acct_42", "--ttl", "10m")
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSuffix(stdout, "\n")
	if !auth.IsSignedToken(token) || strings.Contains(token, "\n") {
		t.Fatalf("mint printed %q, want the token alone", stdout)
	}
	if !strings.Contains(stderr, "acct_42") || !strings.Contains(stderr, created.Add(10*time.Minute).Format(time.RFC3339)) {
		t.Errorf("mint explained %q, want the owner and the expiry", stderr)
	}
	for _, out := range []string{stdout, stderr} {
		if strings.Contains(out, signingSecret) || strings.Contains(out, olderSecret) {
			t.Fatal("mint printed a secret")
		}
	}
	at := func(secrets ...string) *auth.TokenVerifier {
		var s auth.StaticSecrets
		for _, x := range secrets {
			s = append(s, []byte(x))
		}
		return auth.NewTokenVerifier(s, auth.TokenConfig{Now: func() time.Time { return created }})
	}
	ctx := context.Background()
	if owner, err := at(signingSecret).Verify(ctx, token); err != nil || owner != "acct_42" {
		t.Fatalf("the first secret does not verify it: %q, %v", owner, err)
	}
	if _, err := at(olderSecret).Verify(ctx, token); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("the second secret verifies it (%v): the first must sign", err)
	}
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &claims); err != nil || !claims.ExpiresAt.Equal(created.Add(10*time.Minute)) {
		t.Fatalf("exp %v (%v), want now + 10m", claims.ExpiresAt, err)
	}
	// After ten minutes and the leeway, the service refuses it.
	late := auth.NewTokenVerifier(auth.StaticSecrets{[]byte(signingSecret)}, auth.TokenConfig{Now: func() time.Time { return created.Add(11 * time.Minute) }})
	if _, err := late.Verify(ctx, token); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("eleven minutes on: %v, want refused", err)
	}
}

func TestMintTakesTheFlagsSecretOverTheEnvironments(t *testing.T) {
	env := map[string]string{envTokenSecrets: olderSecret}
	stdout, _, err := invoke(t, env, "", noTable, "mint", "--owner", "acct_42", "--token-secret", signingSecret)
	if err != nil {
		t.Fatal(err)
	}
	v := auth.NewTokenVerifier(auth.StaticSecrets{[]byte(signingSecret)}, auth.TokenConfig{Now: func() time.Time { return created }})
	if _, err := v.Verify(context.Background(), strings.TrimSpace(stdout)); err != nil {
		t.Fatalf("not signed with --token-secret: %v", err)
	}
}

func TestMintSetsTheAudienceAndIssuerTheServiceRequires(t *testing.T) {
	scoped := auth.NewTokenVerifier(auth.StaticSecrets{[]byte(signingSecret)}, auth.TokenConfig{
		Audience: "wsnotify", Issuer: "https://app.example.com", Now: func() time.Time { return created }})
	for name, tt := range map[string]struct {
		env  map[string]string
		args []string
	}{
		"from the environment": {map[string]string{envTokenSecrets: signingSecret, envTokenAudience: "wsnotify", envTokenIssuer: "https://app.example.com"}, nil},
		"from the flags":       {map[string]string{envTokenSecrets: signingSecret, envTokenAudience: "other"}, []string{"--audience", "wsnotify", "--issuer", "https://app.example.com"}},
	} {
		stdout, _, err := invoke(t, tt.env, "", noTable, append([]string{"mint", "--owner", "acct_42"}, tt.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := scoped.Verify(context.Background(), strings.TrimSpace(stdout)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	stdout, _, err := invoke(t, map[string]string{envTokenSecrets: signingSecret}, "", noTable, "mint", "--owner", "acct_42")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := scoped.Verify(context.Background(), strings.TrimSpace(stdout)); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("a token minted without aud and iss: %v, want refused where they are required", err)
	}
}

func TestMintRefusesWhatTheServiceWouldRefuse(t *testing.T) {
	good := map[string]string{envTokenSecrets: signingSecret}
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no secret", nil, []string{"--owner", "acct_42"}, "mint needs a secret"},
		{"a short secret", map[string]string{envTokenSecrets: "short-secret"}, []string{"--owner", "acct_42"}, "at least 32"},
		{"no owner", good, nil, "mint needs --owner"},
		{"an owner with a slash", good, []string{"--owner", "acct/42"}, "mint needs --owner"},
		{"a ttl of zero", good, []string{"--owner", "acct_42", "--ttl", "0s"}, "must be positive"},
		{"a ttl past a day", good, []string{"--owner", "acct_42", "--ttl", "25h"}, "at most 24h0m0s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, err := invoke(t, tt.env, "", noTable, append([]string{"mint"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || stdout != "" {
				t.Fatalf("err = %v, stdout %q; want %q and no token", err, stdout, tt.want)
			}
			if strings.Contains(err.Error(), "short-secret") {
				t.Fatalf("error %q quotes the secret", err)
			}
		})
	}
}
