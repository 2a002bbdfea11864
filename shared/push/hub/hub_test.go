package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/notify"
)

const connID = "TWegAcC4EowCHnA="

func quietHub(t *testing.T, queue int) *Hub {
	t.Helper()
	h, err := New(Config{QueueMessages: queue, WriteTimeout: time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestPostToAnUnknownConnectionIsGone(t *testing.T) {
	h := quietHub(t, 4)
	err := h.Post(context.Background(), connID, []byte(`{}`))
	if !errors.Is(err, notify.ErrGone) {
		t.Fatalf("err = %v, want ErrGone", err)
	}
	if alive, err := h.Alive(context.Background(), connID); alive || err != nil {
		t.Fatalf("Alive = %v, %v", alive, err)
	}
}

func TestAConnectionNotYetOpenIsGone(t *testing.T) {
	h := quietHub(t, 4)
	c, err := h.Reserve(connID, Peer{SourceIP: "127.0.0.1", UserAgent: "test"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(c)
	ctx := context.Background()
	if err := h.Post(ctx, c.ID(), []byte(`{}`)); !errors.Is(err, notify.ErrGone) {
		t.Errorf("Post = %v, want ErrGone: nothing can be posted during $connect", err)
	}
	if alive, _ := h.Alive(ctx, c.ID()); alive {
		t.Error("Alive = true during $connect")
	}
	if _, err := h.Info(c.ID()); !errors.Is(err, notify.ErrGone) {
		t.Errorf("Info = %v, want ErrGone", err)
	}
	if err := h.Close(c.ID()); !errors.Is(err, notify.ErrGone) {
		t.Errorf("Close = %v, want ErrGone", err)
	}
	if _, err := h.Reserve(c.ID(), Peer{}, time.Now()); err == nil {
		t.Error("a reserved id was reserved twice")
	}
}

func TestAnOpenConnectionQueuesBeforeItIsServedAndClosesWhenTheQueueOverflows(t *testing.T) {
	h := quietHub(t, 2)
	c, _ := h.Reserve(connID, Peer{}, time.Now())
	defer h.Release(c)
	c.Open()
	ctx := context.Background()
	for i := range 2 {
		if err := h.Post(ctx, c.ID(), []byte(fmt.Sprint(i))); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	if err := h.Post(ctx, c.ID(), []byte("overflow")); !errors.Is(err, notify.ErrGone) {
		t.Fatalf("post to a full queue = %v, want ErrGone", err)
	}
	if code, reason := c.CloseStatus(); code != StatusSlowConsumer || reason != ReasonSlowConsumer {
		t.Fatalf("closing with %v %q", code, reason)
	}
	if alive, _ := h.Alive(ctx, c.ID()); alive {
		t.Fatal("a slow consumer is still alive")
	}
}

func TestAPayloadOverTheMessageLimitIsRefused(t *testing.T) {
	h := quietHub(t, 4)
	err := h.Post(context.Background(), connID, make([]byte, notify.MaxMessageBytes+1))
	if !errors.Is(err, notify.ErrPayloadTooLarge) {
		t.Fatalf("err = %v, want ErrPayloadTooLarge", err)
	}
}

func TestConnectionsAreRefusedOnceShutDown(t *testing.T) {
	h := quietHub(t, 4)
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Reserve(connID, Peer{}, time.Now()); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("Reserve after Shutdown = %v", err)
	}
}

func TestConfigTakesDefaultsAndRefusesWhatCannotWork(t *testing.T) {
	h, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if c := h.cfg; c.QueueMessages != DefaultQueueMessages || c.QueueBytes != DefaultQueueBytes || c.WriteTimeout != DefaultWriteTimeout ||
		c.IdleTimeout != DefaultIdleTimeout || c.MaxAge != DefaultMaxAge {
		t.Fatalf("defaults: %+v", c)
	}
	if h, err := New(Config{IdleTimeout: Never, MaxAge: Never}); err != nil || h.cfg.IdleTimeout != Never {
		t.Fatalf("Never: %v", err)
	}
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{QueueBytes: notify.MaxMessageBytes - 1}, "queue bytes"},
		{Config{QueueMessages: -1}, "queue messages"},
		{Config{IdleTimeout: -2 * time.Second}, "idle timeout"},
		{Config{MaxAge: -time.Minute}, "maximum age"},
	} {
		if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want an error about %s", tt.cfg, err, tt.want)
		}
	}
}

func TestStatsCountOpenConnectionsAndSlowConsumersExactly(t *testing.T) {
	h := quietHub(t, 1)
	ctx := context.Background()
	stats := func(open int64, slow uint64) {
		t.Helper()
		if got := h.Stats(); got != (Stats{Open: open, SlowConsumerCloses: slow}) {
			t.Fatalf("Stats = %+v, want %d open, %d slow consumer closes", got, open, slow)
		}
	}
	a, _ := h.Reserve("a", Peer{}, time.Now())
	b, _ := h.Reserve("b", Peer{}, time.Now())
	c, _ := h.Reserve("c", Peer{}, time.Now())
	stats(0, 0) // in their $connect: not open yet
	a.Open()
	b.Open()
	c.Open()
	a.Open() // opening twice counts once
	stats(3, 0)
	if err := h.Close("a"); err != nil { // DELETE @connections: closing
		t.Fatal(err)
	}
	stats(2, 0)
	_ = h.Post(ctx, "b", []byte("1"))
	if err := h.Post(ctx, "b", []byte("2")); !errors.Is(err, notify.ErrGone) { // the queue of one overflows
		t.Fatalf("overflow: %v", err)
	}
	_ = h.Post(ctx, "b", []byte("3")) // already closing: not a second close
	stats(1, 1)
	h.Release(a)
	h.Release(b)
	stats(1, 1)
	h.Release(c) // released without a close: it leaves the open ones too
	stats(0, 1)
	abandoned, _ := h.Reserve("d", Peer{}, time.Now())
	abandoned.Abandon("handshake failed")
	h.Release(abandoned)
	stats(0, 1)
}
