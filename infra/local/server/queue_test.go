package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsnotify/wsnotify/shared/notify"
)

func TestTheOutgoingQueueIsBoundedByMessagesAndByBytesWhicheverComesFirst(t *testing.T) {
	big := []byte(strings.Repeat("x", notify.MaxMessageBytes))
	small := []byte(`{"type":"pong"}`)
	tests := []struct {
		name       string
		queueSize  int
		queueBytes int
		accepted   [][]byte // posted in order, all queued
		taken      int      // messages the writer takes before overflow
		overflow   []byte   // then refused as a slow consumer
	}{
		{name: "the message bound is reached first with small messages",
			queueSize: 3, queueBytes: 4 << 20,
			accepted: [][]byte{small, small, small}, overflow: small},
		{name: "the byte bound is reached first with large messages",
			queueSize: 100, queueBytes: 2 * notify.MaxMessageBytes,
			accepted: [][]byte{big, big}, overflow: small},
		{name: "bytes the writer has taken no longer count",
			queueSize: 100, queueBytes: 2 * notify.MaxMessageBytes,
			accepted: [][]byte{big, big, big}, taken: 1, overflow: big},
		{name: "an empty queue takes a message of the largest size under the smallest byte bound",
			queueSize: 100, queueBytes: notify.MaxMessageBytes,
			accepted: [][]byte{big}, overflow: small},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHub(hubConfig{queueSize: tt.queueSize, queueBytes: tt.queueBytes, writeTimeout: time.Second}, slog.New(slog.DiscardHandler))
			c, err := h.reserve("TWegAcC4EowCHnA=", "127.0.0.1", "test", "localhost", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			defer h.release(c)
			c.open() // no writer: the test takes messages itself, as the writer would
			ctx := context.Background()
			for i, data := range tt.accepted {
				if i == len(tt.accepted)-tt.taken {
					for range tt.taken {
						if _, ok := c.next(); !ok {
							t.Fatal("queue empty")
						}
					}
				}
				if err := h.Post(ctx, c.id, data); err != nil {
					t.Fatalf("post %d (%d bytes): %v", i, len(data), err)
				}
			}
			if err := h.Post(ctx, c.id, tt.overflow); !errors.Is(err, notify.ErrGone) {
				t.Fatalf("overflowing post = %v, want ErrGone", err)
			}
			if code, reason := c.closeStatus(); code != websocket.StatusTryAgainLater || reason != "slow consumer" {
				t.Fatalf("closing with %v %q, want 1013 slow consumer", code, reason)
			}
		})
	}
}

func TestNewRefusesAByteBoundBelowOneMessage(t *testing.T) {
	_, err := New(Config{QueueBytes: notify.MaxMessageBytes - 1, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "queue bytes") {
		t.Fatalf("err = %v", err)
	}
}
