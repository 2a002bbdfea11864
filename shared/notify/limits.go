package notify

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults for the connect limits: generous for a busy app, tight enough that
// one leaked key or runaway client cannot flood the store.
const (
	DefaultConnectRate            = 50  // connects per second per API key (per owner for signed tokens)
	DefaultConnectBurst           = 100 // connects at once per API key (per owner for signed tokens)
	DefaultMaxConnectionsPerOwner = 10000
)

// maxIdleBuckets is how many key buckets are kept before idle ones (full
// again, so forgetting them changes nothing) are dropped.
const maxIdleBuckets = 10000

// keyLimiter is a token bucket per rate key (auth.Identity.RateKey): an API
// key's hash, or a signed token's owner.
//
// In local mode one process sees every connect, so the limit is exact. In the
// cloud each warm Lambda instance keeps its own buckets: the limit holds per
// instance, and API Gateway's stage throttling bounds the total.
type keyLimiter struct {
	mu      sync.Mutex
	limit   rate.Limit
	burst   int
	buckets map[string]*rate.Limiter
}

func newKeyLimiter(perSecond float64, burst int) *keyLimiter {
	return &keyLimiter{limit: rate.Limit(perSecond), burst: burst, buckets: map[string]*rate.Limiter{}}
}

// allow takes one token from the rate key's bucket, reporting false when it is empty.
func (l *keyLimiter) allow(rateKey string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[rateKey]
	if !ok {
		if len(l.buckets) >= maxIdleBuckets {
			l.dropIdle(now)
		}
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[rateKey] = b
	}
	return b.AllowN(now, 1)
}

func (l *keyLimiter) dropIdle(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
}
