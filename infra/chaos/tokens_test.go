package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// The token secrets' Secrets Manager secret in the signed-token rig.
const (
	secretName    = "wsnotify/chaos-token-secrets"
	signingSecret = "chaos-signing-secret-0123456789-abcdefghijk"
	tokenOwner    = "acct_chaos_tokens"
)

// tokenRig is the connect function as the cloud runs it for signed tokens:
// its secrets read from Secrets Manager (moto) through a link, its
// connection records written to dynalite without one.
type tokenRig struct {
	connect *testenv.Lambda
	secrets *link
	n       int // connects made: each gets its own client and connection id
}

func newTokenRig(t *testing.T) *tokenRig {
	t.Helper()
	moto := testenv.Moto(t)
	sm := secretsmanager.New(secretsmanager.Options{Region: "us-east-1", BaseEndpoint: aws.String(moto),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	if _, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String(secretName), SecretString: aws.String(`["` + signingSecret + `"]`),
	}); err != nil {
		t.Fatal(err)
	}
	dynalite := testenv.Dynalite(t)
	testenv.Table(t, dynalite, table)
	r := &tokenRig{secrets: newLink(t, newToxiproxy(), "secretsmanager", moto)}
	// The connect function posts nothing when it registers a connection
	// of an owner below its cap: no Management API is needed.
	env := append(testenv.FunctionEnv(table, dynalite, "http://127.0.0.1:9/prod"),
		"TOKEN_SECRET_ID="+secretName, "TOKEN_MAX_TTL=1h",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER="+r.secrets.URL(),
		"AWS_LAMBDA_FUNCTION_TIMEOUT=10", "LOG_LEVEL=INFO")
	r.connect = testenv.StartLambda(t, testenv.Bootstrap(t, testenv.Functions["ConnectFunction"]), env...)
	return r
}

// connectOutcome is what one $connect invocation answered, and how long it
// took.
type connectOutcome struct {
	status int // the proxy response's status; 0 when the invocation failed
	took   time.Duration
	err    string // the invocation's error (a timeout) when it failed
}

// try invokes $connect with token and returns its outcome. The invocation is
// bounded by the function's timeout and 5 s more.
func (r *tokenRig) try(t *testing.T, token string) connectOutcome {
	t.Helper()
	r.n++
	var req events.APIGatewayWebsocketProxyRequest
	req.QueryStringParameters = map[string]string{"client_id": fmt.Sprintf("tab-%d", r.n), "token": token}
	req.RequestContext.RouteKey = "$connect"
	req.RequestContext.EventType = "CONNECT"
	req.RequestContext.ConnectionID = fmt.Sprintf("Q29ubmVjdGlvbi%03d=", r.n)
	req.RequestContext.ConnectedAt = time.Now().UnixMilli()
	payload, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(context.Background(), functionTimeout+5*time.Second)
	defer cancel()
	start := time.Now()
	hreq, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.connect.URL, strings.NewReader(string(payload)))
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatalf("invoke $connect: %v (hung past the function's deadline)", err)
	}
	defer resp.Body.Close()
	var out struct {
		StatusCode   int
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("$connect answered no JSON: %v", err)
	}
	o := connectOutcome{status: out.StatusCode, took: time.Since(start)}
	if out.ErrorType != "" {
		o.status, o.err = 0, out.ErrorType+": "+out.ErrorMessage
	}
	return o
}

