package memory

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/store"
)

// BenchmarkListConnections lists one owner's 100 records among 10,000
// connections of 100 owners: what every publish and connect does in local mode.
func BenchmarkListConnections(b *testing.B) {
	ctx, now := context.Background(), time.Now()
	s := New()
	for i := range 10000 {
		c := store.Connection{OwnerID: fmt.Sprint("owner-", i%100), ClientID: fmt.Sprint("c", i), ConnectionID: fmt.Sprint("id", i),
			ConnectedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := s.PutConnection(ctx, c, now); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if conns, _ := s.ListConnections(ctx, "owner-42", now); len(conns) != 100 {
			b.Fatalf("listed %d", len(conns))
		}
	}
}
