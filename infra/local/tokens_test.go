package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// The token secrets of these tests: the one that signs now and the one
// being rotated out.
const (
	tokenSecret    = "local-token-secret-0123456789-abcdefghijklmnop"
	oldTokenSecret = "older-token-secret-0123456789-abcdefghijklmnop"
)

func TestParseConfigReadsTheTokenSecrets(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		secrets []string
		maxTTL  time.Duration
		err     string
	}{
		{name: "no secret: signed tokens off", maxTTL: auth.DefaultTokenMaxTTL},
		{name: "the environment's list, signing secret first",
			env:     map[string]string{envTokenSecrets: tokenSecret + ", " + oldTokenSecret, envTokenMaxTTL: "1h"},
			secrets: []string{tokenSecret, oldTokenSecret}, maxTTL: time.Hour},
		{name: "--token-secret replaces the environment's and repeats",
			args:    []string{"--token-secret", oldTokenSecret, "--token-secret", tokenSecret, "--token-max-ttl", "30m"},
			env:     map[string]string{envTokenSecrets: "env-secret-0123456789-abcdefghijklmnopqrstu"},
			secrets: []string{oldTokenSecret, tokenSecret}, maxTTL: 30 * time.Minute},
		{name: "a secret shorter than 32 bytes is refused at start-up",
			args: []string{"--token-secret", tokenSecret, "--token-secret", "short-secret"}, err: "token secret 2 of 2 is 12 bytes: at least 32"},
		{name: "a short secret in the environment too", env: map[string]string{envTokenSecrets: "short-secret"}, err: envTokenSecrets},
		{name: "a malformed max TTL names its variable", env: map[string]string{envTokenMaxTTL: "a day"}, err: envTokenMaxTTL},
		{name: "a max TTL of zero is refused", args: []string{"--token-max-ttl", "0s"}, err: "--token-max-ttl"},
		{name: "an API key shaped like a signed token is refused", args: []string{"--api-key", "aaa.bbb.ccc=acct_42"}, err: "signed token's shape"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(tt.args, envOf(tt.env))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				for _, s := range []string{"short-secret", "aaa.bbb.ccc"} {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error %q quotes a secret", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range cfg.tokens.secrets.values {
				got = append(got, string(s))
			}
			if strings.Join(got, ",") != strings.Join(tt.secrets, ",") || cfg.tokens.maxTTL != tt.maxTTL {
				t.Errorf("secrets %q, max TTL %v; want %q, %v", got, cfg.tokens.maxTTL, tt.secrets, tt.maxTTL)
			}
			if s := cfg.tokens.secrets.String(); strings.Contains(s, "secret-0123") {
				t.Errorf("the flag's default text shows a secret: %q", s)
			}
		})
	}
}

// signed returns a token with the given claims, signed as method with secret.
func signed(t *testing.T, method jwt.SigningMethod, secret any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fireJob publishes a job_progress event for owner through the Invoke API.
func fireJob(t *testing.T, addr, owner, jobID string) {
	t.Helper()
	body := fmt.Sprintf(`{"Records":[{"messageId":"m-%s","body":%q}]}`, jobID,
		`{"ownerId":"`+owner+`","event":{"type":"job_progress","jobId":"`+jobID+`","progress":1,"processedCount":1,"totalCount":100}}`)
	var resp events.SQSEventResponse
	invoke(t, addr, "JobEventsFunction", []byte(body), &resp)
	if len(resp.BatchItemFailures) > 0 {
		t.Fatalf("job %s was not published", jobID)
	}
}

// nextJob reads the next event of c and returns its jobId.
func nextJob(t *testing.T, c *asyncapi.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), processWait)
	defer cancel()
	_, data, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Split(string(data), ",") {
		if v, ok := strings.CutPrefix(f, `"jobId":"`); ok {
			return strings.TrimSuffix(v, `"`)
		}
	}
	t.Fatalf("no jobId in %s", data)
	return ""
}

