package publish_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/wsnotify/wsnotify/clients/go/publish"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// The two doors to PublishFunction, as the stack's outputs name them.
const (
	functionURL = "https://" + testenv.FunctionURLHost + "/"
	httpAPIURL  = "https://" + testenv.HTTPAPIHost
)

// routedConfig is an app's AWS config whose HTTP client reaches srv (a TLS
// test server) whatever host a URL names: the endpoint's host stays in the
// URL, the Host header and the signature, as it would in the cloud.
func routedConfig(t *testing.T, srv *httptest.Server, region string) aws.Config {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	var dialer net.Dialer
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, srv.Listener.Addr().String())
		},
		// The test server's certificate names example.com, not the endpoint.
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "example.com"},
	}}
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(region),
		config.WithCredentialsProvider(testCreds), config.WithRetryer(quickRetries),
		config.WithSharedConfigProfile(""), config.WithSharedConfigFiles([]string{}), config.WithSharedCredentialsFiles([]string{}))
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTPClient = client
	if region == "" {
		cfg.Region = "" // as an app that sets none, whatever the machine's environment says
	}
	return cfg
}

// judged is a stub publish API that answers what accept verifies and
// records, for every request, what reject says of it.
func judged(t *testing.T, accept, reject testenv.SigV4Verifier) (*stubAPI, *httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var other []string
	stub := &stubAPI{keys: map[string]publish.Result{}, verify: func(r *http.Request, body []byte) string {
		mu.Lock()
		other = append(other, reject.Verify(r, body))
		mu.Unlock()
		return accept.Verify(r, body)
	}}
	srv := httptest.NewTLSServer(stub)
	t.Cleanup(srv.Close)
	return stub, srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), other...)
	}
}

func TestTheSignedClientSignsForLambdaAtAFunctionURLAndForExecuteAPIElsewhere(t *testing.T) {
	msg := publish.Message{OwnerID: "acct_42", IdempotencyKey: "job_f-1", Event: publish.JobProgress("job_f", 50, 1, 2, "a.jpg")}
	for _, tc := range []struct {
		name, endpoint, region, service, otherService string
	}{
		{"function URL, the config in its region", functionURL, "eu-west-1", "lambda", "execute-api"},
		{"function URL, the config without a region", functionURL, "", "lambda", "execute-api"},
		{"function URL without its trailing slash", strings.TrimSuffix(functionURL, "/"), "eu-west-1", "lambda", "execute-api"},
		{"HTTP API", httpAPIURL, "eu-west-1", "execute-api", "lambda"},
		{"HTTP API behind a custom domain", "https://publish.example.com", "eu-west-1", "execute-api", "lambda"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stub, srv, otherSaid := judged(t, testenv.ExampleKeyVerifier(tc.service), testenv.ExampleKeyVerifier(tc.otherService))
			c := publish.NewClient(tc.endpoint, routedConfig(t, srv, tc.region))
			results, err := c.Publish(context.Background(), msg)
			if err != nil || len(results) != 1 || results[0].Seq != 1 {
				t.Fatalf("publish: %+v, %v", results, err)
			}
			if p, err := c.Connections(context.Background(), "acct_42"); err != nil || p.Count != 1 {
				t.Fatalf("connections: %+v, %v", p, err)
			}
			if stub.requests != 2 {
				t.Errorf("%d requests, want 2 (none refused, none retried)", stub.requests)
			}
			for i, why := range otherSaid() {
				if why == "" {
					t.Errorf("request %d verifies for %q too: the test shows nothing", i, tc.otherService)
				}
			}
		})
	}
}

func TestTheSignedClientRefusesAFunctionURLOfAnotherRegionThanItsConfigs(t *testing.T) {
	stub, srv, _ := judged(t, testenv.ExampleKeyVerifier("lambda"), testenv.ExampleKeyVerifier("execute-api"))
	c := publish.NewClient(functionURL, routedConfig(t, srv, "us-east-1"))
	_, err := c.Publish(context.Background(), publish.Message{OwnerID: "acct_42", Event: publish.Error("", "E", "x")})
	if err == nil || !strings.Contains(err.Error(), "function URL in eu-west-1") || !strings.Contains(err.Error(), "us-east-1") {
		t.Fatalf("err = %v", err)
	}
	if _, err := c.Connections(context.Background(), "acct_42"); err == nil {
		t.Error("presence asked with the wrong region")
	}
	if stub.requests != 0 {
		t.Errorf("%d requests sent with a signature for the wrong region", stub.requests)
	}
}

