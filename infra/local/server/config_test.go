package server

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/push/hub"
)

func TestNewRefusesAByteBoundBelowOneMessage(t *testing.T) {
	_, err := New(Config{Connections: hub.Config{QueueBytes: notify.MaxMessageBytes - 1}, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "queue bytes") {
		t.Fatalf("err = %v", err)
	}
}
