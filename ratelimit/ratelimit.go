// Package ratelimit is Parley's one rate limiter: a token bucket per key
// (a client address, a user), built on golang.org/x/time/rate, whose idle
// buckets are forgotten so memory stays bounded by the recently active keys.
// The REST API limits sign-ins per address with it and the service limits
// typing indicators per user.
package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// sweepEvery is how often Take forgets buckets that are full again.
const sweepEvery = time.Minute

// Keyed keeps one token bucket per key. It is safe for concurrent use; the
// zero value is not usable, call New.
type Keyed struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	swept   time.Time
}

// New returns a limiter allowing perSecond events per key on average and
// bursts of burst (at least 1).
func New(perSecond float64, burst int) *Keyed {
	return &Keyed{limit: rate.Limit(perSecond), burst: max(1, burst), buckets: map[string]*rate.Limiter{}}
}

// Take takes a token of key at now, or reports how long until one is
// there (taking nothing).
func (k *Keyed) Take(key string, now time.Time) (bool, time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.Sub(k.swept) > sweepEvery {
		for id, l := range k.buckets {
			if l.TokensAt(now) >= float64(k.burst) { // full: idle, nothing to remember
				delete(k.buckets, id)
			}
		}
		k.swept = now
	}
	l := k.buckets[key]
	if l == nil {
		l = rate.NewLimiter(k.limit, k.burst)
		k.buckets[key] = l
	}
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Len is the number of keys remembered.
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buckets)
}
