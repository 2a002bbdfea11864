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

func newHTTPClient(dial, responseHeader time.Duration) *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = dial }).
		WithTransportOptions(func(t *http.Transport) {
			t.TLSHandshakeTimeout = dial
			t.ResponseHeaderTimeout = responseHeader
		})
}
