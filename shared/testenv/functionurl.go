package testenv

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/notify/notifytest"
	"github.com/wsnotify/wsnotify/shared/publishapi"
	"github.com/wsnotify/wsnotify/shared/store/memory"
)

// The hosts of PublishFunction's two doors in the publishers' tests: its
// function URL and the HTTP API in front of it, both in eu-west-1.
const (
	FunctionURLHost = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws"
	HTTPAPIHost     = "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"
)

// ExampleKeyVerifier checks signatures made with the AWS documentation's
// example key (AKIDEXAMPLE) for service in eu-west-1; for "lambda", a
// function URL's signing name, it also wants the body's hash signed.
func ExampleKeyVerifier(service string) SigV4Verifier {
	return SigV4Verifier{AccessKey: "AKIDEXAMPLE", SecretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		Region: "eu-west-1", Service: service, SignedPayload: service == "lambda"}
}

// FunctionURL plays a Lambda function URL with AuthType AWS_IAM for tests:
// it checks each request's signature with Verifier (Service "lambda",
// SignedPayload set), refuses with 403 what it does not accept, and hands
// the rest to Invoke as the function URL event Lambda would build (payload
// format 2.0), JSON-encoded as the runtime receives it. It answers the
// function's response as Lambda maps it back to HTTP.
type FunctionURL struct {
	Verifier SigV4Verifier
	// Account is the function's account; the caller is CallerARN (an IAM
	// ARN in CallerAccount).
	Account, CallerAccount, CallerARN string
	// Invoke runs the function on an event and returns its JSON response,
	// e.g. lambda.NewHandler(handler).Invoke from aws-lambda-go.
	Invoke func(ctx context.Context, event []byte) ([]byte, error)
}

// FunctionURLEvent is the event of a function URL: aws-lambda-go's
// LambdaFunctionURLRequest, marshalled with the fields Lambda sets to API
// Gateway's sentinel values and that type leaves out: routeKey "$default",
// and requestContext's routeKey and stage "$default".
type FunctionURLEvent struct {
	events.LambdaFunctionURLRequest
}

// MarshalJSON adds the sentinels to the request's JSON.
func (e FunctionURLEvent) MarshalJSON() ([]byte, error) {
	raw, err := json.Marshal(e.LambdaFunctionURLRequest)
	if err != nil {
		return nil, err
	}
	var ev map[string]json.RawMessage
	var rc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(ev["requestContext"], &rc); err != nil {
		return nil, err
	}
	sentinel := json.RawMessage(`"$default"`)
	ev["routeKey"], rc["routeKey"], rc["stage"] = sentinel, sentinel, sentinel
	if ev["requestContext"], err = json.Marshal(rc); err != nil {
		return nil, err
	}
	return json.Marshal(ev)
}

// Event returns the event Lambda builds for r, whose body was read already.
func (f *FunctionURL) Event(r *http.Request, body []byte, now time.Time) FunctionURLEvent {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	urlID, _, _ := strings.Cut(host, ".")
	headers := map[string]string{}
	for name, values := range r.Header {
		if !strings.EqualFold(name, "Authorization") {
			headers[strings.ToLower(name)] = strings.Join(values, ",")
		}
	}
	headers["host"] = host
	var ev FunctionURLEvent
	ev.Version = "2.0"
	ev.RawPath = r.URL.EscapedPath()
	ev.RawQueryString = r.URL.RawQuery
	ev.Headers = headers
	if len(body) > 0 {
		// Lambda passes a text body as it is and base64-encodes the others.
		if textual(r.Header.Get("Content-Type")) {
			ev.Body = string(body)
		} else {
			ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
	}
	accessKey := f.Verifier.AccessKey
	rc := &ev.RequestContext
	rc.AccountID = f.Account
	rc.APIID, rc.DomainPrefix, rc.DomainName = urlID, urlID, host
	rc.RequestID = fmt.Sprintf("req-%d", now.UnixNano())
	rc.Time = now.UTC().Format("02/Jan/2006:15:04:05 -0700")
	rc.TimeEpoch = now.UnixMilli()
	rc.HTTP = events.LambdaFunctionURLRequestContextHTTPDescription{Method: r.Method, Path: r.URL.Path,
		Protocol: r.Proto, SourceIP: "127.0.0.1", UserAgent: r.UserAgent()}
	rc.Authorizer = &events.LambdaFunctionURLRequestContextAuthorizerDescription{
		IAM: &events.LambdaFunctionURLRequestContextAuthorizerIAMDescription{AccessKey: accessKey,
			AccountID: f.CallerAccount, CallerID: "AIDATESTCALLER", UserARN: f.CallerARN, UserID: "AIDATESTCALLER"},
	}
	return ev
}

func textual(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return strings.HasPrefix(mt, "text/") || mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// ServeHTTP serves one request as the function URL.
func (f *FunctionURL) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if why := f.Verifier.Verify(r, body); why != "" {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-ErrorType", "AccessDeniedException")
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(map[string]string{"Message": "Forbidden: " + why})
		return
	}
	event, _ := json.Marshal(f.Event(r, body, time.Now()))
	out, err := f.Invoke(r.Context(), event)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		_ = json.NewEncoder(w).Encode(map[string]string{"Message": "the function failed: " + err.Error()})
		return
	}
	// A response without a statusCode is itself the body of a 200.
	var resp events.LambdaFunctionURLResponse
	if json.Unmarshal(out, &resp) != nil || resp.StatusCode == 0 {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
		return
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	data := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if data, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(data)
}

// PublishFunctionURL is PublishFunction's function URL: FunctionURL,
// checking ExampleKeyVerifier("lambda")'s signatures, in front of
// PublishFunction's handler (shared/publishapi) over a Notifier on the
// memory store, invoked as the Lambda runtime does: a JSON event in, a
// JSON response out (aws-lambda-go's reflection, as in the built function).
// Each owner has a key "key-{owner}" and one connection, "conn-{owner}" of
// client "tab-{n}" (n its place in owners, from 1); the recorder holds what
// was pushed to each.
func PublishFunctionURL(t testing.TB, owners ...string) (*notifytest.Recorder, *FunctionURL) {
	t.Helper()
	s := memory.New()
	pushed := notifytest.NewRecorder()
	log := slog.New(slog.DiscardHandler)
	n := notify.New(auth.NewAuthenticator(s), s, pushed, log, notify.Config{})
	for i, owner := range owners {
		if err := s.PutKey(context.Background(), auth.Key{Hash: auth.Hash("key-" + owner), OwnerID: owner}); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Connect(context.Background(), notify.ConnectRequest{Token: "key-" + owner, ClientID: fmt.Sprint("tab-", i+1), ConnectionID: "conn-" + owner}); err != nil {
			t.Fatal(err)
		}
	}
	return pushed, &FunctionURL{Verifier: ExampleKeyVerifier("lambda"), Account: "123456789012",
		CallerAccount: "123456789012", CallerARN: "arn:aws:iam::123456789012:role/backend",
		Invoke: lambda.NewHandler(publishapi.New(n, log).HandleLambda).Invoke}
}
