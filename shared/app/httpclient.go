package app

import (
	"net"
	"net/http"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// Timeouts of the HTTP client under every SDK client (DynamoDB, the
// Management API). Both services answer in milliseconds; without these, a
// peer that accepts a connection and never answers holds an invocation
// until its deadline, and the SDK's retries never get their turn.
const (
	dialTimeout           = 3 * time.Second
	responseHeaderTimeout = 10 * time.Second
)

// HTTPClient returns the HTTP client the SDK clients share: the SDK's
// default transport with bounded connect, TLS handshake and time to the
// response's headers. A timed-out request is retried by the SDK's retryer
// like any other transport error.
func HTTPClient() *awshttp.BuildableClient {
	return newHTTPClient(dialTimeout, responseHeaderTimeout)
}

// pooledHTTPClient returns HTTPClient with a pool of n connections per host:
// at most n open, and all n kept when idle. A publish posts to the
// Management API n at a time (the fan-out's concurrency); the SDK's default
// transport keeps only 10 idle connections per host, so it closed the other
// n-10 after each post and the post started next paid a TLS handshake of its
// own: 69 handshakes for 10,000 posts at n=32, 5,333 at n=128, and a fan-out
// that got slower as n grew. At most n open makes a post that finds no idle
// connection wait for one rather than dial one more, which would outlive the
// fan-out. The fan-out's 410 cleanups reach DynamoDB n at a time too.
func pooledHTTPClient(n int) *awshttp.BuildableClient {
	return HTTPClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxConnsPerHost = n
		t.MaxIdleConnsPerHost = n
		t.MaxIdleConns = 0 // no bound across hosts: each host's is n
	})
}

func newHTTPClient(dial, responseHeader time.Duration) *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = dial }).
		WithTransportOptions(func(t *http.Transport) {
			t.TLSHandshakeTimeout = dial
			t.ResponseHeaderTimeout = responseHeader
		})
}
