// Package server wires Parley together: it opens the database, builds the
// service, the bus and the transports, and serves them on one listener.
// cmd/parley only parses configuration into a Config and calls Run; tests
// start a whole server on 127.0.0.1:0 with New.
package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/apnspusher"
	"github.com/parley-chat/parley/fcmpusher"
	"github.com/parley-chat/parley/httpapi"
	"github.com/parley-chat/parley/jobs"
	"github.com/parley-chat/parley/localbus"
	"github.com/parley-chat/parley/maildir"
	"github.com/parley-chat/parley/metrics"
	"github.com/parley-chat/parley/natsbus"
	"github.com/parley-chat/parley/realtime"
	"github.com/parley-chat/parley/service"
	"github.com/parley-chat/parley/smtpmail"
	"github.com/parley-chat/parley/sqlstore"
	"github.com/parley-chat/parley/turnserver"
	"github.com/parley-chat/parley/web"
	"github.com/parley-chat/parley/webpusher"
)

// Config is the whole configuration of a node.
type Config struct {
	Addr           string   // listen address, e.g. ":8080" or "127.0.0.1:0"
	DataDir        string   // folder for the SQLite database, media and mail; created if missing
	DB             string   // "sqlite:PATH" or a postgres:// URL; default sqlite:DataDir/parley.db
	Bus            string   // "local" (default) or NATS server URL(s): nats://, tls://, comma-separated
	Admins         []string // usernames with admin rights
	AllowedOrigins []string // origins allowed to open sockets cross-origin
	MailFrom       string   // From address of e-mails
	// SMTPURL, when set, sends e-mail through an SMTP server
	// (smtp[s]://user:pass@host:port, see smtpmail.New); zero: .eml files
	// in DataDir/mail.
	SMTPURL string
	// Media is where uploaded files' bytes go: a folder (default
	// DataDir/media; shared storage with several nodes) or
	// s3://BUCKET/PREFIX?endpoint=HOST:PORT&region=R (see OpenBlobs).
	Media         string
	MediaRedirect bool  // downloads redirect to a presigned storage URL (S3 only)
	MediaQuota    int64 // bytes of unused uploads per user; zero: 1 GiB
	// PushContact is the contact push services see in Web Push's VAPID
	// token: a mailto: address or an https URL; zero: MailFrom's address.
	PushContact   string
	PushAllowHTTP bool // accept http:// Web Push endpoints (tests on loopback)
	// PushAllowInternal accepts Web Push endpoints on loopback, private and
	// other internal addresses, at registration and when sending; off by
	// default (SSRF). Tests with a loopback push service turn it on.
	PushAllowInternal bool
	// APNs, when APNsKeyFile is set: the .p8 key's file, its key id, the
	// team id, the app's bundle id and the endpoint (zero: production).
	APNsKeyFile, APNsKeyID, APNsTeamID, APNsTopic, APNsHost string
	PushRootCAs                                             *x509.CertPool // trusted by the APNs sender; nil: the system's
	// FCM, when FCMCredentialsFile (a service account's JSON key) is set;
	// FCMEndpoint zero: https://fcm.googleapis.com.
	FCMCredentialsFile, FCMEndpoint string
	NotifyTick                      time.Duration // how often the push outbox runs; zero: 1s
	PushCollapse                    time.Duration // the least time between two pushes to one device; zero: 15s
	PushClaim                       time.Duration // how long a node sending a push keeps other nodes off it; zero: 1 minute (service.Config)
	PushConcurrency                 int           // provider requests in flight at once per node; zero: 16 (service.Config)

	AuthRatePerMinute int                  // per-address limit on register/login/reset; 0 disables
	TrustedProxies    []netip.Prefix       // load balancers whose X-Forwarded-For names the client
	PasswordCost      service.PasswordCost // zero: service.DefaultPasswordCost
	PresenceGrace     time.Duration        // zero: 5s
	PresenceLease     time.Duration        // with several nodes, how long a dead node's users stay online; zero: 10s
	NodeID            string               // names this node in leases and logs; zero: random
	PingInterval      time.Duration        // socket (Socket.IO and /ws) ping interval; zero: 25s
	PingTimeout       time.Duration        // socket ping timeout; zero: 20s
	BodyTimeout       time.Duration        // how long a request body may take to arrive; zero: 30s
	DBTimeout         time.Duration        // deadline of each request's, socket event's and background job's store calls; zero: 5s
	ConnectTimeout    time.Duration        // a Socket.IO connection must authenticate within it; zero: 10s
	MaxSocketsPerUser int                  // sockets one user may hold on a node; zero: 64
	MaxPending        int                  // Socket.IO connections not yet authenticated, overall; zero: 10,000
	MaxPendingPerAddr int                  // the same, per client IP address; zero: 64
	MaxQueuedBytes    int64                // bytes queued for all sockets of the node together; zero: 256 MiB
	WriteCoalesce     time.Duration        // how far apart busy sockets' writes are held under heavy fan-out (realtime.Config); zero: 70ms, negative: never
	// BusQueueLen and BusQueueBytes bound the events from other nodes
	// waiting for this node's sockets (NATS bus); past them events are
	// dropped and their addressees' sockets closed (natsbus.Options).
	// Zero: 65,536 events, 64 MiB.
	BusQueueLen     int
	BusQueueBytes   int64
	ScheduleTick    time.Duration // how often due scheduled messages are looked for; zero: 1s
	ShutdownTimeout time.Duration // zero: 15s
	DebugAddr       string        // pprof and expvar listener, loopback only; empty: off
	MetricsAddr     string        // Prometheus GET /metrics listener; empty: off
	Logger          *slog.Logger
	// Calls (API.md §9): the STUN and TURN servers GET
	// /api/calls/ice-servers hands out, and the embedded TURN server.
	STUNURLs   []string // stun: URLs
	TURNURLs   []string // turn:/turns: URLs of a TURN server that checks TURN REST API credentials made with TURNSecret
	TURNSecret string   // the secret shared with that TURN server (coturn's static-auth-secret)
	// TURNAddr, when set, starts the embedded TURN server on this UDP
	// address (e.g. ":3478"); without TURNURLs, clients are pointed at it.
	// Without TURNSecret it makes a random one (one node only).
	TURNAddr     string
	TURNPublicIP string // the IP put in relay candidates and in the TURN URL; default the host of TURNAddr
	TURNPortMin  uint16 // relay port range; zero: 49152
	TURNPortMax  uint16 // zero: 65535
	TURNQuota    int    // relays one user may hold at once; zero: 10

	// Clock is the time the node goes by (token expiry, leases, jobs,
	// timestamps); nil: the wall clock. Tests pass a jobs.Fake to move
	// time instead of sleeping.
	Clock jobs.Clock
}

