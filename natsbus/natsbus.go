// Package natsbus is the parley.Bus of several nodes: events travel between
// nodes over core NATS (github.com/nats-io/nats.go), and each node hands
// them to its own subscribers.
//
// Subjects: an event named N is published on "<prefix>.ev.<N>" (prefix
// "parley" by default) and every node subscribes to "<prefix>.ev.>", so
// `nats sub 'parley.ev.>'` shows the traffic and several Parley clusters can
// share one NATS under different prefixes. The payload is the addressees
// joined by commas, a newline, then the event's JSON as the service encoded
// it: each event is encoded once by its publisher and decoded once per node.
//
// Delivery is at most once, like core NATS: the database is the source of
// truth and clients catch up through sync. A node delivers its own events
// to its subscribers directly (its connection does not echo them back), so
// they keep flowing on that node while NATS is away. Publishes made while
// disconnected are buffered by the client (8 MiB) and sent on reconnection.
//
// No event from another node is lost silently. Events received wait in a
// bounded queue (Options.QueueLen, QueueBytes) for this node's subscribers;
// when the node is too far behind, an event that does not fit is dropped,
// logged and counted, and its addressees get parley.EventBusGap with To
// set to them, after the drop, so transports close those users' sockets
// and their clients catch up through sync. Every message a node publishes
// carries its sequence number (header Parley-Seq: "<publisher>:<n>"); a
// receiver that sees a publisher's numbers jump lost messages somewhere
// between the nodes (a NATS server or route dropped them, or they were in
// flight when a connection broke) without knowing whose they were, and
// delivers parley.EventBusGap with no addressee: every socket of the node
// resynchronises. The same happens after this node's connection was
// interrupted, and on the other nodes when a publish overflowed the
// reconnect buffer.
package natsbus

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/localbus"
)

// Options configures a Bus. Zero values take the defaults.
type Options struct {
	// Name names the connection in NATS monitoring, e.g. the node id.
	Name string
	// Prefix is the first token of every subject; default "parley".
	Prefix string
	// ReconnectWait is the pause between reconnection attempts, to which
	// up to as much random jitter is added; default 1s. Attempts never stop.
	ReconnectWait time.Duration
	// DrainTimeout bounds how long Close waits for in-flight events; default 5s.
	DrainTimeout time.Duration
	// QueueLen and QueueBytes bound the events received from other nodes
	// that wait for this node's subscribers; an event past either bound
	// is dropped (see the package comment). Defaults 65,536 events and
	// 64 MiB; one event larger than QueueBytes still passes an empty queue.
	QueueLen   int
	QueueBytes int64
	Logger     *slog.Logger
}

// Stats counts the events from other nodes this node lost, by cause.
type Stats struct {
	// Dropped: received but dropped because this node's queue was full.
	Dropped uint64
	// Missing: never received, found by a publisher's sequence jumping.
	Missing uint64
	// ClientDropped: dropped by the NATS client itself (its subscription's
	// pending limits) before this package saw them.
	ClientDropped uint64
	// Queued is the number of events waiting for the subscribers now.
	Queued int
}

// seqHeader carries "<publisher>:<n>": the publishing connection's random
// id and the message's number, from 1, counting every message it sent.
const seqHeader = "Parley-Seq"

// maxPublishers bounds the publishers whose sequence a receiver tracks;
// past it the table starts again (the next message of each is taken as its
// first).
const maxPublishers = 1024

// maxLostUsers bounds the addressees of dropped events remembered until
// the worker closes their sockets; past it every socket is closed.
const maxLostUsers = 100_000

// Bus is a parley.Bus over NATS. It is safe for concurrent use.
type Bus struct {
	nc      *nats.Conn
	sub     *nats.Subscription
	prefix  string // "<prefix>.ev."
	log     *slog.Logger
	drain   time.Duration
	dropped atomic.Bool // a publish failed while disconnected: tell the others after reconnecting
	closed  chan struct{}
	local   *localbus.Bus // this node's subscribers

	// Publishing: pubMu orders the sequence numbers as the messages go out.
	pubID  string
	pubMu  sync.Mutex
	pubSeq uint64

	// Receiving: receive (NATS's subscription goroutine) checks sequences
	// and queues; run (the worker) hands events to the subscribers.
	seen       map[string]uint64 // publisher → last sequence number; receive only
	seenEpoch  uint64            // the reconnects seen was last cleared at; receive only
	reconnects atomic.Uint64     // counted by onReconnect: seen starts over after one
	queue      chan *nats.Msg
	queuedSize atomic.Int64
	queueBytes int64
	wake       chan struct{} // lost events to handle
	quit       chan struct{} // closed by Close: run returns
	stopped    chan struct{} // run returned
	// run's log of losses: at most one line a second, with the totals.
	logAt              time.Time
	logEvents, logGaps int
	logUsers           int
	logAll             bool

	lostMu    sync.Mutex
	lostUsers map[string]struct{} // addressees of dropped events, not yet resynchronised
	lostAll   bool                // and everyone
	lostCount int                 // events dropped or missing since the worker last handled them

	dropped64, missing64 atomic.Uint64

	closeOnce sync.Once
}

