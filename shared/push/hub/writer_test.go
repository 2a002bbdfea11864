package hub

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestAnIdleConnectionHoldsNoWriter posts, reads the message, and checks
// that the connection's writer has ended, then that the next post starts
// another: the writer runs only while there is something to write.
func TestAnIdleConnectionHoldsNoWriter(t *testing.T) {
	h, err := New(Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan *Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := h.Reserve(connID, Peer{}, time.Now())
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
		served <- c
		c.Serve(ws, func(websocket.MessageType, []byte) {})
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, _, err := websocket.Dial(ctx, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseNow()
	c := <-served
	writing := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.writing
	}
	for i, msg := range []string{`{"n":1}`, `{"n":2}`} {
		if err := h.Post(ctx, connID, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, got, err := client.Read(ctx); err != nil || string(got) != msg {
			t.Fatalf("message %d: %q, %v; want %s", i, got, err, msg)
		}
		for writing() { // the writer ends right after its last write
			select {
			case <-ctx.Done():
				t.Fatalf("message %d: the writer still runs with nothing to write", i)
			case <-time.After(time.Millisecond):
			}
		}
	}
	client.CloseNow()
	if err := h.Shutdown(ctx); err != nil { // waits for the release
		t.Fatal(err)
	}
}
