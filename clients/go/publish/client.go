package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The publish API's limits of one request; Client.Publish splits a longer
// call into several requests.
const (
	MaxRequestMessages = 100
	MaxRequestBytes    = 256 * 1024
)

// Client publishes over the HTTP publish API.
type Client struct {
	endpoint string // the function URL, the HTTP API's URL, or local mode's http://127.0.0.1:8000
	http     aws.HTTPClient
	sign     func(ctx context.Context, r *http.Request, payloadHash string) error
	retryer  aws.Retryer
}

// NewClient returns a client of the stack's publish API at endpoint that
// signs each request with Signature Version 4, with cfg's credentials: cfg
// from config.LoadDefaultConfig takes them from the default chain
// (environment, shared files, SSO, the role of the function or container).
// Its HTTP client and retryer are cfg's, or a plain client and the SDK's
// standard retryer.
//
// The endpoint is one of the stack's two doors to PublishFunction, without
// /v1/publish; the host says how to sign:
//
//   - the function URL (output PublishFunctionUrl,
//     https://{url-id}.lambda-url.{region}.on.aws/): signed for "lambda" in
//     the function's region, the one the host names, with the body's hash
//     in X-Amz-Content-Sha256 (Lambda takes no unsigned body). cfg's region
//     may be empty; a region other than the host's is refused with an error
//     from every call, as a signature for it could only be refused. The
//     caller needs lambda:InvokeFunctionUrl and lambda:InvokeFunction on
//     the function.
//   - the HTTP API (output PublishApiURL,
//     https://{api}.execute-api.{region}.amazonaws.com) or a custom domain
//     in front of it: signed for "execute-api" in cfg's region. The caller
//     needs execute-api:Invoke on the two routes.
func NewClient(endpoint string, cfg aws.Config) *Client {
	signer := v4.NewSigner()
	c := newClient(endpoint, cfg.HTTPClient, cfg.Retryer)
	service, region, setupErr := signingFor(c.endpoint, cfg.Region)
	c.sign = func(ctx context.Context, r *http.Request, payloadHash string) error {
		if setupErr != nil {
			return setupErr
		}
		if cfg.Credentials == nil {
			return errors.New("publish: no AWS credentials (config.LoadDefaultConfig finds them)")
		}
		creds, err := cfg.Credentials.Retrieve(ctx)
		if err != nil {
			return fmt.Errorf("publish: retrieve AWS credentials: %w", err)
		}
		if service == serviceLambda {
			r.Header.Set("X-Amz-Content-Sha256", payloadHash) // signed with the rest
		}
		return signer.SignHTTP(ctx, creds, r, payloadHash, service, region, time.Now())
	}
	return c
}

// The signing names of the two doors to PublishFunction.
const (
	serviceLambda     = "lambda"      // its function URL
	serviceExecuteAPI = "execute-api" // the HTTP API
)

// signingFor returns the signing name and region of a request to endpoint
// for a config whose region is region, or why it cannot be signed.
func signingFor(endpoint, region string) (service, signingRegion string, err error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", "", fmt.Errorf("publish: endpoint %q: %w", endpoint, err)
	}
	hostRegion, ok := functionURLRegion(u.Hostname())
	switch {
	case !ok:
		return serviceExecuteAPI, region, nil
	case region != "" && region != hostRegion:
		return "", "", fmt.Errorf("publish: the endpoint is a Lambda function URL in %s, but the AWS config's region is %s: "+
			"its signature must name the function's region; set the region to %s or leave it empty", hostRegion, region, hostRegion)
	}
	return serviceLambda, hostRegion, nil
}

// functionURLRegion returns the region of a Lambda function URL's host,
// {url-id}.lambda-url.{region}.on.aws, and whether host is one.
func functionURLRegion(host string) (string, bool) {
	labels := strings.Split(strings.ToLower(strings.TrimSuffix(host, ".")), ".")
	if len(labels) != 5 || labels[1] != "lambda-url" || labels[3] != "on" || labels[4] != "aws" {
		return "", false
	}
	for _, l := range labels[:3] {
		if l == "" || strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return "", false
		}
	}
	return labels[2], true
}

// NewLocalClient returns a client of local mode's publish API at endpoint
// (e.g. http://127.0.0.1:8000), sending controlToken as a bearer token if
// it is not empty (local mode started with --control-token).
func NewLocalClient(endpoint, controlToken string) *Client {
	c := newClient(endpoint, nil, nil)
	c.sign = func(_ context.Context, r *http.Request, _ string) error {
		if controlToken != "" {
			r.Header.Set("Authorization", "Bearer "+controlToken)
		}
		return nil
	}
	return c
}

func newClient(endpoint string, httpClient aws.HTTPClient, retryer func() aws.Retryer) *Client {
	c := &Client{endpoint: strings.TrimSuffix(endpoint, "/"), http: httpClient}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	if retryer != nil {
		c.retryer = retryer()
	}
	if c.retryer == nil {
		c.retryer = retry.NewStandard()
	}
	return c
}

// Result is what the publish API did with one message.
type Result struct {
	// ID is the event's id; clients see it as the event's "id".
	ID string `json:"id"`
	// Seq is the event's place among its owner's events; 0 for an event to
	// one client.
	Seq int64 `json:"seq,omitempty"`
	// Delivered is how many connections got the event; 0 with no
	// connection is no error (the event is kept for resume all the same).
	Delivered int `json:"delivered"`
	// Duplicate says the idempotency key named an event published before:
	// ID and Seq are that event's, and it was not pushed again.
	Duplicate bool `json:"duplicate,omitempty"`
	// Failed is how many connections that looked live the event did not
	// reach (their push failed); they get it when they resume.
	Failed int `json:"failed,omitempty"`
}

