// Package service holds Parley's use cases. Every rule about who may do what
// lives here: transports (HTTP, Socket.IO, plain WebSocket) authenticate the
// caller, decode input, call one method and encode the result.
//
// Methods take the caller's *parley.Identity (from the token, never from the
// body) and return values with JSON tags that transports send as they are, or
// a *parley.Error.
package service

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/jobs"
	"github.com/parley-chat/parley/ratelimit"
)

// Config holds the service's settings.
type Config struct {
	Admins        []string      // usernames with admin rights
	TokenTTL      time.Duration // lifetime of a sign-in token; default 30 days
	ResetTokenTTL time.Duration // lifetime of a password-reset token; default 1 hour
	PasswordCost  PasswordCost  // argon2id parameters; zero means DefaultPasswordCost
	// HashConcurrency bounds concurrent password hashes so a login flood
	// cannot exhaust memory; default runtime.NumCPU().
	HashConcurrency int
	PresenceGrace   time.Duration // delay before announcing offline; default 5s
	Logger          *slog.Logger
	Now             func() time.Time // the clock; default time.Now
	NodeID          string           // names this node in scheduler and presence leases; default random
	// ScheduleTick is how often due scheduled messages are looked for; default 1s.
	ScheduleTick time.Duration
	// SharedPresence, when set, makes presence global across the nodes
	// that share it; nil (one node) counts this node's sockets only.
	SharedPresence parley.PresenceStore
	// PresenceLease is how long a node's presence records outlive its last
	// renewal: the users of a node that died go offline after it. Default 10s.
	PresenceLease time.Duration
	// StoreTimeout bounds the store calls of background work (the commit
	// of a batch of sends, scheduled messages, presence, e-mail); requests
	// bring their own deadline. Default 5s.
	StoreTimeout time.Duration
	// Blobs holds the bytes of uploaded files; nil: uploads are refused
	// with 503 unavailable.
	Blobs parley.BlobStore
	// MediaQuota bounds the bytes of a user's uploads that no message uses
	// yet; default 1 GiB.
	MediaQuota int64
	// MediaCollectEvery is how often files nothing uses are looked for;
	// default 10 minutes.
	MediaCollectEvery time.Duration
	// ICE is what GET /api/calls/ice-servers hands out: STUN and TURN
	// servers, and the secret TURN credentials are made with.
	ICE ICEConfig
	// CallsTick is how often calls that rang unanswered too long, or lost
	// a device's connection for too long, are looked for; default 2s.
	CallsTick time.Duration
	// CallLostGrace is how long a device of a call may be without a socket
	// (on any node) before the call ends: connection_lost when it was
	// live, failed when it still rang. Default 20s.
	CallLostGrace time.Duration
	// PushSenders deliver pushes, by platform (webpush, fcm, apns); a
	// platform without one refuses registrations. None: no outbox job.
	PushSenders map[string]parley.PushSender
	// VAPIDPublicKey is the Web Push key served to browsers.
	VAPIDPublicKey string
	// PushAllowHTTP accepts http:// Web Push endpoints (tests on loopback).
	PushAllowHTTP bool
	// PushAllowInternal accepts Web Push endpoints whose host is or
	// resolves to an internal address (parley.IsInternalAddr): tests on
	// loopback. By default they are refused (SSRF).
	PushAllowInternal bool
	// Resolver looks up the hosts of Web Push endpoints at registration;
	// default net.DefaultResolver.
	Resolver interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}
	// NotifyTick is how often the push outbox runs; default 1s.
	NotifyTick time.Duration
	// PushCollapse is the least time between two pushes to one device;
	// the messages in between go out as one. Default 15s.
	PushCollapse time.Duration
	// PushClaim is how long a node sending a push keeps the other nodes
	// off it: how late a push is when its node dies mid-send. A provider
	// request is cut off at half of it (at most 15s), so a live node
	// always records the outcome before its claim ends. Default 1 minute.
	PushClaim time.Duration
	// PushConcurrency is how many provider requests one node has in
	// flight at once; default 16. A push service answers in tens of
	// milliseconds, so one at a time bounds a node at a few dozen pushes a
	// second. Each request in flight is one more push a dying node can
	// leave to be sent twice.
	PushConcurrency int
	// StatusPurgeEvery is how often expired statuses are purged (they are
	// never shown once expired, whenever this runs); default 5 minutes.
	StatusPurgeEvery time.Duration
	// Metrics receives the send path's and the scheduler's measurements;
	// default parley.NopMetrics.
	Metrics parley.Metrics
}

