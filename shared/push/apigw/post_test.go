package apigw_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/aws/smithy-go"

	"github.com/wsnotify/wsnotify/shared/push/apigw"
)

// Client sends PostToConnection itself rather than through the SDK's
// operation pipeline. These tests hold it to the SDK client's behaviour:
// the same request on the wire, a signature a SigV4 verifier accepts, and
// the same errors, for the same answers.

const (
	accessKey    = "AKIDEXAMPLE"
	secretKey    = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	sessionToken = "session-token-of-a-lambda-role"
)

// poster is what both clients offer.
type poster interface {
	PostToConnection(context.Context, *apigatewaymanagementapi.PostToConnectionInput, ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.PostToConnectionOutput, error)
}

// bothClients returns the SDK's client and ours for one Management API,
// each making at most attempts attempts.
func bothClients(t *testing.T, api *managementAPI, attempts int) (sdk, ours poster) {
	t.Helper()
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	cfg := aws.Config{Region: region, Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, sessionToken)}
	noBackoff := func(o *retry.StandardOptions) { o.MaxBackoff = time.Millisecond }
	client, err := apigw.NewClient(cfg, srv.URL+"/"+stage, attempts, nil, noBackoff)
	if err != nil {
		t.Fatal(err)
	}
	return apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(srv.URL + "/" + stage)
		o.Retryer = retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = attempts; noBackoff(o) })
	}), client
}

func TestClientPostSendsTheSDKsRequest(t *testing.T) {
	// Ids as API Gateway makes them (base64: '=' and '+' need escaping in
	// the path, which the signature covers twice), and unreserved marks.
	for _, id := range []string{connID, "a+b=Cd9+", "x~y.z_-0"} {
		t.Run(id, func(t *testing.T) {
			api := &managementAPI{t: t, scripts: map[string][]reply{id: {ok200}}, seen: map[string][]request{}}
			sdk, ours := bothClients(t, api, 1)
			data := []byte(`{"type":"job_progress","jobId":"job_123","progress":50,"id":"e1","seq":7}`)
			for _, c := range []poster{sdk, ours} {
				_, err := c.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: data})
				if err != nil {
					t.Fatalf("%T: %v", c, err)
				}
			}
			reqs := api.requests(id)
			if len(reqs) != 2 {
				t.Fatalf("server saw %d requests, want one from each client", len(reqs))
			}
			want, got := reqs[0], reqs[1]
			if got.method != want.method || got.uri != want.uri || got.host != want.host || !bytes.Equal(got.body, want.body) {
				t.Errorf("request %s %s (host %s, body %q), the SDK's %s %s (host %s, body %q)",
					got.method, got.uri, got.host, got.body, want.method, want.uri, want.host, want.body)
			}
			for _, h := range []string{"Content-Type", "Content-Length", "X-Amz-Security-Token"} {
				if got.header.Get(h) != want.header.Get(h) || got.header.Get(h) == "" {
					t.Errorf("%s: %q, the SDK's %q", h, got.header.Get(h), want.header.Get(h))
				}
			}
			wantScope, wantSigned := verifySigV4(t, want)
			gotScope, gotSigned := verifySigV4(t, got)
			if gotScope != wantScope {
				t.Errorf("credential scope %q, the SDK's %q", gotScope, wantScope)
			}
			// The SDK also signs its own bookkeeping headers
			// (amz-sdk-invocation-id, amz-sdk-request); every other header
			// it signs, ours signs too.
			for _, h := range wantSigned {
				if !strings.HasPrefix(h, "amz-sdk-") && !slices.Contains(gotSigned, h) {
					t.Errorf("header %s signed by the SDK, not by Client (Client signs %v)", h, gotSigned)
				}
			}
		})
	}
}

// verifySigV4 checks r's signature as the service would: it rebuilds the
// request from what arrived, keeping only the headers the signature names,
// signs it again with the secret at the request's X-Amz-Date, and compares.
// It returns the credential scope and the signed headers.
func verifySigV4(t *testing.T, r request) (scope string, signed []string) {
	t.Helper()
	fields := map[string]string{}
	rest, ok := strings.CutPrefix(r.auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		t.Fatalf("Authorization %q is not SigV4", r.auth)
	}
	for _, f := range strings.Split(rest, ", ") {
		k, v, _ := strings.Cut(f, "=")
		fields[k] = v
	}
	signed = strings.Split(fields["SignedHeaders"], ";")
	at, err := time.Parse("20060102T150405Z", r.header.Get("X-Amz-Date"))
	if err != nil {
		t.Fatalf("X-Amz-Date: %v", err)
	}
	again, err := http.NewRequest(r.method, "http://"+r.host+r.uri, bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range signed {
		if h != "host" && h != "content-length" {
			again.Header[http.CanonicalHeaderKey(h)] = r.header.Values(h)
		}
	}
	sum := sha256.Sum256(r.body)
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey, SessionToken: r.header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, hex.EncodeToString(sum[:]), "execute-api", region, at); err != nil {
		t.Fatal(err)
	}
	if again.Header.Get("Authorization") != r.auth {
		t.Errorf("signature does not verify:\n got  %s\n want %s", r.auth, again.Header.Get("Authorization"))
	}
	scope, _, _ = strings.Cut(fields["Credential"], "/")
	return strings.TrimPrefix(fields["Credential"], scope), signed
}