// APIError is an answer of the publish API other than 200: its status, the
// code ("INVALID_EVENT", "IDEMPOTENCY_CONFLICT", ...) and one-line reason,
// and the results of the messages published before a failure, in order.
type APIError struct {
	Status  int
	Code    string
	Message string
	Results []Result
}

func (e *APIError) Error() string {
	return fmt.Sprintf("publish API: %d %s: %s", e.Status, e.Code, e.Message)
}

// HTTPStatusCode and ErrorCode let the SDK's retryer classify the error:
// 5xx and throttling are retried, other refusals are not.
func (e *APIError) HTTPStatusCode() int { return e.Status }

// ErrorCode implements the retryer's error-code check; a 429 without a
// code of ours is API Gateway's throttling.
func (e *APIError) ErrorCode() string {
	if e.Code == "" && e.Status == http.StatusTooManyRequests {
		return "TooManyRequestsException"
	}
	return e.Code
}

// Publish validates every message, then publishes them in order, up to
// MaxRequestMessages a request, and returns one result per message. An
// invalid message is an *InvalidError and nothing is sent. A refusal or a
// failure is an *APIError (or the transport's error) with the results of
// the messages published before it; a message without an idempotency key
// is given one, so that the retryer's retries, and a call made again with
// the same messages after a failure, publish each message once.
func (c *Client) Publish(ctx context.Context, msgs ...Message) ([]Result, error) {
	if _, err := check(msgs); err != nil {
		return nil, err
	}
	wire := make([]envelope, len(msgs))
	for i, m := range msgs {
		ev, _ := json.Marshal(m.Event) // check marshalled it already
		key := m.IdempotencyKey
		if key == "" {
			key = newKey()
		}
		wire[i] = envelope{OwnerID: m.OwnerID, ClientID: m.ClientID, IdempotencyKey: key, Event: ev}
	}
	results := make([]Result, 0, len(msgs))
	for start := 0; start < len(wire); {
		end := min(start+MaxRequestMessages, len(wire))
		body, _ := json.Marshal(map[string]any{"messages": wire[start:end]})
		for end-start > 1 && len(body) > MaxRequestBytes {
			end = start + (end-start)/2
			body, _ = json.Marshal(map[string]any{"messages": wire[start:end]})
		}
		var answer struct {
			Results []Result `json:"results"`
		}
		err := c.do(ctx, http.MethodPost, "/v1/publish", body, &answer)
		var apiErr *APIError
		if errors.As(err, &apiErr) {
			apiErr.Results = append(results, apiErr.Results...)
		}
		if err != nil {
			return results, err
		}
		if len(answer.Results) != end-start {
			return results, fmt.Errorf("publish API: %d results for %d messages", len(answer.Results), end-start)
		}
		results = append(results, answer.Results...)
		start = end
	}
	return results, nil
}

// Presence is who is connected for an owner.
type Presence struct {
	OwnerID string            `json:"ownerId"`
	Count   int               `json:"count"`
	Clients []ConnectedClient `json:"clients"`
}

// ConnectedClient is one connected client of an owner.
type ConnectedClient struct {
	ClientID    string    `json:"clientId"`
	ConnectedAt time.Time `json:"connectedAt"`
}

// Connections asks which clients of ownerID are connected: to choose
// between an in-app notice and an e-mail, for example.
func (c *Client) Connections(ctx context.Context, ownerID string) (Presence, error) {
	var p Presence
	err := c.do(ctx, http.MethodGet, "/v1/owners/"+url.PathEscape(ownerID)+"/connections", nil, &p)
	return p, err
}

// maxAnswerBytes bounds an answer read: 100 results, or a presence list.
const maxAnswerBytes = 4 << 20

// do sends one request, with the retryer's retries, and decodes a 200
// answer into out.
func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	release := func(error) error { return nil }
	for attempt := 1; ; attempt++ {
		err := c.attempt(ctx, method, path, body, payloadHash, out)
		if err == nil {
			_ = release(nil) // a retry that succeeded gives its quota back
			return nil
		}
		if ctx.Err() != nil || attempt >= c.retryer.MaxAttempts() || !c.retryer.IsErrorRetryable(err) {
			return err
		}
		var tokenErr error
		if release, tokenErr = c.retryer.GetRetryToken(ctx, err); tokenErr != nil {
			return err // the retry quota is spent: the caller hears of the failure now
		}
		delay, delayErr := c.retryer.RetryDelay(attempt, err)
		if delayErr != nil {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (retry cut short: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// attempt is one request: signed afresh, as a signature holds its time.
func (c *Client) attempt(ctx context.Context, method, path string, body []byte, payloadHash string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := c.sign(ctx, req, payloadHash); err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("publish API: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("publish API: %s %s: read the answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &APIError{Status: resp.StatusCode}
		var refusal struct {
			Code    string   `json:"code"`
			Error   string   `json:"error"`
			Message string   `json:"message"` // API Gateway's own refusals
			Results []Result `json:"results"`
		}
		if json.Unmarshal(data, &refusal) == nil {
			e.Code, e.Message, e.Results = refusal.Code, refusal.Error, refusal.Results
			if e.Message == "" {
				e.Message = refusal.Message
			}
		}
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
		return e
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("publish API: %s %s answered %d bytes that are not its JSON: %w", method, path, len(data), err)
	}
	return nil
}