// Service implements Parley's use cases over the store roles, a Bus and a
// Mailer.
type Service struct {
	store    parley.Stores
	bus      parley.Bus
	mailer   parley.Mailer
	cfg      Config
	log      *slog.Logger
	hasher   *hasher
	admins   map[string]bool
	presence *presence
	commit   *committer
	typing   *ratelimit.Keyed
	tickets  *ratelimit.Keyed // socket tickets, per user
	sched    *scheduler
	facts    *facts // store answers that never change back, for the send path

	closed sync.Once
	runner atomic.Pointer[jobs.Runner] // set by AddJobs
	ana    analytics                   // operations: node health (analytics.go)

	callDevices *callDevices // this node's sockets per device, for calls (call_devices.go)
}

// New returns a Service over store, every field of which must be set.
// Zero Config fields take their defaults.
func New(store parley.Stores, bus parley.Bus, mailer parley.Mailer, cfg Config) *Service {
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 30 * 24 * time.Hour
	}
	if cfg.ResetTokenTTL <= 0 {
		cfg.ResetTokenTTL = time.Hour
	}
	if cfg.PresenceGrace <= 0 {
		cfg.PresenceGrace = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NodeID == "" {
		cfg.NodeID = parley.NewID("node")
	}
	if cfg.PresenceLease <= 0 {
		cfg.PresenceLease = 10 * time.Second
	}
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = 5 * time.Second
	}
	if cfg.ScheduleTick <= 0 {
		cfg.ScheduleTick = time.Second
	}
	if cfg.MediaQuota <= 0 {
		cfg.MediaQuota = 1 << 30
	}
	if cfg.NotifyTick <= 0 {
		cfg.NotifyTick = time.Second
	}
	if cfg.PushCollapse <= 0 {
		cfg.PushCollapse = 15 * time.Second
	}
	if cfg.PushClaim <= 0 {
		cfg.PushClaim = time.Minute
	}
	if cfg.PushConcurrency <= 0 {
		cfg.PushConcurrency = 16
	}
	if cfg.MediaCollectEvery <= 0 {
		cfg.MediaCollectEvery = 10 * time.Minute
	}
	if cfg.StatusPurgeEvery <= 0 {
		cfg.StatusPurgeEvery = 5 * time.Minute
	}
	if cfg.Metrics == nil {
		cfg.Metrics = parley.NopMetrics{}
	}
	if cfg.CallLostGrace <= 0 {
		cfg.CallLostGrace = defaultCallLostGrace
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	s := &Service{store: store, bus: bus, mailer: mailer, cfg: cfg, log: cfg.Logger,
		hasher: newHasher(cfg.PasswordCost, cfg.HashConcurrency), admins: map[string]bool{}}
	for _, a := range cfg.Admins {
		s.admins[normalizeUsername(a)] = true
	}
	s.presence = newPresence(s)
	s.callDevices = newCallDevices(s)
	s.commit = newCommitter(store.Messages, cfg.Metrics, cfg.StoreTimeout)
	s.facts = newFacts(maxFacts)
	s.typing = newTypingLimiter()
	s.tickets = newTicketLimiter()
	s.sched = newScheduler(s, cfg.NodeID)
	s.ana = analytics{started: time.Now(), reports: map[string]*NodeReport{}, seen: map[string]time.Time{}, admins: map[string]healthAdmin{}}
	return s
}