func TestClientPostFailsAsTheSDKDoes(t *testing.T) {
	cases := []struct {
		name   string
		script []reply
	}{
		{"410", []reply{gone410}},
		{"410 without a body", []reply{{status: http.StatusGone, errorType: "GoneException"}}},
		{"413", []reply{large413}},
		{"403", []reply{forbid403}},
		{"429 until the attempts run out", []reply{limit429}},
		{"429 without an error type", []reply{{status: http.StatusTooManyRequests, body: `{"message":"Too Many Requests"}`}}},
		{"500 until the attempts run out", []reply{error500}},
		{"502 with a body that is not JSON", []reply{{status: http.StatusBadGateway, body: "Bad Gateway"}}},
		{"the error's code in the body only", []reply{{status: http.StatusGone, body: `{"__type":"com.amazonaws#GoneException","message":"gone"}`}}},
		{"an unmodeled error", []reply{{http.StatusBadRequest, "BadRequestException", `{"message":"Invalid connection id"}`}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Each client has a stand-in of its own, so that the request
			// ids in the messages match.
			var sdk, ours poster
			apis := [2]*managementAPI{}
			for i := range apis {
				apis[i] = &managementAPI{t: t, scripts: map[string][]reply{connID: tc.script}, seen: map[string][]request{}}
			}
			sdk, _ = bothClients(t, apis[0], 2)
			_, ours = bothClients(t, apis[1], 2)
			in := &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(connID), Data: []byte(`{}`)}
			_, want := sdk.PostToConnection(context.Background(), in)
			_, got := ours.PostToConnection(context.Background(), in)
			if want == nil || got == nil || got.Error() != want.Error() {
				t.Errorf("error\n got  %v\n want %v (the SDK's)", got, want)
			}
			if got, want := len(apis[1].requests(connID)), len(apis[0].requests(connID)); got != want {
				t.Errorf("%d attempts, the SDK made %d", got, want)
			}
			for _, target := range []func() any{
				func() any { return new(*types.GoneException) },
				func() any { return new(*types.LimitExceededException) },
				func() any { return new(*types.PayloadTooLargeException) },
				func() any { return new(*types.ForbiddenException) },
				func() any { return new(*smithy.GenericAPIError) },
				func() any { return new(*smithy.DeserializationError) },
				func() any { return new(*retry.MaxAttemptsError) },
				func() any { return new(*awshttp.ResponseError) },
				func() any { return new(*smithy.OperationError) },
			} {
				if errors.As(got, target()) != errors.As(want, target()) {
					t.Errorf("errors.As(%T) differs: got %v, want %v", target(), got, want)
				}
			}
			if throttle := errors.As(want, new(*types.LimitExceededException)); throttle && !strings.Contains(tc.name, "429") {
				t.Errorf("case %q: a throttle", tc.name)
			}
		})
	}
}

func TestNewClientRefusesAnEndpointThatIsNoURL(t *testing.T) {
	for _, endpoint := range []string{"", "execute-api.eu-west-1.amazonaws.com/prod", "ftp://host/prod", "https:///prod"} {
		if _, err := apigw.NewClient(aws.Config{Region: region}, endpoint, 3, nil); err == nil {
			t.Errorf("NewClient(%q) accepted it", endpoint)
		}
	}
}

func TestClientPostStopsRetryingWhenTheContextEnds(t *testing.T) {
	attempts := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts <- struct{}{}
		w.Header().Set("x-amzn-ErrorType", limit429.errorType)
		w.WriteHeader(limit429.status)
	}))
	defer srv.Close()
	cfg := aws.Config{Region: region, Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")}
	// A backoff far longer than the test: only the context can end the wait.
	backingOff := make(chan struct{}, 10)
	client, err := apigw.NewClient(cfg, srv.URL+"/"+stage, 5, nil, func(o *retry.StandardOptions) {
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) {
			backingOff <- struct{}{}
			return time.Hour, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(connID), Data: []byte(`{}`)})
		done <- err
	}()
	deadline := time.After(10 * time.Second)
	select {
	case <-backingOff: // answered 429: the client now waits out its backoff
	case <-deadline:
		t.Fatal("the client never backed off")
	}
	cancel()
	select {
	case err := <-done:
		isSDK[*types.LimitExceededException](t, err)
	case <-deadline:
		t.Fatal("PostToConnection still waiting after its context ended")
	}
	if n := len(attempts); n != 1 {
		t.Errorf("%d attempts, want 1: none after the context ended", n)
	}
}

func TestClientPostRefusesAnEmptyConnectionID(t *testing.T) {
	api := &managementAPI{t: t, scripts: map[string][]reply{}, seen: map[string][]request{}}
	sdk, ours := bothClients(t, api, 1)
	for _, in := range []*apigatewaymanagementapi.PostToConnectionInput{{Data: []byte(`{}`)}, {ConnectionId: aws.String(""), Data: []byte(`{}`)}} {
		_, want := sdk.PostToConnection(context.Background(), in)
		_, got := ours.PostToConnection(context.Background(), in)
		if got == nil || !errors.As(got, new(*smithy.OperationError)) || !strings.Contains(got.Error(), "ConnectionId must not be empty") {
			t.Errorf("error %v, want a refusal like the SDK's %v", got, want)
		}
	}
}