// Connect connects to the NATS server(s) at servers (a nats://, tls://,
// ws:// or wss:// URL, or a comma-separated list of them, credentials
// allowed in the URL) and subscribes to every node's events. It fails when
// no server answers now; once connected it reconnects by itself, forever.
func Connect(servers string, opts Options) (*Bus, error) {
	if opts.Prefix == "" {
		opts.Prefix = "parley"
	}
	if err := validPrefix(opts.Prefix); err != nil {
		return nil, err
	}
	if opts.ReconnectWait <= 0 {
		opts.ReconnectWait = time.Second
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.QueueLen <= 0 {
		opts.QueueLen = 65_536
	}
	if opts.QueueBytes <= 0 {
		opts.QueueBytes = 64 << 20
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("natsbus: publisher id: %w", err)
	}
	b := &Bus{prefix: opts.Prefix + ".ev.", log: opts.Logger.With("component", "natsbus"), drain: opts.DrainTimeout,
		closed: make(chan struct{}), local: localbus.New(), pubID: hex.EncodeToString(id[:]), seen: map[string]uint64{},
		queue: make(chan *nats.Msg, opts.QueueLen), queueBytes: opts.QueueBytes, wake: make(chan struct{}, 1),
		quit: make(chan struct{}), stopped: make(chan struct{}), lostUsers: map[string]struct{}{}}
	nc, err := nats.Connect(servers,
		nats.Name(opts.Name),
		nats.NoEcho(), // this node's events reach its subscribers in Publish
		nats.MaxReconnects(-1),
		nats.ReconnectWait(opts.ReconnectWait),
		nats.ReconnectJitter(opts.ReconnectWait, opts.ReconnectWait),
		nats.Timeout(5*time.Second),
		// A half-open connection is noticed within about 30 s.
		nats.PingInterval(10*time.Second),
		nats.MaxPingsOutstanding(3),
		nats.DrainTimeout(opts.DrainTimeout),
		nats.DisconnectErrHandler(b.onDisconnect),
		nats.ReconnectHandler(b.onReconnect),
		nats.ClosedHandler(func(*nats.Conn) { close(b.closed) }),
		nats.ErrorHandler(b.onAsyncError),
	)
	if err != nil {
		return nil, fmt.Errorf("natsbus: connect to %s: %w", Redact(servers), err)
	}
	b.nc = nc
	if b.sub, err = nc.Subscribe(b.prefix+">", b.receive); err != nil {
		nc.Close()
		return nil, fmt.Errorf("natsbus: subscribe: %w", err)
	}
	// The subscription is registered once the server has seen it; only
	// then can this node be sure to hear events published after Connect.
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		nc.Close()
		return nil, fmt.Errorf("natsbus: subscribe: %w", err)
	}
	go b.run()
	if !nc.HeadersSupported() {
		b.log.Warn("the NATS server does not support headers (older than 2.2): events lost between nodes cannot be detected")
	}
	b.log.Info("bus connected", "server", nc.ConnectedUrlRedacted(), "subjects", b.prefix+">")
	return b, nil
}

// Publish implements parley.Bus: it hands ev to this node's subscribers and
// queues it for the other nodes without waiting for the network. Errors:
// an event name or addressee that cannot travel (dots, commas, spaces), or
// the event could not be queued (connection closed, or disconnected with
// the reconnect buffer full); other nodes then miss it.
//
// An event for more addressees than one NATS message holds (a post to a
// channel of 100,000 members names them all) travels as several messages
// with the same data and disjoint addressees, each within the server's
// max payload.
func (b *Bus) Publish(_ context.Context, ev *parley.Event) error {
	payloads, err := encodeChunks(ev, b.maxPayload())
	if err != nil {
		return err
	}
	b.deliver(ev)
	for _, payload := range payloads {
		if err := b.publish(b.prefix+ev.Name, payload); err != nil {
			if errors.Is(err, nats.ErrReconnectBufExceeded) {
				b.dropped.Store(true)
			}
			return fmt.Errorf("natsbus: publish %s: %w", ev.Name, err)
		}
	}
	return nil
}

