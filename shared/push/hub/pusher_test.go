package hub_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/shared/notify/pushertest"
	"github.com/wsnotify/wsnotify/shared/push/hub"
)

// serve is the smallest WebSocket server over a Hub: the connection id is
// the request's path, and the connection lives until it closes.
func serve(h *hub.Hub) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := h.Reserve(strings.TrimPrefix(r.URL.Path, "/"), hub.Peer{SourceIP: r.RemoteAddr, UserAgent: r.UserAgent()}, time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		defer h.Release(c)
		c.Open()
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			c.Abandon("handshake failed")
			return
		}
		c.Serve(ws, func(websocket.MessageType, []byte) {})
	})
}

func TestTheHubKeepsThePusherContract(t *testing.T) {
	pushertest.Run(t, func(t *testing.T) pushertest.Target {
		h, err := hub.New(hub.Config{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(serve(h))
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), pushertest.Wait)
			defer cancel()
			if err := h.Shutdown(ctx); err != nil {
				t.Error(err)
			}
			srv.Close()
		})
		var n atomic.Int64
		return pushertest.Target{
			Pusher: h,
			Connect: func(t *testing.T) pushertest.Connection {
				id := fmt.Sprintf("conn%d", n.Add(1))
				ctx, cancel := context.WithTimeout(context.Background(), pushertest.Wait)
				defer cancel()
				c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/"+id, nil)
				if err != nil {
					t.Fatal(err)
				}
				c.SetReadLimit(1 << 20)
				t.Cleanup(func() { _ = c.CloseNow() })
				return pushertest.Connection{
					ID: id,
					Next: func(t *testing.T) []byte {
						t.Helper()
						ctx, cancel := context.WithTimeout(context.Background(), pushertest.Wait)
						defer cancel()
						_, data, err := c.Read(ctx)
						if err != nil {
							t.Fatalf("read from %s: %v", id, err)
						}
						return data
					},
					End: func(t *testing.T) {
						if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
							t.Fatal(err)
						}
					},
				}
			},
		}
	})
}
