package notify_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/store"
	"github.com/wsnotify/wsnotify/shared/store/memory"
)

// slowCloser answers each post and close after latency, as the Management
// API answers after some 20 ms.
type slowCloser struct{ latency time.Duration }

func (p slowCloser) Post(context.Context, string, []byte) error    { time.Sleep(p.latency); return nil }
func (p slowCloser) CloseConnection(context.Context, string) error { time.Sleep(p.latency); return nil }
func (p slowCloser) Alive(context.Context, string) (bool, error)   { return true, nil }

// BenchmarkConnectClosingExpiredTokens times the worst connect of the
// expired-token rule: an owner at its cap, every connection of an expired
// token, each post and close answered after 20 ms. It reports the
// connect's seconds (the connect function has 10).
func BenchmarkConnectClosingExpiredTokens(b *testing.B) {
	secret := []byte(strings.Repeat("b", auth.MinSecretBytes))
	for _, k := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("expired=%d", k), func(b *testing.B) {
			ctx := context.Background()
			now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
			var elapsed time.Duration
			for b.Loop() {
				b.StopTimer()
				s := memory.New()
				for i := range k {
					c := store.Connection{OwnerID: "owner-a", ClientID: fmt.Sprint("c", i), ConnectionID: fmt.Sprint("conn", i),
						ConnectedAt: now.Add(-time.Hour), TokenExpiresAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}
					if err := s.PutConnection(ctx, c, c.ConnectedAt); err != nil {
						b.Fatal(err)
					}
				}
				if err := s.CorrectConnectionCount(ctx, "owner-a", 0, k); err != nil {
					b.Fatal(err)
				}
				a := auth.NewAuthenticator(s).WithTokens(auth.NewTokenVerifier(auth.StaticSecrets{secret}, auth.TokenConfig{Now: func() time.Time { return now }}))
				n := notify.New(a, s, slowCloser{20 * time.Millisecond}, slog.New(slog.DiscardHandler),
					notify.Config{MaxConnectionsPerOwner: k, ConnectRate: 1e9, Now: func() time.Time { return now }})
				token, err := auth.MintToken(secret, "owner-a", time.Hour, now)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				if _, err := n.Connect(ctx, notify.ConnectRequest{Token: token, ClientID: "fresh", ConnectionID: "fresh"}); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
			}
			b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/connect")
		})
	}
}
