package functions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// TestConnectBinaryChecksSignedTokensWithSecretsFromSecretsManager runs the
// built $connect function as the template configures it for signed tokens
// (TOKEN_SECRET_ID), its Secrets Manager endpoint pointed at a local server
// through the SDK's own AWS_ENDPOINT_URL_SECRETS_MANAGER. The secret is read
// once for the container, on the first signed token.
func TestConnectBinaryChecksSignedTokensWithSecretsFromSecretsManager(t *testing.T) {
	const (
		secretName = "wsnotify/token-secrets"
		signing    = "cloud-signing-secret-0123456789-abcdefghijk"
		previous   = "cloud-previous-secret-0123456789-abcdefghij"
	)
	var reads atomic.Int64
	secrets := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" || !bytes.Contains(body, []byte(`"SecretId":"`+secretName+`"`)) {
			http.Error(w, "unexpected call", http.StatusBadRequest)
			return
		}
		reads.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		out, _ := json.Marshal(map[string]string{"Name": secretName, "SecretString": `["` + signing + `","` + previous + `"]`})
		_, _ = w.Write(out)
	}))
	t.Cleanup(secrets.Close)

	store, _, env := startBackends(t, "wsnotify-tokens-test")
	env = append(env, "TOKEN_SECRET_ID="+secretName, "TOKEN_MAX_TTL=1h", "AWS_ENDPOINT_URL_SECRETS_MANAGER="+secrets.URL)
	connect := testenv.StartLambda(t, testenv.Bootstrap(t, testenv.Functions["ConnectFunction"]), env...)

	sample, err := os.ReadFile(filepath.Join("..", "events", "connect.json"))
	if err != nil {
		t.Fatal(err)
	}
	// connectWith invokes $connect with events/connect.json, its token,
	// client id and connection id replaced, and returns the status.
	connectWith := func(token, clientID, connID string) int {
		t.Helper()
		ev := strings.NewReplacer(sampleKey, token, "3f0c9a52-6c1e-4e7b-9a43-1d2f6b8e7c10", clientID, "TWegAcC4EowCHnA=", connID).Replace(string(sample))
		resp, err := http.Post(connect.URL, "application/json", strings.NewReader(ev))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct{ StatusCode int }
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("connect answered no proxy response: %v\n%s", err, connect.Output)
		}
		return out.StatusCode
	}
	now := time.Now()
	mint := func(secret string, ttl time.Duration) string {
		token, err := auth.MintToken([]byte(secret), "acct_cloud", ttl, now)
		if err != nil {
			t.Fatal(err)
		}
		return token
	}
	if got := connectWith(mint(signing, 10*time.Minute), "tab-1", "Q29ubmVjdGlvbjE="); got != 200 {
		t.Fatalf("a token under the signing secret: %d, want 200\n%s", got, connect.Output)
	}
	if got := connectWith(mint(previous, 10*time.Minute), "tab-2", "Q29ubmVjdGlvbjI="); got != 200 {
		t.Fatalf("a token under the previous secret: %d, want 200\n%s", got, connect.Output)
	}
	if got := connectWith(mint(signing, 2*time.Hour), "tab-3", "Q29ubmVjdGlvbjM="); got != 401 {
		t.Fatalf("a token past TOKEN_MAX_TTL: %d, want 401", got)
	}
	if n := reads.Load(); n != 1 {
		t.Errorf("%d GetSecretValue calls for three tokens, want 1 for the container", n)
	}
	conns, err := store.ListConnections(context.Background(), "acct_cloud", time.Now())
	if err != nil || len(conns) != 2 {
		t.Fatalf("records of the token's owner: %+v, %v; want tab-1 and tab-2", conns, err)
	}
	for _, secret := range []string{signing, previous} {
		if strings.Contains(connect.Output.String(), secret) {
			t.Error("the function logged a token secret")
		}
	}
	if !strings.Contains(connect.Output.String(), "more than the 1h0m0s allowed") {
		t.Errorf("the refusal's reason is not in the function's log:\n%s", connect.Output)
	}
}