// Server is a running Parley node.
type Server struct {
	cfg  Config
	log  *slog.Logger
	db   *sqlstore.DB
	svc  *service.Service
	jobs *jobs.Runner // background jobs of every component; started by Start
	hub  *realtime.Hub
	bus  parley.Bus
	nats *natsbus.Bus // set when the bus is NATS
	http *http.Server
	ln   net.Listener
	done chan error

	closeOnce sync.Once
	closeErr  error

	debug *debugServer       // set by Start when DebugAddr is not empty
	turn  *turnserver.Server // set when TURNAddr is not empty

	registry   *prometheus.Registry // this node's metrics
	metrics    *metrics.Prometheus
	metricsSrv *metricsServer // set by New when MetricsAddr is not empty
}

// New opens the database, builds every component and starts listening on
// cfg.Addr. Call Serve (or Run) to serve and Close to stop.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = "data"
	}
	if cfg.DB == "" {
		cfg.DB = "sqlite:" + filepath.Join(cfg.DataDir, "parley.db")
	}
	if cfg.Bus == "" {
		cfg.Bus = "local"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 30 * time.Second
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 15 * time.Second
	}
	if cfg.MailFrom == "" {
		cfg.MailFrom = "Parley <no-reply@parley.local>"
	}
	if cfg.NodeID == "" {
		cfg.NodeID = parley.NewID("node")
	}
	if cfg.Clock == nil {
		cfg.Clock = jobs.Real
	}
	s := &Server{cfg: cfg, log: cfg.Logger, done: make(chan error, 1)}
	var err error
	if s.db, err = sqlstore.Open(ctx, cfg.DB); err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	// With several nodes, presence and rate limits are kept where every
	// node sees them: in the shared database.
	var sharedPresence parley.PresenceStore
	var sharedLimits parley.RateStore
	switch {
	case cfg.Bus == "local":
		s.bus = localbus.New()
	case natsbus.IsURL(cfg.Bus):
		if s.nats, err = natsbus.Connect(cfg.Bus, natsbus.Options{Name: "parley " + cfg.NodeID, Logger: s.log,
			QueueLen: cfg.BusQueueLen, QueueBytes: cfg.BusQueueBytes}); err != nil {
			s.db.Close()
			return nil, fmt.Errorf("bus: %w", err)
		}
		s.bus = s.nats
		sharedPresence, sharedLimits = s.db, s.db
		if s.db.Dialect() != sqlstore.Postgres {
			s.log.Warn("NATS bus with a SQLite database: nodes share nothing but events unless they share the database file; use one postgres:// --db for several nodes")
		}
	default:
		s.db.Close()
		return nil, fmt.Errorf("bus: unsupported value %q (use local, or nats:// URLs of NATS servers)", natsbus.Redact(cfg.Bus))
	}
	if cfg.Media == "" {
		cfg.Media = filepath.Join(cfg.DataDir, "media")
	}
	blobs, err := OpenBlobs(ctx, cfg.Media)
	if err != nil {
		if s.nats != nil {
			s.nats.Close()
		}
		s.db.Close()
		return nil, fmt.Errorf("media: %w", err)
	}
	webPush, vapidPublic, err := s.webPusher(ctx)
	if err != nil {
		if s.nats != nil {
			s.nats.Close()
		}
		s.db.Close()
		return nil, fmt.Errorf("web push keys: %w", err)
	}
	senders := map[string]parley.PushSender{parley.PlatformWebPush: webPush}
	if cfg.APNsKeyFile != "" {
		key, err := os.ReadFile(cfg.APNsKeyFile)
		var apns *apnspusher.Sender
		if err == nil {
			apns, err = apnspusher.New(apnspusher.Config{Key: key, KeyID: cfg.APNsKeyID, TeamID: cfg.APNsTeamID,
				Topic: cfg.APNsTopic, Host: cfg.APNsHost, RootCAs: cfg.PushRootCAs})
		}
		if err != nil {
			if s.nats != nil {
				s.nats.Close()
			}
			s.db.Close()
			return nil, fmt.Errorf("apns: %w", err)
		}
		senders[parley.PlatformAPNs] = apns
	}
	if cfg.FCMCredentialsFile != "" {
		creds, err := os.ReadFile(cfg.FCMCredentialsFile)
		var fcm *fcmpusher.Sender
		if err == nil {
			fcm, err = fcmpusher.New(fcmpusher.Config{Credentials: creds, Endpoint: cfg.FCMEndpoint})
		}
		if err != nil {
			if s.nats != nil {
				s.nats.Close()
			}
			s.db.Close()
			return nil, fmt.Errorf("fcm: %w", err)
		}
		senders[parley.PlatformFCM] = fcm
	}
	s.registry, s.metrics = newRegistry(s.db)
	if s.nats != nil {
		registerBusLoss(s.registry, s.nats)
	}
	var mailer parley.Mailer = &maildir.Sender{Dir: filepath.Join(cfg.DataDir, "mail"), From: cfg.MailFrom, Logger: s.log}
	if cfg.SMTPURL != "" {
		if mailer, err = smtpmail.New(cfg.SMTPURL, cfg.MailFrom); err != nil {
			if s.nats != nil {
				s.nats.Close()
			}
			s.db.Close()
			return nil, err
		}
	}
	// Last of what can fail: once started, the TURN server runs until Close.
	ice, err := s.startTURN()
	if err != nil {
		if s.nats != nil {
			s.nats.Close()
		}
		s.db.Close()
		return nil, fmt.Errorf("turn: %w", err)
	}
	s.svc = service.New(s.db.Stores(), s.bus, mailer, service.Config{Admins: cfg.Admins, PasswordCost: cfg.PasswordCost,
		PresenceGrace: cfg.PresenceGrace, ScheduleTick: cfg.ScheduleTick, Logger: s.log,
		NodeID: cfg.NodeID, SharedPresence: sharedPresence, PresenceLease: cfg.PresenceLease, StoreTimeout: cfg.DBTimeout,
		Now: cfg.Clock.Now, Blobs: blobs, MediaQuota: cfg.MediaQuota, Metrics: s.metrics, ICE: ice,
		PushSenders: senders, VAPIDPublicKey: vapidPublic,
		PushAllowHTTP: cfg.PushAllowHTTP, PushAllowInternal: cfg.PushAllowInternal, NotifyTick: cfg.NotifyTick, PushCollapse: cfg.PushCollapse,
		PushClaim: cfg.PushClaim, PushConcurrency: cfg.PushConcurrency})
	// Job leases live in the database that the nodes share. The embedded
	// SQLite database is one node's own, so its leases stay in memory:
	// a lease row renewed every few seconds would make each of SQLite's
	// readers reload its page cache every few seconds (history pages
	// were 10-20 % slower for it).
	var leases jobs.Leases = s.db
	if s.db.Dialect() == sqlstore.SQLite {
		leases = jobs.NewLocalLeases()
	}
	s.jobs = jobs.New(leases, cfg.NodeID, jobs.Options{Clock: cfg.Clock, Logger: s.log})
	s.svc.AddJobs(s.jobs)

	mux := http.NewServeMux()
	api := httpapi.New(s.svc, httpapi.Config{AuthRatePerMinute: cfg.AuthRatePerMinute, SharedLimits: sharedLimits,
		TrustedProxies: cfg.TrustedProxies, RequestTimeout: cfg.DBTimeout, MediaRedirect: cfg.MediaRedirect})
	api.AddJobs(s.jobs)
	api.Mount(mux)
	s.hub = realtime.New(s.svc, s.bus, realtime.Config{AllowedOrigins: cfg.AllowedOrigins, Logger: s.log,
		PingInterval: cfg.PingInterval, PingTimeout: cfg.PingTimeout, ConnectTimeout: cfg.ConnectTimeout,
		MaxSocketsPerUser: cfg.MaxSocketsPerUser, MaxPendingSockets: cfg.MaxPending, MaxPendingSocketsPerAddr: cfg.MaxPendingPerAddr,
		MaxQueuedBytes: cfg.MaxQueuedBytes, WriteCoalesce: cfg.WriteCoalesce, EventTimeout: cfg.DBTimeout, Now: cfg.Clock.Now,
		ClientAddr: httpapi.ClientAddr(cfg.TrustedProxies), Metrics: s.metrics})
	s.hub.Mount(mux)
	web.New().Mount(mux)
	probe := service.NodeProbe{Connections: s.hub.Connections}
	if s.nats != nil {
		probe.BusOK = s.nats.Connected
	}
	s.svc.SetNodeProbe(probe)
	s.http = &http.Server{
		Handler:           bodyDeadline(cfg.BodyTimeout, httpapi.MeasuredMiddleware(s.log, s.metrics, httpapi.NotFound(mux))),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.ln, err = net.Listen("tcp", cfg.Addr)
	if err == nil {
		if err = s.listenMetrics(); err != nil {
			s.ln.Close()
			err = fmt.Errorf("metrics %w", err)
		}
	}
	if err != nil {
		s.hub.Close()
		s.jobs.Close()
		s.svc.Close()
		s.closeTURN()
		if s.nats != nil {
			s.nats.Close()
		}
		s.db.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	return s, nil
}

// webPusher builds the Web Push sender with the VAPID key pair that every
// node shares, generated by the first node to start.
func (s *Server) webPusher(ctx context.Context) (*webpusher.Sender, string, error) {
	pair, err := s.db.ServerKey(ctx, webpusher.KeyName, webpusher.GenerateKeys)
	if err != nil {
		return nil, "", err
	}
	private, public, err := webpusher.SplitKeys(pair)
	if err != nil {
		return nil, "", err
	}
	contact := s.cfg.PushContact
	if contact == "" {
		contact = "mailto:no-reply@parley.local"
		if a, err := mail.ParseAddress(s.cfg.MailFrom); err == nil {
			contact = "mailto:" + a.Address
		}
	}
	return &webpusher.Sender{PrivateKey: private, PublicKey: public, Subscriber: contact, AllowInternal: s.cfg.PushAllowInternal}, public, nil
}

// Addr is the address the server listens on (the real port when cfg.Addr used port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the server's base URL, e.g. http://127.0.0.1:8080.
func (s *Server) URL() string {
	addr := s.Addr()
	if strings.HasPrefix(addr, "[::]:") || strings.HasPrefix(addr, "0.0.0.0:") {
		addr = "127.0.0.1:" + addr[strings.LastIndex(addr, ":")+1:]
	}
	return "http://" + addr
}

// DataDir is the node's data folder.
func (s *Server) DataDir() string { return s.cfg.DataDir }

// Bus is the node's event bus (for tests and tools in this module).
func (s *Server) Bus() parley.Bus { return s.bus }

// Hub is the node's connection hub (for tests and tools in this module).
func (s *Server) Hub() *realtime.Hub { return s.hub }

// Start starts the background jobs and serves in the background; Close
// stops both.
func (s *Server) Start() {
	s.startDebug()
	s.startMetrics()
	s.jobs.Start()
	go func() {
		err := s.http.Serve(s.ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
}

// Run serves until ctx is done, then shuts down gracefully: in-flight
// requests finish (up to ShutdownTimeout) and the database is closed.
func (s *Server) Run(ctx context.Context) error {
	s.Start()
	s.log.Info("parley listening", "addr", s.Addr(), "db", dbKind(s.cfg.DB), "bus", natsbus.Redact(s.cfg.Bus), "node", s.cfg.NodeID)
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			s.Close()
			return err
		}
	case <-ctx.Done():
		s.log.Info("shutting down")
	}
	return s.Close()
}

// Close stops accepting requests, waits for in-flight ones (up to
// ShutdownTimeout), stops background work, drains the bus and closes the
// database. With several nodes, the users whose sockets it closed go
// offline on the others after the presence grace period unless they
// reconnected to another node.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		s.hub.Close() // sockets are hijacked connections: Shutdown does not see them
		err := s.http.Shutdown(ctx)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.jobs.Close() // waits for runs in progress and gives up this node's leases
		s.svc.Close()
		s.closeTURN()
		if s.nats != nil {
			err = errors.Join(err, s.nats.Close())
		}
		s.closeDebug()
		s.closeMetrics()
		s.closeErr = errors.Join(err, s.db.Close())
	})
	return s.closeErr
}

// bodyDeadline gives every request with a body d to deliver it: the
// connection's read deadline is set before the handler runs and lifted once
// the body has been read to its end, so a client trickling a body a byte at
// a time is cut off, while a long-polling GET (no body) or a socket that
// outlives its upgrade request is not. net/http resets the deadline for the
// next request on the connection.
func bodyDeadline(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(d)); err == nil {
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline once the body is fully read.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

func dbKind(dsn string) string {
	if strings.HasPrefix(dsn, "postgres") {
		return "postgres"
	}
	return dsn
}