// publish sends one message numbered with the next sequence number. A
// message that fails to go out keeps its number: receivers see the jump.
func (b *Bus) publish(subject string, payload []byte) error {
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	b.pubSeq++
	if !b.nc.HeadersSupported() { // a NATS server older than 2.2
		return b.nc.Publish(subject, payload)
	}
	m := &nats.Msg{Subject: subject, Data: payload, Header: nats.Header{}}
	m.Header.Set(seqHeader, b.pubID+":"+strconv.FormatUint(b.pubSeq, 10))
	return b.nc.PublishMsg(m)
}

// maxPayload is the largest message this bus sends: the server's limit
// (1 MiB by default) less room for the protocol line.
func (b *Bus) maxPayload() int {
	if n := int(b.nc.MaxPayload()); n > 4096 {
		return n - 1024
	}
	return 1 << 20
}

// encodeChunks encodes ev as one payload or, when it would exceed limit,
// as several with the same data and the addressees split between them.
// An event whose data alone does not fit is refused.
func encodeChunks(ev *parley.Event, limit int) ([][]byte, error) {
	p, err := encode(ev)
	if err != nil || len(p) <= limit {
		return [][]byte{p}, err
	}
	room := limit - len(ev.Data) - 1
	if room < 64 {
		return nil, fmt.Errorf("natsbus: event %s of %d bytes does not fit in a message of %d", ev.Name, len(ev.Data), limit)
	}
	var out [][]byte
	for to := ev.To; len(to) > 0; {
		n, size := 0, 0
		for n < len(to) && size+len(to[n])+1 <= room {
			size += len(to[n]) + 1
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("natsbus: addressee of %d bytes does not fit", len(to[0]))
		}
		part, err := encode(&parley.Event{Name: ev.Name, Data: ev.Data, To: to[:n]})
		if err != nil {
			return nil, err
		}
		out = append(out, part)
		to = to[n:]
	}
	return out, nil
}

// Subscribe implements parley.Bus.
func (b *Bus) Subscribe(fn func(*parley.Event)) func() { return b.local.Subscribe(fn) }

// Connected reports whether the bus is connected to a NATS server now.
func (b *Bus) Connected() bool { return b.nc.IsConnected() }

// Stats returns how many events from other nodes this node lost so far.
func (b *Bus) Stats() Stats {
	st := Stats{Dropped: b.dropped64.Load(), Missing: b.missing64.Load(), Queued: len(b.queue)}
	if n, err := b.sub.Dropped(); err == nil && n > 0 {
		st.ClientDropped = uint64(n)
	}
	return st
}

// Close stops receiving, sends what is still queued (waiting up to the
// drain timeout) and closes the connection.
func (b *Bus) Close() error {
	var err error
	b.closeOnce.Do(func() {
		if err = b.nc.Drain(); err != nil {
			// Not connected (reconnecting): nothing can be drained.
			b.nc.Close()
			err = nil
		}
		select {
		case <-b.closed:
		case <-time.After(b.drain + time.Second):
			b.nc.Close()
			err = errors.New("natsbus: drain timed out")
		}
		close(b.quit)
		select { // run may be inside a subscriber
		case <-b.stopped:
		case <-time.After(b.drain):
		}
	})
	return err
}

func (b *Bus) deliver(ev *parley.Event) { _ = b.local.Publish(context.Background(), ev) }

// receive runs on the subscription's own goroutine, one message at a time
// in the order they arrived: it checks the publisher's sequence and queues
// the message for run, or drops it when the queue is full. It never waits,
// so the NATS client's own pending limits are not reached.
func (b *Bus) receive(m *nats.Msg) {
	b.checkSeq(m.Header.Get(seqHeader))
	size := int64(len(m.Data))
	if n := b.queuedSize.Add(size); n > b.queueBytes && n != size {
		b.queuedSize.Add(-size)
		b.drop(m)
		return
	}
	select {
	case b.queue <- m:
	default:
		b.queuedSize.Add(-size)
		b.drop(m)
	}
}

