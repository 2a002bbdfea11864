package hub_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/shared/push/hub"
)

// TestAnIdleConnectionHoldsNoWriter posts, reads the message, and checks
// that the connection's writer has ended, then that the next post starts
// another: the writer runs only while there is something to write.
func TestAnIdleConnectionHoldsNoWriter(t *testing.T) {
	h, err := hub.New(hub.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(serve(h))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const id = "idle"
	client, _, err := websocket.Dial(ctx, srv.URL+"/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	idle := h.WriterIdle(id)
	for i, msg := range []string{`{"n":1}`, `{"n":2}`} {
		if err := h.Post(ctx, id, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, got, err := client.Read(ctx); err != nil || string(got) != msg {
			t.Fatalf("message %d: %q, %v; want %s", i, got, err, msg)
		}
		select { // the writer ends right after its last write
		case <-idle:
		case <-ctx.Done():
			t.Fatalf("message %d: the writer still runs with nothing to write", i)
		}
		if h.WriterRunning(id) {
			t.Fatalf("message %d: a writer runs with nothing to write", i)
		}
	}
	client.CloseNow()
	if err := h.Shutdown(ctx); err != nil { // waits for the release
		t.Fatal(err)
	}
}
