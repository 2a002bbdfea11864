// Package apigw is the cloud Pusher: it sends messages to WebSocket clients
// through the API Gateway Management API (POST and GET on
// /{stage}/@connections/{id}) with aws-sdk-go-v2: its client for GET, its
// signer, retryer and error types for the fan-out's POSTs (see Client).
//
// The Management API answers a connection that no longer exists with 410
// GoneException, an oversized message with 413 PayloadTooLargeException,
// a caller without execute-api:ManageConnections with 403 ForbiddenException,
// and throttling (or a client whose send buffer is full) with 429
// LimitExceededException. NewClient retries only the last, and 5xx, with
// backoff; Pusher turns 410 and 413 into notify's sentinel errors.
package apigw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"

	"github.com/wsnotify/wsnotify/shared/notify"
)

// NewClient returns a Management API client for endpoint, the stage URL
// https://{api}.execute-api.{region}.amazonaws.com/{stage}. The template
// builds that URL from the API id, region and stage; the event's domainName
// is not used because behind a custom domain it names the wrong host.
//
// Requests are retried with the SDK's standard retryer, at most maxAttempts
// attempts in all (retry.DefaultMaxAttempts if maxAttempts <= 0): throttling
// (429 LimitExceededException, TooManyRequestsException, an unmodeled 429)
// and 5xx responses, with exponential backoff and jitter. 410, 413 and 403
// are never retried: another attempt cannot change their answer. There is no
// client-side retry quota. retryOpts adjust the retryer further (tests
// shorten its backoff).
//
// maxAttempts is authoritative: AWS_MAX_ATTEMPTS or AWS_RETRY_MODE in cfg do
// not change it, so one push cannot outlast the bound a fan-out is sized for.
//
// m, if not nil, is told of every push whose attempts were throttled or
// retried (see Metrics).
func NewClient(cfg aws.Config, endpoint string, maxAttempts int, m Metrics, retryOpts ...func(*retry.StandardOptions)) (*Client, error) {
	if maxAttempts <= 0 {
		maxAttempts = retry.DefaultMaxAttempts
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("management endpoint %q: want an http(s) URL with a host", endpoint)
	}
	retryer := newRetryer(maxAttempts, retryOpts...)
	httpClient := cfg.HTTPClient
	if httpClient == nil {
		httpClient = awshttp.NewBuildableClient()
	}
	return &Client{
		sdk: apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
			o.BaseEndpoint = aws.String(endpoint)
			o.Retryer = retryer
			// Non-zero, the client would wrap Retryer with cfg's attempt count.
			o.RetryMaxAttempts = 0
		}),
		http:    httpClient,
		creds:   cfg.Credentials,
		signer:  v4.NewSigner(),
		region:  cfg.Region,
		path:    strings.TrimSuffix(u.Path, "/"),
		base:    url.URL{Scheme: u.Scheme, Host: u.Host},
		retryer: retryer,
		metrics: m,
	}, nil
}

// Metrics counts what the retries keep from the Pusher, which sees only a
// push's final answer: implemented by shared/metrics/emf and
// shared/metrics/prom.
type Metrics interface {
	// PushAttempts reports one push (PostToConnection) whose attempts the
	// Management API answered 429 throttled times, and that was attempted
	// again retried times. It is called only when either is above zero.
	PushAttempts(throttled, retried int)
}

// throttle reports whether an attempt was refused with 429: API Gateway's
// LimitExceededException (its account throttle, or a client whose send
// buffer is full), or any other 429.
func throttle(err error) bool {
	var limit *types.LimitExceededException
	var status interface{ HTTPStatusCode() int }
	return errors.As(err, &limit) || (errors.As(err, &status) && status.HTTPStatusCode() == http.StatusTooManyRequests)
}

