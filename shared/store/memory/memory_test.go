package memory_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/store"
	"github.com/wsnotify/wsnotify/shared/store/memory"
	"github.com/wsnotify/wsnotify/shared/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) storetest.Store { return memory.New() })
}

func TestTheMemoryHistoryKeepsTheContract(t *testing.T) {
	storetest.RunHistory(t, func(*testing.T) notify.History { return memory.New() })
}

// BenchmarkRecordEventInAFullHistory records into a history held at its
// bound, where every new event drops the oldest: the cost must not grow
// with the bound (it copied the whole history per event before).
func BenchmarkRecordEventInAFullHistory(b *testing.B) {
	for _, keep := range []int{100, 10000} {
		b.Run(fmt.Sprintf("keep=%d", keep), func(b *testing.B) {
			s := memory.New()
			ctx, now := context.Background(), time.Now()
			ev := func(i int) store.Event {
				return store.Event{OwnerID: "o", ID: fmt.Sprint(i), Type: "job_progress", JobID: "j",
					Body: []byte(`{"type":"job_progress"}`), ExpiresAt: now.Add(time.Hour)}
			}
			for i := range keep {
				if _, _, err := s.RecordEvent(ctx, ev(i), keep, now); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				if _, _, err := s.RecordEvent(ctx, ev(keep+i), keep, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
