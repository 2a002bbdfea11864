package server_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/infra/local/server"
)

// recorder is a set of Routes that records the events they receive.
type recorder struct {
	mu     sync.Mutex
	events []events.APIGatewayWebsocketProxyRequest
	// connect answers $connect; nil accepts.
	connect func() (events.APIGatewayProxyResponse, error)
	// reply answers $default.
	reply func(events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error)
	// disconnected receives each $disconnect.
	disconnected chan events.APIGatewayWebsocketProxyRequest
}

func (r *recorder) record(req events.APIGatewayWebsocketProxyRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, req)
}

func (r *recorder) routes() server.Routes {
	return server.Routes{
		Connect: func(_ context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			r.record(req)
			if r.connect != nil {
				return r.connect()
			}
			return events.APIGatewayProxyResponse{StatusCode: 200}, nil
		},
		Default: func(_ context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			r.record(req)
			return r.reply(req)
		},
		Disconnect: func(_ context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			r.record(req)
			r.disconnected <- req
			return events.APIGatewayProxyResponse{StatusCode: 200}, nil
		},
	}
}

func (r *recorder) first(routeKey string) events.APIGatewayWebsocketProxyRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.RequestContext.RouteKey == routeKey {
			return e
		}
	}
	return events.APIGatewayWebsocketProxyRequest{}
}

func TestRoutesReceiveTheEventsAPIGatewaySends(t *testing.T) {
	t.Parallel()
	rec := &recorder{
		disconnected: make(chan events.APIGatewayWebsocketProxyRequest, 1),
		reply: func(req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{StatusCode: 200, Body: `{"echo":"` + req.Body + `"}`}, nil
		},
	}
	h := start(t, server.Config{Routes: rec.routes()})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, _, err := asyncapi.Dial(ctx, "ws://"+h.host+"/api/v1/ws/tab-1?token=k&x=1&x=2", &websocket.DialOptions{
		HTTPHeader: http.Header{"User-Agent": {"seed-test"}, "Origin": {"https://app.example.com"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if m := readUnchecked(t, c); m["echo"] != "hi" { // the test route's answer
		t.Fatalf("route response = %v", m)
	}
	if err := c.Write(ctx, websocket.MessageBinary, []byte{0xff, 0x00}); err != nil {
		t.Fatal(err)
	}
	readUnchecked(t, c) // the test route's answer
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Fatal(err)
	}
	var disc events.APIGatewayWebsocketProxyRequest
	select {
	case disc = <-rec.disconnected:
	case <-ctx.Done():
		t.Fatal("no $disconnect")
	}

	conn := rec.first("$connect")
	id := conn.RequestContext.ConnectionID
	rc := conn.RequestContext
	t.Run("$connect carries the handshake", func(t *testing.T) {
		if !regexp.MustCompile(`^[A-Za-z0-9+/]{15}=$`).MatchString(id) {
			t.Errorf("connectionId %q", id)
		}
		if rc.EventType != "CONNECT" || rc.Stage != "local" || rc.MessageDirection != "IN" || rc.DomainName != "127.0.0.1" ||
			rc.Identity.SourceIP != "127.0.0.1" || rc.Identity.UserAgent != "seed-test" || rc.ConnectedAt == 0 || rc.RequestTimeEpoch < rc.ConnectedAt ||
			rc.RequestID == "" || rc.RequestTime == "" || rc.APIID == "" {
			t.Errorf("requestContext = %+v", rc)
		}
		if conn.PathParameters["client_id"] != "tab-1" || conn.QueryStringParameters["token"] != "k" ||
			strings.Join(conn.MultiValueQueryStringParameters["x"], ",") != "1,2" {
			t.Errorf("path %v query %v %v", conn.PathParameters, conn.QueryStringParameters, conn.MultiValueQueryStringParameters)
		}
		if conn.Headers["Origin"] != "https://app.example.com" || conn.Headers["Host"] != h.host || conn.Headers["X-Forwarded-For"] != "127.0.0.1" {
			t.Errorf("headers %v", conn.Headers)
		}
	})
	t.Run("$default carries each message, binary ones in base64", func(t *testing.T) {
		var msgs []events.APIGatewayWebsocketProxyRequest
		rec.mu.Lock()
		for _, e := range rec.events {
			if e.RequestContext.RouteKey == "$default" {
				msgs = append(msgs, e)
			}
		}
		rec.mu.Unlock()
		if len(msgs) != 2 {
			t.Fatalf("%d $default events", len(msgs))
		}
		text, bin := msgs[0], msgs[1]
		if text.Body != "hi" || text.IsBase64Encoded || text.RequestContext.EventType != "MESSAGE" ||
			text.RequestContext.ConnectionID != id || text.RequestContext.MessageID == nil {
			t.Errorf("text message event = %+v", text)
		}
		if bin.Body != base64.StdEncoding.EncodeToString([]byte{0xff, 0x00}) || !bin.IsBase64Encoded {
			t.Errorf("binary message event = %+v", bin)
		}
	})
	t.Run("$disconnect carries the close code and reason", func(t *testing.T) {
		d := disc.RequestContext
		if d.EventType != "DISCONNECT" || d.ConnectionID != id || d.DisconnectStatusCode != 1000 ||
			d.DisconnectReason == nil || *d.DisconnectReason != "done" {
			t.Errorf("requestContext = %+v", d)
		}
	})
}

func TestFailingIntegrationsAnswerAsAPIGatewayDoes(t *testing.T) {
	t.Parallel()
	dial := func(t *testing.T, h *harness) (*asyncapi.Conn, *http.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		return h.dial(ctx, "c", "k")
	}
	t.Run("a failing $connect refuses the handshake with 500", func(t *testing.T) {
		rec := &recorder{connect: func() (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{}, errors.New("boom")
		}}
		h := start(t, server.Config{Routes: rec.routes()})
		if _, resp, err := dial(t, h); err == nil || resp == nil || resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("resp %v err %v", resp, err)
		}
		eventually(t, "the refused connection to be released", func() bool { return h.srv.Hub().Len() == 0 })
	})
	t.Run("a $connect answer without a status refuses the handshake with 502", func(t *testing.T) {
		rec := &recorder{connect: func() (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{}, nil
		}}
		h := start(t, server.Config{Routes: rec.routes()})
		if _, resp, err := dial(t, h); err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("resp %v err %v", resp, err)
		}
	})
	t.Run("a failing $default answers the client with an internal error and keeps the connection", func(t *testing.T) {
		rec := &recorder{
			disconnected: make(chan events.APIGatewayWebsocketProxyRequest, 1),
			reply: func(events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
				return events.APIGatewayProxyResponse{}, errors.New("boom")
			},
		}
		h := start(t, server.Config{Routes: rec.routes()})
		c, _, err := dial(t, h)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		for range 2 {
			if err := c.Write(context.Background(), websocket.MessageText, []byte("hi")); err != nil {
				t.Fatal(err)
			}
			if m := read(t, c); m["message"] != "Internal server error" || m["connectionId"] == "" || m["requestId"] == "" {
				t.Fatalf("got %v", m)
			}
		}
	})
}
