// Command parley-bench drives a running Parley server the way real clients
// do (REST registration, Socket.IO over WebSocket) and reports what it
// measured. It only talks to loopback addresses and every run is bounded
// in connections and time.
//
//	parley-bench idle    --url http://127.0.0.1:8080 --conns 10000 --users 100 --hold 20s --debug-url http://127.0.0.1:6060
//	parley-bench direct  --url http://127.0.0.1:8080 --users 200 --rate 2000 --duration 20s
//	parley-bench seed    --db sqlite:/tmp/pb/data/parley.db --users 2000 --conversations 10000 --messages 10000000 --out /tmp/pb/users.json
//	parley-bench history --url http://127.0.0.1:8080 --users-file /tmp/pb/users.json --workers 32 --duration 20s
//	parley-bench seed    --db sqlite:/tmp/pb/chats/parley.db --users 3000 --hubs 20 --hub-chats 1000 --messages 20000 --out /tmp/pb/users-chats.json
//	parley-bench chats   --url http://127.0.0.1:8080 --users-file /tmp/pb/users-chats.json --workers 1 --page 200 --duration 20s
//	parley-bench storm   --url http://127.0.0.1:8080 --users-file /tmp/pb/users.json --users 10000 --per-user 5
//	parley-bench group   --url http://127.0.0.1:8080 --users-file /tmp/pb/users.json --users 1000 --rate 100 --duration 20s
//
// Registration hashes passwords with argon2id: start the server with
// --auth-rate-limit 0 so the per-address limit does not refuse the bench,
// or seed the accounts into the database beforehand (parley-bench seed)
// and pass the file it writes with --users-file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley-bench:", err)
		os.Exit(1)
	}
}

const usage = `Usage: parley-bench <scenario> [flags]

Scenarios:
  idle     connect many idle sockets and report the server's memory per connection
  direct   pairs of users send 1:1 messages over their sockets; report throughput,
           latency, errors, lost and duplicated messages
  history  read pages of 50 messages over REST from seeded conversations; report
           pages/s and client- and server-side latency
  chats    read the chat lists of seeded accounts with 1,000 conversations over
           REST; report lists/s and client- and server-side latency
  storm    clients go offline, messages pile up for them, then all reconnect at
           once and sync; report the time until all caught up and lost messages
  group    members of one group, all online, receive what senders post to it;
           report deliveries/s and publish-to-last-delivery latency
  channel  members of one community channel, some online, receive what senders
           post to it; the same report as group

Fixture:
  seed     write accounts (with tokens) and optionally direct conversations full
           of messages straight into a stopped server's database (--hubs: some
           accounts with --hub-chats conversations each, for chats)

Run "parley-bench <scenario> --help" for the flags of a scenario.
`

// run parses the scenario and its flags and runs it; the report goes to out,
// progress lines to progress.
func run(ctx context.Context, args []string, out, progress io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(out, usage)
		if len(args) == 0 {
			return errors.New("no scenario given")
		}
		return flag.ErrHelp
	}
	switch args[0] {
	case "idle":
		cfg, err := parseIdle(args[1:], out)
		if err != nil {
			return err
		}
		_, err = runIdle(ctx, cfg, out, progress)
		return err
	case "direct":
		cfg, err := parseDirect(args[1:], out)
		if err != nil {
			return err
		}
		_, err = runDirect(ctx, cfg, out, progress)
		return err
	case "seed":
		cfg, err := parseSeed(args[1:], out)
		if err != nil {
			return err
		}
		_, err = runSeed(ctx, cfg, out, progress)
		return err
	case "history":
		cfg, err := parseHistory(args[1:], out)
		if err != nil {
			return err
		}
		_, err = runHistory(ctx, cfg, out, progress)
		return err
	case "chats":
		cfg, err := parseChats(args[1:], out)
		if err != nil {
			return err
		}
		_, err = runChats(ctx, cfg, out, progress)
		return err
	case "storm":
		cfg, err := parseStorm(args[1:], out)
		if err != nil {
			return err
		}
		_, err = runStorm(ctx, cfg, out, progress)
		return err
	case "group", "channel":
		parse := parseGroup
		if args[0] == "channel" {
			parse = parseChannel
		}
		cfg, err := parse(args[1:], out)
		if err != nil {
			return err
		}
		_, err = runGroup(ctx, cfg, out, progress)
		return err
	}
	return fmt.Errorf("unknown scenario %q (idle, direct, history, chats, storm, group, channel or seed)", args[0])
}

// common holds the flags every scenario takes.
type common struct {
	base        *url.URL
	users       int
	usersFile   string // accounts written by seed; empty: register users
	sourceIPs   int
	timeout     time.Duration // per connection or request
	concurrency int           // registrations and dials in flight
	limit       time.Duration // the whole run
	debugURL    string        // the server's --debug-addr listener, "" when not given
	cpuProfile  string        // file for a CPU profile of the server during the measured phase
}