// checkSeq notes a message's "<publisher>:<n>" and reports the messages of
// that publisher never received. Messages of publishers that do not number
// them (older versions) pass unchecked.
func (b *Bus) checkSeq(v string) {
	i := strings.LastIndexByte(v, ':')
	if i <= 0 {
		return
	}
	n, err := strconv.ParseUint(v[i+1:], 10, 64)
	if err != nil {
		return
	}
	if e := b.reconnects.Load(); e != b.seenEpoch {
		// A reconnection resynchronises every client of this node, which
		// covers whatever went missing while it was away: the numbers
		// start over rather than report that loss a second time, which
		// would close the sockets the clients opened to resynchronise.
		clear(b.seen)
		b.seenEpoch = e
	}
	pub := v[:i]
	last, known := b.seen[pub]
	if !known && len(b.seen) >= maxPublishers {
		clear(b.seen)
	}
	if known && n <= last {
		return // out of order after a reconnection; its place was counted
	}
	b.seen[pub] = n
	if known && n > last+1 {
		missing := n - last - 1
		b.missing64.Add(missing)
		b.log.Warn("events from another node never arrived; closing every socket so clients resynchronise",
			"publisher", pub, "missing", missing)
		b.lose(nil, int(min(missing, 1<<20)))
	}
}

// drop records a received message this node had no room for: its
// addressees' sockets are closed once run gets to it.
func (b *Bus) drop(m *nats.Msg) {
	b.dropped64.Add(1)
	var to []string // none: an event for every node's users, everyone resynchronises
	if i := bytes.IndexByte(m.Data, '\n'); i > 0 {
		to = strings.Split(string(m.Data[:i]), ",")
	}
	b.lose(to, 1)
}

// lose marks the sockets of addressees to (nil or empty: all) as having
// missed n events and wakes run.
func (b *Bus) lose(to []string, n int) {
	b.lostMu.Lock()
	if len(to) == 0 || len(b.lostUsers)+len(to) > maxLostUsers {
		b.lostAll = true
		clear(b.lostUsers)
	} else if !b.lostAll {
		for _, addr := range to {
			uid, _, _ := parley.ParseAddress(addr)
			b.lostUsers[uid] = struct{}{}
		}
	}
	b.lostCount += n
	b.lostMu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// run hands queued events to this node's subscribers, and after events
// were lost, parley.EventBusGap to the subscribers of the users concerned.
// A gap is handled after the loss it reports, so the clients' catch-up
// starts after the events they missed were committed.
func (b *Bus) run() {
	defer close(b.stopped)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case m := <-b.queue:
			b.queuedSize.Add(-int64(len(m.Data)))
			b.resync()
			ev, err := decode(strings.TrimPrefix(m.Subject, b.prefix), m.Data)
			if err != nil {
				b.log.Warn("dropped an event that does not decode", "subject", m.Subject, "bytes", len(m.Data))
				continue
			}
			b.deliver(ev)
		case <-b.wake:
			b.resync()
		case <-tick.C:
			if b.logGaps > 0 {
				b.logLoss(0, 0, false)
			}
		case <-b.quit:
			return
		}
	}
}

// resync delivers the gap of the events lost since it last ran, if any.
func (b *Bus) resync() {
	b.lostMu.Lock()
	n, all := b.lostCount, b.lostAll
	var users []string
	if n > 0 && !all {
		users = make([]string, 0, len(b.lostUsers))
		for uid := range b.lostUsers {
			users = append(users, uid)
		}
	}
	b.lostCount, b.lostAll = 0, false
	clear(b.lostUsers)
	b.lostMu.Unlock()
	if n == 0 {
		return
	}
	b.logLoss(n, len(users), all)
	if all {
		b.deliver(&parley.Event{Name: parley.EventBusGap})
		return
	}
	b.deliver(&parley.Event{Name: parley.EventBusGap, To: users})
}

// logLoss logs what resync did, at most once a second: under a sustained
// overload it runs for nearly every event.
func (b *Bus) logLoss(events, users int, all bool) {
	b.logEvents += events
	if events > 0 {
		b.logGaps++
	}
	b.logUsers += users
	b.logAll = b.logAll || all
	if now := time.Now(); now.Sub(b.logAt) >= time.Second {
		b.log.Warn("events from other nodes were lost; closed the sockets of their addressees so clients resynchronise",
			"events", b.logEvents, "gaps", b.logGaps, "users", b.logUsers, "everyone", b.logAll)
		b.logAt, b.logEvents, b.logGaps, b.logUsers, b.logAll = now, 0, 0, 0, false
	}
}