// TestWhatTheClientSendsToTheFunctionURLIsPublishedByPublishFunction needs
// shared/publishapi.HandleLambda to route a function URL's events (routeKey
// "$default") by method and rawPath.
func TestWhatTheClientSendsToTheFunctionURLIsPublishedByPublishFunction(t *testing.T) {
	pushed, fn := testenv.PublishFunctionURL(t, "acct_42", "acct_7", "user@example.com")
	srv := httptest.NewTLSServer(fn)
	defer srv.Close()
	c := publish.NewClient(functionURL, routedConfig(t, srv, "eu-west-1"))
	ctx := context.Background()

	results, err := c.Publish(ctx,
		publish.Message{OwnerID: "acct_42", IdempotencyKey: "job_u-1", Event: publish.JobProgress("job_u", 50, 1, 2, "a.jpg")},
		publish.Message{OwnerID: "acct_42", Event: publish.JobComplete("job_u", event.StatusCompleted, 2, 0)})
	if err != nil {
		t.Fatal(err)
	}
	sent := pushed.Sent("conn-acct_42")
	if len(results) != 2 || len(sent) != 2 || results[0].Delivered != 1 || results[1].Seq != results[0].Seq+1 {
		t.Fatalf("results %+v; acct_42's connection got %v", results, sent)
	}
	for i, data := range sent {
		var got map[string]any
		if err := json.Unmarshal([]byte(data), &got); err != nil || got["id"] != results[i].ID {
			t.Errorf("push %d: %s, answered %+v", i, data, results[i])
		}
	}
	if theirs := pushed.Sent("conn-acct_7"); len(theirs) != 0 {
		t.Errorf("acct_7's connection got %v", theirs)
	}
	again, err := c.Publish(ctx, publish.Message{OwnerID: "acct_42", IdempotencyKey: "job_u-1", Event: publish.JobProgress("job_u", 50, 1, 2, "a.jpg")})
	if err != nil || !again[0].Duplicate || again[0].ID != results[0].ID || len(pushed.Sent("conn-acct_42")) != 2 {
		t.Errorf("the keyed message again: %+v, %v", again, err)
	}
	for owner, client := range map[string]string{"acct_42": "tab-1", "user@example.com": "tab-3"} { // '@' is %40 in the raw path, %2540 signed
		p, err := c.Connections(ctx, owner)
		if err != nil || p.Count != 1 || p.Clients[0].ClientID != client {
			t.Errorf("presence of %s: %+v, %v", owner, p, err)
		}
	}
	_, err = c.Publish(ctx, publish.Message{OwnerID: "acct_42", IdempotencyKey: "job_u-1", Event: publish.JobProgress("job_u", 60, 1, 2, "a.jpg")})
	var apiErr *publish.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict || apiErr.Code != "IDEMPOTENCY_CONFLICT" {
		t.Errorf("the key with another event: %v", err)
	}

	// A request signed for the HTTP API never reaches the function.
	before := len(pushed.Sent("conn-acct_42"))
	body := `{"ownerId":"acct_42","event":{"type":"error","error":"x","code":"E"}}`
	wrong := httptest.NewRequest(http.MethodPost, functionURL+"v1/publish", strings.NewReader(body))
	sum := sha256.Sum256([]byte(body))
	wrong.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	creds, _ := testCreds.Retrieve(ctx)
	if err := v4.NewSigner().SignHTTP(ctx, creds, wrong, hex.EncodeToString(sum[:]), "execute-api", "eu-west-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	fn.ServeHTTP(w, wrong)
	if w.Code != http.StatusForbidden || len(pushed.Sent("conn-acct_42")) != before {
		t.Errorf("a request signed for execute-api: %d %s", w.Code, w.Body)
	}
}
