package server_test

import (
	"context"
	"testing"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/shared/push/hub"
)

// TestAPingFloodOwesOnePongAndNeverClosesAReader: a client pipelines 5,000
// pings while reading as fast as it can, on a connection whose queue holds
// 4 messages. The pongs it still owes are coalesced into one queued answer,
// so it is never closed 1013; its last ping is answered.
func TestAPingFloodOwesOnePongAndNeverClosesAReader(t *testing.T) {
	cfg := twoOwners()
	cfg.Connections = hub.Config{QueueMessages: 4}
	h := start(t, cfg)
	c := h.connect(t, "flooder", keyA)
	const pings = 5000
	ctx, cancel := context.WithTimeout(context.Background(), 3*wait)
	defer cancel()
	sent := make(chan error, 1)
	go func() {
		for range pings {
			if err := c.Write(ctx, websocket.MessageText, []byte(`{"action":"ping"}`)); err != nil {
				sent <- err
				return
			}
		}
		// A marker with an answer of its own: every pong owed comes before it.
		sent <- c.Write(ctx, websocket.MessageText, []byte(`{"action":"marker"}`))
	}()
	pongs := 0
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("after %d pongs: %v", pongs, err)
		}
		m := decode(t, string(data))
		if m["type"] == "pong" {
			pongs++
			continue
		}
		if m["type"] != "error" || m["code"] != "BAD_REQUEST" {
			t.Fatalf("got %s during the flood", data)
		}
		break
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if pongs < 1 || pongs > pings {
		t.Fatalf("%d pongs for %d pings", pongs, pings)
	}
	if n := h.srv.Hub().Stats().SlowConsumerCloses; n != 0 {
		t.Fatalf("%d slow-consumer closes", n)
	}
	appPing(t, c)
	t.Logf("%d pings answered with %d pongs", pings, pongs)
}
