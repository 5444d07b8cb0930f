// Command parley runs the Parley messaging server. It only parses
// configuration (flags, or their PARLEY_* environment twins) and hands it to
// the server package.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/parley-chat/parley/server"
)

func main() {
	err := run(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley:", err)
		os.Exit(1)
	}
}

// run parses args and the environment and runs the server until SIGINT or SIGTERM.
func run(args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, logLevel, err := parse(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))
	cfg.Logger = logger
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(ctx, cfg)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// parse reads flags; a flag not given on the command line takes its
// PARLEY_<NAME> environment variable (dashes as underscores) when set.
func parse(args []string, getenv func(string) string, out io.Writer) (server.Config, slog.Level, error) {
	var cfg server.Config
	fs := flag.NewFlagSet("parley", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: parley [flags]\n\nRuns the Parley messaging server. Every flag can also be set with the\n"+
			"environment variable PARLEY_<FLAG> (upper case, dashes as underscores), e.g.\nPARLEY_ADDR=:9000. A flag on the command line wins over the environment.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	addr := fs.String("addr", ":8080", "`address` to listen on")
	data := fs.String("data", "./data", "`folder` for the embedded SQLite database, media and mail (created if missing)")
	db := fs.String("db", "", "database: `sqlite:PATH` or a postgres:// URL (default sqlite:<data>/parley.db)")
	bus := fs.String("bus", "local", "event bus between nodes: local (one node), or the `URL` of the NATS server every node shares "+
		"(nats://host:4222, tls://..., user:password@ allowed, comma-separated for a NATS cluster); with NATS, run every node on the same postgres:// --db")
	admins := fs.String("admins", "", "comma-separated `usernames` with admin rights")
	origins := fs.String("allowed-origins", "", "comma-separated `origins` (e.g. https://chat.example.com) allowed to open sockets cross-origin; same-origin is always allowed")
	mailFrom := fs.String("mail-from", "Parley <no-reply@parley.local>", "From `address` of e-mails (password resets, sign-in alerts)")
	authRate := fs.Int("auth-rate-limit", 30, "register, login and password-reset requests allowed per client address per minute, per route (0 disables); "+
		"with a NATS --bus the allowance is shared by all nodes")
	proxies := fs.String("trusted-proxies", "", "comma-separated `addresses` or CIDR ranges of load balancers whose X-Forwarded-For header names the client "+
		"(for rate limits); empty: every request's client is its peer address")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	debugAddr := fs.String("debug-addr", "", "`address` of an opt-in diagnostics listener serving net/http/pprof and expvar (/debug/vars); "+
		"keep it on loopback (e.g. 127.0.0.1:6060): it exposes heap profiles. Empty (default) turns it off")
	metricsAddr := fs.String("metrics-addr", "", "`address` of an opt-in listener serving Prometheus metrics at GET /metrics (e.g. 127.0.0.1:9090); "+
		"it has no authentication, so keep it where only your monitoring reaches it. Empty (default) turns it off")
	shutdown := fs.Duration("shutdown-timeout", 15*time.Second, "how long in-flight requests may take to finish on shutdown")
	pingInterval := fs.Duration("ping-interval", 25*time.Second, "how often sockets (Socket.IO and /ws) are pinged")
	pingTimeout := fs.Duration("ping-timeout", 20*time.Second, "how long a socket may take to answer a ping before it is closed (and its user goes offline)")
	connectTimeout := fs.Duration("connect-timeout", 10*time.Second, "how long a new Socket.IO connection may take to send its authenticated CONNECT before it is closed")
	maxSockets := fs.Int("max-sockets-per-user", 64, "sockets (both transports) one user may hold on a node; past it a connect is refused with \"too many sockets\"")
	maxPending := fs.Int("max-pending-sockets", 10000, "Socket.IO connections not yet authenticated, per node; past it a handshake answers 429")
	maxPendingAddr := fs.Int("max-pending-sockets-per-addr", 64, "the same, per client IP address (behind --trusted-proxies, the client their X-Forwarded-For names)")
	maxQueued := fs.Int64("max-queued-bytes", 256<<20, "bytes queued for all sockets of a node together; a socket that would go over it is disconnected")
	writeCoalesce := fs.Duration("write-coalesce", 70*time.Millisecond, "while the node fans out to many sockets at once (64 or more with something to write), hold each socket's writes of "+
		"fan-out events (to more than 100 users: a large channel's or group's posts) this far apart, so one write carries what arrived meanwhile (fewer system calls, for the server and the clients); "+
		"any other event (a chat message, a reply) is written at once and takes what is held with it, and light traffic is never held; 0 turns it off")
	dbTimeout := fs.Duration("db-timeout", 5*time.Second, "deadline of the database work of each request, socket event and background job; "+
		"past it (a database that is down or does not answer) the client gets 503 unavailable")
	bodyTimeout := fs.Duration("body-timeout", 30*time.Second, "how long a client may take to send a request body; a slower (trickled) body is cut off")
	media := fs.String("media", "", "where uploaded files go: a `folder` (default <data>/media; with several nodes it must be shared storage) or "+
		"s3://BUCKET/PREFIX?endpoint=HOST:PORT&region=REGION (secure=false for plain HTTP; credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	mediaRedirect := fs.Bool("media-redirect", false, "with S3 --media, downloads answer 302 to a presigned URL valid 5 minutes instead of streaming through the node")
	pushBlockInternal := fs.Bool("push-block-internal", true, "refuse Web Push subscriptions whose endpoint is or resolves to a loopback, private, "+
		"link-local or other internal address, at registration and again when connecting (SSRF); false only for a push service on your own network")
	pushConcurrency := fs.Int("push-concurrency", 16, "push requests (Web Push, APNs, FCM) one node has in flight at once; each is also one more push a node that dies mid-send may leave to be sent twice")
	pushContact := fs.String("push-contact", "", "contact push services see in Web Push's VAPID token: mailto:ADDRESS or an https `URL` (default: the --mail-from address)")
	apnsKey := fs.String("apns-key", "", "`file` of the APNs .p8 signing key; with --apns-key-id, --apns-team-id and --apns-topic it turns on pushes to apns devices")
	apnsKeyID := fs.String("apns-key-id", "", "the APNs signing key's `id`")
	apnsTeam := fs.String("apns-team-id", "", "the Apple developer `team` id")
	apnsTopic := fs.String("apns-topic", "", "the iOS app's `bundle id`")
	apnsHost := fs.String("apns-host", "", "APNs `URL` (default https://api.push.apple.com; https://api.sandbox.push.apple.com for development builds)")
	fcmCreds := fs.String("fcm-credentials", "", "`file` of a Google service account's JSON key allowed to send through FCM; turns on pushes to fcm devices")
	fcmEndpoint := fs.String("fcm-endpoint", "", "FCM API base `URL` (default https://fcm.googleapis.com)")
	smtpURL := fs.String("smtp-url", "", "send e-mail through SMTP: `smtp://user:password@host:587` (STARTTLS required; ?starttls=optional or none) "+
		"or smtps://…:465; unset, e-mails are written into <data>/mail")
	mediaQuota := fs.Int64("media-quota", 1<<30, "`bytes` of uploaded files no message uses yet that one user may hold; past it an upload answers 413 quota_exceeded")

	set := map[string]bool{}
	stunURL := fs.String("stun-url", "", "comma-separated stun: `URLs` handed to clients for calls (default: the embedded TURN server's, with --turn-addr)")
	turnURL := fs.String("turn-url", "", "comma-separated turn:/turns: `URLs` of a TURN server (coturn with use-auth-secret) handed to clients for calls; needs --turn-secret")
	turnSecret := fs.String("turn-secret", "", "the `secret` shared with the TURN server (coturn's static-auth-secret); "+
		"credentials are TURN REST API ones, valid one hour (prefer PARLEY_TURN_SECRET to keep it out of process lists)")
	turnAddr := fs.String("turn-addr", "", "UDP `address` (e.g. :3478) to run the embedded TURN server on; off when empty")
	turnIP := fs.String("turn-public-ip", "", "the public `IP` clients reach the embedded TURN server at, put in relay candidates (default the host of --turn-addr)")
	turnPorts := fs.String("turn-ports", "49152-65535", "UDP `range` of the embedded TURN server's relay ports, MIN-MAX")
	turnQuota := fs.Int("turn-quota", 10, "relays one user may hold at once on the embedded TURN server")
	if err := fs.Parse(args); err != nil {
		return cfg, 0, err
	}
	if fs.NArg() > 0 {
		return cfg, 0, fmt.Errorf("unexpected argument %q (see parley --help)", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		env := "PARLEY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(env); v != "" && !set[f.Name] {
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s: %w", env, err)
			}
		}
	})
	if envErr != nil {
		return cfg, 0, envErr
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return cfg, 0, fmt.Errorf("--log-level: %w", err)
	}
	for name, d := range map[string]time.Duration{"ping-interval": *pingInterval, "ping-timeout": *pingTimeout,
		"body-timeout": *bodyTimeout, "connect-timeout": *connectTimeout, "db-timeout": *dbTimeout} {
		if d <= 0 {
			return cfg, 0, fmt.Errorf("--%s must be positive, not %s", name, d)
		}
	}
	for name, n := range map[string]int64{"max-sockets-per-user": int64(*maxSockets), "max-pending-sockets": int64(*maxPending),
		"max-pending-sockets-per-addr": int64(*maxPendingAddr), "max-queued-bytes": *maxQueued, "media-quota": *mediaQuota,
		"push-concurrency": int64(*pushConcurrency)} {
		if n <= 0 {
			return cfg, 0, fmt.Errorf("--%s must be positive, not %d", name, n)
		}
	}
	if *pushConcurrency > 1024 {
		return cfg, 0, fmt.Errorf("--push-concurrency must be at most 1024, not %d", *pushConcurrency)
	}
	if *authRate < 0 {
		return cfg, 0, fmt.Errorf("--auth-rate-limit must be >= 0, not %s", strconv.Itoa(*authRate))
	}
	minPort, maxPort, err := portRange(*turnPorts)
	if err != nil {
		return cfg, 0, fmt.Errorf("--turn-ports: %w", err)
	}
	if *turnQuota <= 0 {
		return cfg, 0, fmt.Errorf("--turn-quota must be positive, not %d", *turnQuota)
	}
	var trusted []netip.Prefix
	for _, p := range split(*proxies) {
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return cfg, 0, fmt.Errorf("--trusted-proxies: %q is neither an IP address nor a CIDR range", p)
			}
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		trusted = append(trusted, prefix.Masked())
	}
	cfg = server.Config{Addr: *addr, DataDir: *data, DB: *db, Bus: *bus, Admins: split(*admins), AllowedOrigins: split(*origins),
		MailFrom: *mailFrom, AuthRatePerMinute: *authRate, TrustedProxies: trusted, ShutdownTimeout: *shutdown, DebugAddr: *debugAddr, MetricsAddr: *metricsAddr,
		PingInterval: *pingInterval, PingTimeout: *pingTimeout, BodyTimeout: *bodyTimeout, ConnectTimeout: *connectTimeout, DBTimeout: *dbTimeout,
		MaxSocketsPerUser: *maxSockets, MaxPending: *maxPending, MaxPendingPerAddr: *maxPendingAddr, MaxQueuedBytes: *maxQueued, WriteCoalesce: coalesceFlag(*writeCoalesce),
		Media: *media, MediaRedirect: *mediaRedirect, MediaQuota: *mediaQuota,
		STUNURLs: split(*stunURL), TURNURLs: split(*turnURL), TURNSecret: *turnSecret, TURNAddr: *turnAddr, TURNPublicIP: *turnIP,
		TURNPortMin: minPort, TURNPortMax: maxPort, TURNQuota: *turnQuota,
		PushContact: *pushContact, PushConcurrency: *pushConcurrency, PushAllowInternal: !*pushBlockInternal, APNsKeyFile: *apnsKey, APNsKeyID: *apnsKeyID, APNsTeamID: *apnsTeam, APNsTopic: *apnsTopic,
		APNsHost: *apnsHost, FCMCredentialsFile: *fcmCreds, FCMEndpoint: *fcmEndpoint, SMTPURL: *smtpURL}
	return cfg, level, nil
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// portRange parses MIN-MAX, two UDP ports with MIN <= MAX.
func portRange(s string) (uint16, uint16, error) {
	lo, hi, ok := strings.Cut(s, "-")
	a, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	b, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
	if !ok || err1 != nil || err2 != nil || a == 0 || a > b {
		return 0, 0, fmt.Errorf("%q is not a port range MIN-MAX with 1 <= MIN <= MAX <= 65535", s)
	}
	return uint16(a), uint16(b), nil
}

// coalesceFlag maps --write-coalesce to server.Config.WriteCoalesce, where
// zero means the default: 0 on the command line turns holding off.
func coalesceFlag(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