func TestSignedTokensThroughRealWebSocketClients(t *testing.T) {
	t.Parallel()
	r := runLocalMode(t, map[string]string{envTokenSecrets: tokenSecret + "," + oldTokenSecret},
		"--api-key", "wsn_key_of_b=acct_b")
	now := time.Now()
	mint := func(secret, owner string) string {
		token, err := auth.MintToken([]byte(secret), owner, 10*time.Minute, now)
		if err != nil {
			t.Fatal(err)
		}
		return token
	}
	if !strings.Contains(r.stdout.String(), "Signed tokens: on, 2 secret(s)") {
		t.Errorf("banner does not say signed tokens are on:\n%s", r.stdout.String())
	}

	t.Run("a token under either secret connects and receives its owner's events, never another owner's", func(t *testing.T) {
		a1 := dialLocal(t, r.addr, "a-tab-1", mint(tokenSecret, "acct_a"))
		a2 := dialLocal(t, r.addr, "a-tab-2", mint(oldTokenSecret, "acct_a"))
		bToken := dialLocal(t, r.addr, "b-tab-1", mint(tokenSecret, "acct_b"))
		bKey := dialLocal(t, r.addr, "b-tab-2", "wsn_key_of_b")
		// B's event first, then A's: on each connection events arrive in
		// order, so A's first event being its own proves B's never came.
		fireJob(t, r.addr, "acct_b", "job_of_b")
		fireJob(t, r.addr, "acct_a", "job_of_a")
		for name, c := range map[string]*asyncapi.Conn{"a-tab-1": a1, "a-tab-2": a2} {
			if got := nextJob(t, c); got != "job_of_a" {
				t.Errorf("%s received %s first, want job_of_a", name, got)
			}
		}
		for name, c := range map[string]*asyncapi.Conn{"b-tab-1 (token)": bToken, "b-tab-2 (API key)": bKey} {
			if got := nextJob(t, c); got != "job_of_b" {
				t.Errorf("%s received %s, want job_of_b", name, got)
			}
		}
	})

	good := jwt.MapClaims{"sub": "acct_a", "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for key, val := range good {
			c[key] = val
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	for _, tt := range []struct{ name, token, reason string }{
		{"expired", signed(t, jwt.SigningMethodHS256, []byte(tokenSecret), with("exp", now.Add(-time.Hour).Unix())), "signed token expired"},
		{"signed with an unknown secret", signed(t, jwt.SigningMethodHS256, []byte("a-secret-nobody-configured-0123456789"), good), "signature matches no secret"},
		{"alg none", signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good), "algorithm is not HS256"},
		{"HS512 with the right secret", signed(t, jwt.SigningMethodHS512, []byte(tokenSecret), good), "algorithm is not HS256"},
		{"without exp", signed(t, jwt.SigningMethodHS256, []byte(tokenSecret), with("exp", nil)), "signed token has no exp"},
		{"with exp two days ahead", signed(t, jwt.SigningMethodHS256, []byte(tokenSecret), with("exp", now.Add(48*time.Hour).Unix())), "more than the 24h0m0s allowed"},
		{"without sub", signed(t, jwt.SigningMethodHS256, []byte(tokenSecret), with("sub", nil)), "signed token has no sub"},
		{"an unknown API key", "wsn_no_such_key", "unknown API key"},
	} {
		t.Run("a token "+tt.name+" is refused with the unknown key's 401 before the upgrade", func(t *testing.T) {
			id := "refused-" + strings.ReplaceAll(tt.name, " ", "-")
			status, body := refusedWith(t, r.addr, id, tt.token, "")
			if status != http.StatusUnauthorized || body != `{"type":"error","error":"missing, unknown or revoked API key","code":"UNAUTHORIZED"}` {
				t.Errorf("answer %d %s, want the unknown key's 401", status, body)
			}
			line := waitLogged(t, r.logs, `msg="token refused"`, "clientId="+id+" ")
			if !strings.Contains(line, tt.reason) {
				t.Errorf("log line %q does not say %q", line, tt.reason)
			}
		})
	}

	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{tokenSecret, oldTokenSecret} {
		if strings.Contains(r.logs.String(), secret) || strings.Contains(r.stdout.String(), secret) {
			t.Error("a token secret reached the log or the banner")
		}
	}
	for _, part := range strings.Split(mint(tokenSecret, "acct_a"), ".")[1:] {
		if strings.Contains(r.logs.String(), part) {
			t.Error("a token reached the log")
		}
	}
}