// newRetryer returns the SDK's standard retryer bounded to maxAttempts,
// which never retries the Management API's 410, 413 and 403 answers.
func newRetryer(maxAttempts int, opts ...func(*retry.StandardOptions)) *retry.Standard {
	return retry.NewStandard(append([]func(*retry.StandardOptions){func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		// The default retry quota (500 tokens, 5 per throttled retry, paid
		// back only when the retry succeeds) runs dry after about a hundred
		// failed throttled retries: in a large fan-out under throttling the
		// remaining pushes would then fail at once, without backoff, and
		// their clients miss the event. The load is bounded already, by the
		// fan-out's concurrency times maxAttempts.
		o.RateLimiter = ratelimit.None
		// The SDK already classifies LimitExceededException as a throttling
		// error (retry.DefaultThrottleErrorCodes) and leaves the three
		// below unretried; saying so first keeps that true should a later
		// SDK widen its defaults, e.g. to every modeled 4xx.
		o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(final)}, o.Retryables...)
	}}, opts...)...)
}

// final marks the errors another attempt cannot change.
func final(err error) aws.Ternary {
	var (
		gone      *types.GoneException
		tooLarge  *types.PayloadTooLargeException
		forbidden *types.ForbiddenException
	)
	if errors.As(err, &gone) || errors.As(err, &tooLarge) || errors.As(err, &forbidden) {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}

// connectionsAPI is the part of the Management API client Pusher uses.
type connectionsAPI interface {
	PostToConnection(ctx context.Context, in *apigatewaymanagementapi.PostToConnectionInput, optFns ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.PostToConnectionOutput, error)
	GetConnection(ctx context.Context, in *apigatewaymanagementapi.GetConnectionInput, optFns ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.GetConnectionOutput, error)
	DeleteConnection(ctx context.Context, in *apigatewaymanagementapi.DeleteConnectionInput, optFns ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.DeleteConnectionOutput, error)
}

// Pusher sends messages to API Gateway WebSocket connections. It is safe for
// concurrent use; create it once per Lambda cold start.
type Pusher struct {
	api connectionsAPI
	log *slog.Logger
}

var _ notify.Pusher = (*Pusher)(nil)

// New returns a Pusher over api, normally the client NewClient returns.
func New(api connectionsAPI, log *slog.Logger) *Pusher {
	return &Pusher{api: api, log: log}
}

// Post sends data to the connection as one message. Data over
// notify.MaxMessageBytes is refused without a request (API Gateway would
// answer 413). The error wraps notify.ErrGone when the connection no longer
// exists and notify.ErrPayloadTooLarge when the message is too large.
func (p *Pusher) Post(ctx context.Context, connectionID string, data []byte) error {
	if len(data) > notify.MaxMessageBytes {
		p.log.ErrorContext(ctx, "message over the size limit not sent", "connectionId", connectionID,
			"bytes", len(data), "limit", notify.MaxMessageBytes)
		return fmt.Errorf("post to connection %s: %d bytes, limit %d: %w", connectionID, len(data), notify.MaxMessageBytes, notify.ErrPayloadTooLarge)
	}
	_, err := p.api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(connectionID),
		Data:         data,
	})
	if err != nil {
		return fmt.Errorf("post to connection %s: %w", connectionID, classify(err))
	}
	return nil
}

// CloseConnection implements notify.Closer with DeleteConnection; a
// connection already gone is not an error.
func (p *Pusher) CloseConnection(ctx context.Context, connectionID string) error {
	_, err := p.api.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{
		ConnectionId: aws.String(connectionID),
	})
	var gone *types.GoneException
	if err != nil && !errors.As(err, &gone) {
		return fmt.Errorf("delete connection %s: %w", connectionID, err)
	}
	return nil
}

// Alive reports whether the connection still exists. A 410 is the answer
// "no", not an error.
func (p *Pusher) Alive(ctx context.Context, connectionID string) (bool, error) {
	_, err := p.api.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{
		ConnectionId: aws.String(connectionID),
	})
	var gone *types.GoneException
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &gone):
		return false, nil
	default:
		return false, fmt.Errorf("get connection %s: %w", connectionID, err)
	}
}

// classify maps the Management API errors callers branch on to notify's
// sentinels, keeping the SDK error (status, request id) in the chain.
func classify(err error) error {
	var (
		gone     *types.GoneException
		tooLarge *types.PayloadTooLargeException
	)
	switch {
	case errors.As(err, &gone):
		return fmt.Errorf("%w: %w", notify.ErrGone, err)
	case errors.As(err, &tooLarge):
		return fmt.Errorf("%w: %w", notify.ErrPayloadTooLarge, err)
	default:
		return err
	}
}