// mint returns a token of lifetime ttl minted by a backend whose clock reads
// skew more than this machine's.
func mint(t *testing.T, ttl, skew time.Duration) string {
	t.Helper()
	token, err := auth.MintToken([]byte(signingSecret), tokenOwner, ttl, time.Now().Add(skew))
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// TestSignedTokenConnects injects faults on the link between the connect
// function and Secrets Manager, which it reads the token secrets from once
// per container, and then skews the minter's clock. The invariant for
// connects: a connect the secrets cannot be read for is refused with 500
// (the client retries; a 401 would make it give up) and answers within the
// secrets' read bound (5 s), far inside the function's 10 s; once healed,
// the next connect succeeds; a minter's clock within the tolerated skew
// (10 s) is accepted and one past it refused with 401.
func TestSignedTokenConnects(t *testing.T) {
	if !*full {
		t.Skip("part of make chaos (-chaos.full)")
	}
	r := newTokenRig(t)
	const ttl = time.Minute
	// readBound is the secrets read's own timeout (awssecrets' loadTimeout)
	// plus room for the connect around it.
	const readBound = 5*time.Second + 2*time.Second
	var rows []string
	row := func(what string, o connectOutcome, want int) {
		t.Helper()
		rows = append(rows, fmt.Sprintf("| %s | %d (want %d) | %s |", what, o.status, want, o.took.Round(time.Millisecond)))
		t.Logf("%s: %d in %s %s", what, o.status, o.took.Round(time.Millisecond), o.err)
		if o.status != want {
			t.Errorf("%s: status %d (%s), want %d\nconnect function's output:\n%s", what, o.status, o.err, want, r.connect.Output)
		}
		if o.took > readBound && want != 200 {
			t.Errorf("%s: answered after %s, beyond the %s bound", what, o.took, readBound)
		}
	}

	// Faults while the container has not read the secrets yet: each
	// connect tries the read again (a failed read is not kept).
	faults := []struct {
		name  string
		apply func()
	}{
		{"Secrets Manager connections reset", func() {
			r.secrets.toxic(t, `{"type":"reset_peer","stream":"upstream","attributes":{"timeout":0}}`)
		}},
		{"Secrets Manager blackholed", func() {
			r.secrets.toxic(t, `{"type":"timeout","attributes":{"timeout":0}}`)
		}},
		{"Secrets Manager latency 8 s (beyond the read's 5 s)", func() {
			r.secrets.toxic(t, `{"type":"latency","attributes":{"latency":8000}}`)
		}},
		{"Secrets Manager answering 500", func() {
			r.secrets.http.set(&faultPlan{answers: []answer{internalError}, every: 1})
		}},
	}
	for _, f := range faults {
		f.apply()
		row(f.name, r.try(t, mint(t, ttl, 0)), http.StatusInternalServerError)
		r.secrets.heal()
	}
	if !strings.Contains(r.connect.Output.String(), "read token secrets from Secrets Manager") {
		t.Errorf("the function's log does not say why the connects failed:\n%s", r.connect.Output)
	}
	// Healed: the next connect reads the secrets and succeeds, however slow
	// the link still is within the read's bound.
	r.secrets.toxic(t, `{"type":"latency","attributes":{"latency":2000}}`)
	row("healed, Secrets Manager latency 2 s", r.try(t, mint(t, ttl, 0)), http.StatusOK)
	r.secrets.heal()

	// Clock skew between the minter and the function. Whole seconds are
	// minted (iat, exp), so the bound is checked 2 s either side.
	for _, c := range []struct {
		name       string
		ttl, skew  time.Duration
		wantStatus int
	}{
		{"minter 8 s ahead", ttl, 8 * time.Second, http.StatusOK},
		{"minter 12 s ahead", ttl, 12 * time.Second, http.StatusUnauthorized},
		{"minter behind by the lifetime and 8 s", ttl, -ttl - 8*time.Second, http.StatusOK},
		{"minter behind by the lifetime and 12 s", ttl, -ttl - 12*time.Second, http.StatusUnauthorized},
	} {
		row(c.name, r.try(t, mint(t, c.ttl, c.skew)), c.wantStatus)
	}
	for _, why := range []string{"issued in the future", "signed token expired"} {
		if !strings.Contains(r.connect.Output.String(), why) {
			t.Errorf("no refusal logged as %q", why)
		}
	}
	if strings.Contains(r.connect.Output.String(), signingSecret) {
		t.Error("the function logged the token secret")
	}
	addReport("Signed-token connects (the connect function, its secrets in Secrets Manager)",
		append([]string{"| fault or skew | status | answered in |", "|---|---|---|"}, rows...))
}
