package metrics_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/metrics/emf"
	"github.com/wsnotify/wsnotify/shared/metrics/prom"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/store"
	"github.com/wsnotify/wsnotify/shared/store/memory"
)

// withoutHistory hides the memory store's history from the Notifier: the
// history's cost grows with the events an owner holds and would drown what
// is measured here.
type withoutHistory struct{ notify.Store }

type discardPusher struct{}

func (discardPusher) Post(context.Context, string, []byte) error  { return nil }
func (discardPusher) Alive(context.Context, string) (bool, error) { return true, nil }

// BenchmarkPublishWithMetrics is notify's BenchmarkPublish (memory store
// without its history, a pusher that discards: the notifier's own cost)
// without metrics, with the
// Lambda functions' EMF recorder (flushed every 10 publishes, as a batch of
// job events is) and with local mode's Prometheus collectors: what the
// figures cost a publish.
func BenchmarkPublishWithMetrics(b *testing.B) {
	ev := event.JobProgress{Type: event.TypeJobProgress, JobID: "job_1", Progress: 50, ProcessedCount: 1, TotalCount: 2, CurrentFile: "a.pdf"}
	for _, n := range []int{1, 100} {
		for _, kind := range []string{"none", "emf", "prometheus"} {
			b.Run(fmt.Sprintf("connections=%d/metrics=%s", n, kind), func(b *testing.B) {
				ctx := context.Background()
				s := memory.New()
				for i := range n {
					if err := s.PutConnection(ctx, store.Connection{OwnerID: "o", ClientID: fmt.Sprint("c", i), ConnectionID: fmt.Sprint("id", i),
						ConnectedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}, time.Now()); err != nil {
						b.Fatal(err)
					}
				}
				cfg := notify.Config{}
				flush := func() {}
				switch kind {
				case "emf":
					rec, err := emf.New(io.Discard, "bench", "bench")
					if err != nil {
						b.Fatal(err)
					}
					cfg.Metrics = rec
					flush = func() { _ = rec.Flush() }
				case "prometheus":
					m, err := prom.New(prometheus.NewRegistry(), nil)
					if err != nil {
						b.Fatal(err)
					}
					cfg.Metrics = m
				}
				nt := notify.New(auth.NewAuthenticator(s), withoutHistory{s}, discardPusher{}, slog.New(slog.DiscardHandler), cfg)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := nt.Publish(ctx, "o", "", "", ev); err != nil {
						b.Fatal(err)
					}
					if i++; i%10 == 0 {
						flush()
					}
				}
			})
		}
	}
}
