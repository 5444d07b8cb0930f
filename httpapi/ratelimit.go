package httpapi

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/ratelimit"
)

// limiter keeps one token bucket per client address. With several nodes
// the buckets live in the shared store (Config.SharedLimits), so a client
// gets the same allowance whichever nodes its requests reach; otherwise in
// memory. In memory, buckets idle for longer than it takes to refill are
// dropped, so memory stays bounded by the number of recently active
// addresses; in the store, the leased job JobPruneLimits prunes them once a
// minute (see API.AddJobs).
type limiter struct {
	name      string // names the route group in shared bucket keys
	perMinute int
	burst     int
	shared    parley.RateStore
	trusted   []netip.Prefix

	local *ratelimit.Keyed // this node's buckets: without a shared store, or when it fails
}

func newLimiter(cfg Config, name string) *limiter {
	return &limiter{name: name, perMinute: cfg.AuthRatePerMinute, burst: max(1, cfg.AuthRatePerMinute/2),
		shared: cfg.SharedLimits, trusted: cfg.TrustedProxies,
		local: ratelimit.New(float64(cfg.AuthRatePerMinute)/60, max(1, cfg.AuthRatePerMinute/2))}
}

// allow takes a token for addr, or reports how long to wait for one. When
// the shared store fails it falls back to this node's bucket: a database
// hiccup should not lock everyone out of signing in.
func (l *limiter) allow(ctx context.Context, log *slog.Logger, addr string, now time.Time) (bool, time.Duration) {
	if l == nil || l.perMinute <= 0 {
		return true, 0
	}
	if l.shared != nil {
		ok, wait, err := l.shared.TakeToken(ctx, l.name+":"+addr, now, l.perMinute, l.burst)
		if err == nil {
			return ok, wait
		}
		log.Warn("shared rate limit unavailable; using this node's", "err", err)
	}
	return l.local.Take(addr, now)
}

// limit wraps h so that each client address gets at most l's rate.
func (l *limiter) limit(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		addr := forwardedClientAddr(r, l.trusted)
		if ok, wait := l.allow(r.Context(), loggerFrom(r), addr, time.Now()); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			writeError(w, r, parley.Errorf(parley.ERATELIMITED, "too many requests, retry in %d s", int(math.Ceil(wait.Seconds()))))
			return
		}
		h(w, r)
	}
}

// forwardedClientAddr is the client's address for rate limits. Behind
// trusted proxies (load balancers) it is the right-most X-Forwarded-For
// entry that is not one of them: entries left of it could be made up by
// the client. Without trusted proxies, or from any other peer, it is the
// peer's address.
// ClientAddr returns the function that finds a request's client address as
// the rate limits do, for other transports (the socket limits per address).
func ClientAddr(trusted []netip.Prefix) func(*http.Request) string {
	return func(r *http.Request) string { return forwardedClientAddr(r, trusted) }
}

func forwardedClientAddr(r *http.Request, trusted []netip.Prefix) string {
	peer := clientAddr(r)
	if len(trusted) == 0 {
		return peer
	}
	isTrusted := func(s string) (netip.Addr, bool) {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return a, false
		}
		a = a.Unmap()
		for _, p := range trusted {
			if p.Contains(a) {
				return a, true
			}
		}
		return a, false
	}
	if _, ok := isTrusted(peer); !ok {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := isTrusted(hops[i])
		if !a.IsValid() {
			break // not an address: nothing further left can be trusted
		}
		if !ok {
			return a.String()
		}
	}
	return peer
}
