package app

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestTheSDKHTTPClientGivesUpOnAPeerThatNeverAnswers(t *testing.T) {
	// A listener that accepts and never answers: what a stopped or wedged
	// DynamoDB endpoint looks like from here.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		select {
		case c := <-accepted:
			c.Close()
		default:
		}
	})

	client := newHTTPClient(time.Second, 200*time.Millisecond)
	// The context's deadline is far later: the client's own timeout must end the request.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+l.Addr().String()+"/", nil)
	start := time.Now()
	_, err = client.Do(req)
	var netErr net.Error
	if !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Fatalf("got %v, want a timeout", err)
	}
	if ctx.Err() != nil || time.Since(start) > 30*time.Second {
		t.Fatalf("the request ran until the context's deadline (%v)", time.Since(start))
	}
}

func TestTheSharedHTTPClientHasBoundedTimeouts(t *testing.T) {
	tr := HTTPClient().GetTransport()
	if tr.ResponseHeaderTimeout != responseHeaderTimeout || tr.TLSHandshakeTimeout != dialTimeout {
		t.Fatalf("transport timeouts: header %v, TLS %v", tr.ResponseHeaderTimeout, tr.TLSHandshakeTimeout)
	}
	if d := HTTPClient().GetDialer(); d.Timeout != dialTimeout {
		t.Fatalf("dial timeout %v", d.Timeout)
	}
}