// parseArgs parses a scenario's flags; scenarios take no positional arguments.
func parseArgs(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func (c *common) register(fs *flag.FlagSet, users int) (rawURL, debugURL *string) {
	rawURL = fs.String("url", "http://127.0.0.1:8080", "base `URL` of the Parley server (loopback only)")
	fs.IntVar(&c.users, "users", users, "users taking part (registered, or the first ones of --users-file)")
	fs.StringVar(&c.usersFile, "users-file", "", "`file` of accounts written by parley-bench seed; without it the users are registered over REST")
	fs.IntVar(&c.sourceIPs, "source-ips", 1, "spread connections over local source addresses 127.0.0.1 … 127.0.0.`N` (each has its own ~28k ephemeral ports)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "timeout of one request or connection handshake")
	fs.IntVar(&c.concurrency, "concurrency", 64, "registrations, requests and connection handshakes in flight")
	fs.DurationVar(&c.limit, "limit", 10*time.Minute, "hard bound on the whole run")
	debugURL = fs.String("debug-url", "", "`URL` of the server's --debug-addr listener (loopback), to read its memory or profile it")
	fs.StringVar(&c.cpuProfile, "cpu-profile", "", "write a CPU profile of the server, taken during the measured phase, to `file` (needs --debug-url)")
	return rawURL, debugURL
}

// load is how the sending scenarios (direct, group) offer messages.
type load struct {
	rate        int           // messages per second, over all senders
	duration    time.Duration // how long to send
	grace       time.Duration // how long to wait for what is late once sending stops
	size        int           // bytes of padding in each message
	maxInflight int           // unacknowledged sends per sender
}

func (l *load) addFlags(fs *flag.FlagSet, rate, maxInflight int, sender string) {
	fs.IntVar(&l.rate, "rate", rate, "messages per second offered, over all senders")
	fs.DurationVar(&l.duration, "duration", 20*time.Second, "how long to send")
	fs.DurationVar(&l.grace, "grace", 5*time.Second, "how long to wait for late acks and deliveries after sending stops")
	fs.IntVar(&l.size, "size", 256, "`bytes` of ciphertext-like padding in each message")
	fs.IntVar(&l.maxInflight, "max-inflight", maxInflight, "unacknowledged sends allowed per "+sender+"; beyond it the sender waits")
}

func (l *load) validate(maxRate int) error {
	switch {
	case l.rate < 1 || l.rate > maxRate:
		return fmt.Errorf("--rate must be between 1 and %d", maxRate)
	case l.duration <= 0 || l.duration > time.Hour:
		return errors.New("--duration must be between 0 and 1h")
	case l.size < 0 || l.size > 48<<10:
		return errors.New("--size must be between 0 and 49152")
	case l.maxInflight < 1:
		return errors.New("--max-inflight must be positive")
	}
	return nil
}

func (c *common) check(rawURL, debugURL string) error {
	u, err := loopbackURL(rawURL)
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	c.base = u
	if debugURL != "" {
		d, err := loopbackURL(debugURL)
		if err != nil {
			return fmt.Errorf("--debug-url: %w", err)
		}
		c.debugURL = d.String()
	}
	if c.cpuProfile != "" && c.debugURL == "" {
		return errors.New("--cpu-profile needs --debug-url")
	}
	switch {
	case c.users < 1 || c.users > 100_000:
		return errors.New("--users must be between 1 and 100000")
	case c.sourceIPs < 1 || c.sourceIPs > 254:
		return errors.New("--source-ips must be between 1 and 254")
	case c.concurrency < 1 || c.concurrency > 1024:
		return errors.New("--concurrency must be between 1 and 1024")
	case c.timeout <= 0 || c.limit <= 0:
		return errors.New("--timeout and --limit must be positive")
	}
	return nil
}

// sourceIP is the local address of the i-th connection.
func (c *common) sourceIP(i int) net.IP {
	if c.sourceIPs == 1 {
		return nil
	}
	return net.IPv4(127, 0, 0, byte(1+i%c.sourceIPs))
}

// loopbackURL parses an http URL and refuses any host that is not a
// loopback address: the bench must never load someone else's server.
func loopbackURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: scheme must be http or https", raw)
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%q: only loopback targets (127.0.0.0/8, ::1, localhost) are allowed", raw)
	}
	u.Path, u.RawQuery, u.Fragment = strings.TrimSuffix(u.Path, "/"), "", ""
	return u, nil
}

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit and
// returns the new soft limit.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, err
		}
	}
	return lim.Cur, nil
}

// everySecond calls line once a second and prints its result until ctx ends.
func everySecond(ctx context.Context, w io.Writer, line func(elapsed time.Duration) string) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fmt.Fprintf(w, "[%5.1fs] %s\n", time.Since(start).Seconds(), line(time.Since(start)))
			}
		}
	}()
	return func() { cancel(); <-done }
}