// AddJobs registers the service's background jobs with r, which the
// caller starts and closes (before Close): sending due scheduled messages
// (leased), purging expired statuses (leased), removing the files nothing
// uses (leased), ending the calls nobody answered and those that lost a
// device's connection (both leased), the push outbox
// (leased, when a push platform is configured), the mail outbox (leased), publishing this node's
// health and, with several nodes, this node's presence lease and the
// sweep of dead nodes' users (leased).
func (s *Service) AddJobs(r *jobs.Runner) {
	s.runner.Store(r)
	r.Add(jobs.Job{Name: JobScheduled, Every: s.cfg.ScheduleTick, Leased: true, Timeout: time.Minute, Run: s.sched.runDue})
	s.addStatusJobs(r)
	s.addMediaJobs(r)
	s.addCallJobs(r)
	s.addNotifyJobs(r)
	s.addMailJobs(r)
	s.addAnalyticsJobs(r)
	if s.presence.shared != nil {
		every := s.cfg.PresenceLease / 3
		r.Add(jobs.Job{Name: JobPresenceLease, Every: every, Timeout: s.cfg.StoreTimeout, Run: s.presence.renew})
		r.Add(jobs.Job{Name: JobPresenceSweep, Every: every, Leased: true, Timeout: s.cfg.StoreTimeout, Run: s.presence.sweep})
	}
}

// Close waits for background work (presence timers, the send path's commits).
// Call it after the transports stopped taking requests.
// It is idempotent.
func (s *Service) Close() {
	s.closed.Do(func() {
		if s.ana.unsub != nil {
			s.ana.unsub()
		}
		s.presence.close()
		s.callDevices.close()
		s.commit.close()
	})
}

// now returns the current time truncated to the stored precision.
func (s *Service) now() time.Time {
	return s.cfg.Now().UTC().Truncate(time.Millisecond)
}

// Health checks that the database answers.
func (s *Service) Health(ctx context.Context) error {
	if err := s.store.Health.Ping(ctx); err != nil {
		s.log.Error("health check failed", "err", err)
		return parley.Errorf(parley.EUNAVAILABLE, "database is unreachable")
	}
	return nil
}

// publish encodes data once and hands the event to the bus. A failed
// publish is logged, not returned: the database already holds the change
// and clients catch up through sync.
func (s *Service) publish(ctx context.Context, name string, data any, to []string) {
	s.publishAudience(ctx, name, data, to, nil)
}

// publishAudience is publish with to's users as a set as well
// (parley.Event.Audience), or nil.
func (s *Service) publishAudience(ctx context.Context, name string, data any, to []string, audience parley.Audience) {
	if len(to) == 0 {
		return
	}
	raw, err := json.Marshal(data)
	if err != nil {
		s.log.Error("encode event", "event", name, "err", err)
		return
	}
	if err := s.bus.Publish(ctx, &parley.Event{Name: name, Data: raw, To: to, Audience: audience}); err != nil {
		s.log.Warn("publish event", "event", name, "err", err)
	}
}

// checkSelf enforces that an optional user id given in a body or query is
// the caller's own: API.md §1 keeps those fields but they must match.
func checkSelf(caller *parley.Identity, claimed, field string) error {
	if claimed != "" && claimed != caller.UserID {
		return parley.Errorf(parley.EFORBIDDEN, "%s must be your own user id", field)
	}
	return nil
}

// IsAdmin reports whether the caller is one of the configured admins.
func (s *Service) IsAdmin(ctx context.Context, caller *parley.Identity) bool {
	if len(s.admins) == 0 {
		return false
	}
	u, err := s.store.Users.UserByID(ctx, caller.UserID)
	return err == nil && s.admins[normalizeUsername(u.Username)]
}