// TestTokenAudienceAndIssuerAreRequiredWhenConfigured runs local mode with
// --token-audience and --token-issuer (the issuer from the environment): a
// token minted with them connects, one without them, or for another
// service, is refused with 401.
func TestTokenAudienceAndIssuerAreRequiredWhenConfigured(t *testing.T) {
	t.Parallel()
	r := runLocalMode(t, map[string]string{envTokenSecrets: tokenSecret, envTokenIssuer: "https://app.example.com"},
		"--token-audience", "wsnotify")
	now := time.Now()
	mint := func(scope auth.TokenScope) string {
		token, err := auth.MintToken([]byte(tokenSecret), "acct_a", 10*time.Minute, now, scope)
		if err != nil {
			t.Fatal(err)
		}
		return token
	}
	dialLocal(t, r.addr, "scoped", mint(auth.TokenScope{Audience: "wsnotify", Issuer: "https://app.example.com"}))
	// The Node snippet sets them from the environment, as the key tool does.
	dialLocal(t, r.addr, "scoped-by-node", nodeMintedToken(t, "acct_a", tokenSecret,
		envTokenAudience+"=wsnotify", envTokenIssuer+"=https://app.example.com"))
	if status, _ := refusedWith(t, r.addr, "unscoped-by-node", nodeMintedToken(t, "acct_a", tokenSecret), ""); status != http.StatusUnauthorized {
		t.Errorf("a token the Node snippet minted without aud and iss: status %d, want 401", status)
	}
	for _, tt := range []struct {
		name   string
		scope  auth.TokenScope
		reason string
	}{
		{"without aud and iss", auth.TokenScope{}, "has no aud"},
		{"for another service", auth.TokenScope{Audience: "billing", Issuer: "https://app.example.com"}, "aud does not name this service"},
		{"from another issuer", auth.TokenScope{Audience: "wsnotify", Issuer: "https://elsewhere.example.com"}, "iss is not the issuer"},
	} {
		id := "refused-" + strings.ReplaceAll(tt.name, " ", "-")
		if status, _ := refusedWith(t, r.addr, id, mint(tt.scope), ""); status != http.StatusUnauthorized {
			t.Errorf("a token %s: status %d, want 401", tt.name, status)
		}
		if line := waitLogged(t, r.logs, `msg="token refused"`, "clientId="+id+" "); !strings.Contains(line, tt.reason) {
			t.Errorf("a token %s: log line %q does not say %q", tt.name, line, tt.reason)
		}
	}
	if !strings.Contains(r.stdout.String(), `aud "wsnotify" and iss "https://app.example.com"`) {
		t.Errorf("the banner does not name the required aud and iss:\n%s", r.stdout.String())
	}
}

// nodeMintedToken runs infra/node/mint-token.js, docs/keys-and-tokens.md's Node snippet,
// as a backend would; env adds variables (NAME=value) to its environment.
func nodeMintedToken(t *testing.T, owner, secret string, env ...string) string {
	t.Helper()
	cmd := exec.Command(testenv.Node(t), filepath.Join(testenv.RepoRoot(t), "infra", "node", "mint-token.js"), owner)
	cmd.Env = append(append(os.Environ(), "WSNOTIFY_TOKEN_SECRET="+secret), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mint-token.js: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func TestTheSeedsNodeClientConnectsWithATokenMintedByTheNodeSnippet(t *testing.T) {
	t.Parallel()
	const owner = "acct_node_token"
	addr := startLocalMode(t, "--addr", "127.0.0.1:0", "--token-secret", tokenSecret)
	// The seed's flow unchanged: the token goes where the API key went.
	client := startSeedClient(t, addr, nodeMintedToken(t, owner, tokenSecret))
	fireSeedEvents(t, addr, owner)
	client.expectSeedEvents(t)
}

func TestTheDocsTokenSnippetsAreTheTestedOnes(t *testing.T) {
	root := testenv.RepoRoot(t)
	const doc = "docs/keys-and-tokens.md"
	readme, err := os.ReadFile(filepath.Join(root, doc))
	if err != nil {
		t.Fatal(err)
	}
	for file, start := range map[string]string{
		"infra/node/mint-token.js":    "function wsnotifyToken(",
		"shared/auth/example_test.go": "func wsnotifyToken(",
	} {
		src, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		_, rest, ok := strings.Cut(string(src), start)
		body, _, ok2 := strings.Cut(rest, "\n}\n")
		if !ok || !ok2 {
			t.Fatalf("%s has no %s…}", file, start)
		}
		if snippet := start + body + "\n}\n"; !strings.Contains(string(readme), snippet) {
			t.Errorf("%s does not show %s's snippet as it is:\n%s", doc, file, snippet)
		}
	}
}