func (b *Bus) onDisconnect(_ *nats.Conn, err error) {
	if err != nil {
		b.log.Warn("bus disconnected; reconnecting", "err", err)
	} else {
		b.log.Info("bus disconnected")
	}
}

func (b *Bus) onReconnect(nc *nats.Conn) {
	b.log.Info("bus reconnected", "server", nc.ConnectedUrlRedacted())
	b.reconnects.Add(1) // before the resync below, which covers what was missed until now
	// The client has re-sent this node's subscription; wait for the server
	// to confirm it before telling clients to resynchronise, or an event
	// published between their sync and the subscription taking effect
	// would reach neither.
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		b.log.Warn("confirm subscription after reconnect", "err", err)
	}
	gap := &parley.Event{Name: parley.EventBusGap}
	// Others' events sent while this node was away never reached it.
	b.deliver(gap)
	if b.dropped.Swap(false) {
		// And some of this node's events never reached the others.
		b.log.Warn("events published while disconnected were dropped; asking every node to resynchronise its clients")
		payload, _ := encode(gap)
		if err := b.publish(b.prefix+gap.Name, payload); err != nil {
			b.log.Warn("publish bus gap", "err", err)
		}
	}
}

func (b *Bus) onAsyncError(_ *nats.Conn, sub *nats.Subscription, err error) {
	if sub == b.sub && errors.Is(err, nats.ErrSlowConsumer) {
		// The client dropped events this node could not take fast enough.
		b.log.Warn("bus subscriber too slow: events dropped; clients resynchronise", "err", err)
		b.deliver(&parley.Event{Name: parley.EventBusGap})
		return
	}
	b.log.Warn("bus error", "err", err)
}

// encode frames ev for the wire: "to1,to2,...\n" followed by the data.
func encode(ev *parley.Event) ([]byte, error) {
	if err := validToken(ev.Name); err != nil {
		return nil, fmt.Errorf("natsbus: event name %q: %w", ev.Name, err)
	}
	n := len(ev.Data) + 1
	for _, id := range ev.To {
		if id == "" || strings.ContainsAny(id, ",\n") {
			return nil, fmt.Errorf("natsbus: addressee %q cannot travel", id)
		}
		n += len(id) + 1
	}
	p := make([]byte, 0, n)
	for i, id := range ev.To {
		if i > 0 {
			p = append(p, ',')
		}
		p = append(p, id...)
	}
	p = append(p, '\n')
	return append(p, ev.Data...), nil
}

// decode is the inverse of encode; data aliases payload.
func decode(name string, payload []byte) (*parley.Event, error) {
	if validToken(name) != nil {
		return nil, errors.New("bad event name")
	}
	i := bytes.IndexByte(payload, '\n')
	if i < 0 {
		return nil, errors.New("no addressee line")
	}
	ev := &parley.Event{Name: name, Data: payload[i+1:]}
	if len(ev.Data) > 0 && !json.Valid(ev.Data) {
		// Sockets frame an event's data as it is (parley.Event): what
		// comes from the network is checked once here, not per socket.
		return nil, errors.New("data is not JSON")
	}
	if i > 0 {
		ev.To = strings.Split(string(payload[:i]), ",")
	}
	return ev, nil
}

// validToken accepts a non-empty NATS subject token: no dots, wildcards or
// white space.
func validToken(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if strings.ContainsAny(s, ".*> \t\r\n") {
		return errors.New("contains a dot, a wildcard or white space")
	}
	return nil
}

func validPrefix(p string) error {
	for _, tok := range strings.Split(p, ".") {
		if err := validToken(tok); err != nil {
			return fmt.Errorf("natsbus: subject prefix %q: %w", p, err)
		}
	}
	return nil
}

// Redact returns servers (a URL or a comma-separated list) with any
// password replaced, for logs and errors.
func Redact(servers string) string {
	parts := strings.Split(servers, ",")
	for i, s := range parts {
		if u, err := url.Parse(strings.TrimSpace(s)); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				parts[i] = u.Redacted()
			} else {
				u.User = url.User("xxxxx") // a bare user part may be a token
				parts[i] = u.String()
			}
		}
	}
	return strings.Join(parts, ",")
}

// IsURL reports whether s names NATS servers: one URL or a comma-separated
// list, each nats://, tls://, ws:// or wss://.
func IsURL(s string) bool {
	if s == "" {
		return false
	}
	for _, p := range strings.Split(s, ",") {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.Host == "" {
			return false
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return false
		}
	}
	return true
}
