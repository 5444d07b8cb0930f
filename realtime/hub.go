// Package realtime is the connection hub: it serves Socket.IO (/socket.io/)
// and plain WebSocket (/ws) clients, authenticates them at the handshake,
// keeps each socket in its user's room, delivers bus events to the rooms,
// and turns client events into service calls answered with an ack.
//
// Events are addressed to users, never to sockets: the service publishes
// {name, data, to: [userIDs]} on the bus, and every node's hub delivers it
// to the sockets it holds for those users. Each event is framed once per
// transport and the same bytes are queued to every socket.
//
// Lock order: Hub.mu is taken alone. It is never held while calling the
// service, the bus or a socket: deliver, internal and resync collect their
// targets under it and send or close after releasing it, because a send
// that overflows a queue closes the connection, and the disconnect path
// (socket → remove) takes Hub.mu again. client.revoked is atomic.
//
// Review of every lock of realtime, socketio, engineio, wsock and localbus
// (issue #11): callbacks (OnSession, OnMessage, OnClose, connect hooks,
// handlers, bus subscribers) run with no lock of their caller held, except
// engineio's recvMu (documented there); queue overflows close on another
// goroutine or by closing the network connection, never by calling back
// under a lock; wsock's Conn.mu, which guards a connection's outgoing
// queue, is a leaf (no other lock, no network write and no callback under
// it); localbus calls subscribers after releasing its lock. The remaining
// nesting is socketio Socket.mu → engineio Session.mu → engineio Server.mu,
// each documented where it is taken.
package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/engineio"
	"github.com/parley-chat/parley/service"
	"github.com/parley-chat/parley/socketio"
	"github.com/parley-chat/parley/wsock"
)

// CoalesceBusy is how many sockets of a node must have something to write
// before their writes are held apart (Config.WriteCoalesce). A chat's
// traffic, even at thousands of messages a second, keeps a handful of
// writers busy at a time; one post to a large group or channel starts one
// per online member.
const CoalesceBusy = 64

// BulkAudience is the number of addressees above which an event is a
// fan-out's (wsock.Message.Bulk): a post to a large group or channel, which
// a busy socket may hold for up to Config.WriteCoalesce. An event to fewer
// (a direct message, a small group's, a reply) is written at once.
const BulkAudience = 100

// Config holds the hub's settings.
type Config struct {
	// AllowedOrigins may open sockets cross-origin; same-origin requests
	// and clients that send no Origin (non-browsers) are always allowed.
	AllowedOrigins []string
	QueueSize      int           // per-connection outgoing queue, in messages; default 256
	ReadLimit      int           // largest accepted frame or polling body; default 1 MiB + 64 KiB
	PingInterval   time.Duration // Engine.IO ping interval, and /ws WebSocket ping interval; default 25s
	PingTimeout    time.Duration // how long a pong may take (both transports); default 20s
	// MaxSocketsPerUser caps the sockets one user holds on this node, both
	// transports together; default 64. Past it a Socket.IO CONNECT gets
	// CONNECT_ERROR {"message":"too many sockets"} and /ws answers 429.
	MaxSocketsPerUser int
	// ConnectTimeout closes a Socket.IO connection that has not completed
	// an authenticated CONNECT in time; default 10s.
	ConnectTimeout time.Duration
	// MaxPendingSockets and MaxPendingSocketsPerAddr cap the Socket.IO
	// connections not yet authenticated, overall and per client IP
	// address; past them a handshake answers 429. Defaults 10,000 and 64.
	MaxPendingSockets        int
	MaxPendingSocketsPerAddr int
	// ClientAddr names a handshake's client for MaxPendingSocketsPerAddr;
	// nil: the connection's peer IP.
	ClientAddr func(r *http.Request) string
	// MaxQueuedBytes bounds the bytes queued for all sockets of the node
	// together; a socket whose event would go over it is disconnected, like
	// one whose own queue is full. Default 256 MiB.
	MaxQueuedBytes int64
	// WriteCoalesce is how far apart a socket's writes of fan-out events
	// (BulkAudience) are held while the node is fanning out to many
	// sockets at once (wsock.Coalescer; at least CoalesceBusy sockets with
	// something to write): one write then carries what arrived meanwhile.
	// Any other event is written at once. Zero: 70ms; negative: never
	// held.
	WriteCoalesce time.Duration
	// EventTimeout bounds the work of one client event (and so its store
	// calls); past it the ack carries 503 unavailable. Default 5s.
	EventTimeout time.Duration
	Now          func() time.Time // the clock of token expiry; default time.Now
	Logger       *slog.Logger
	// Metrics receives socket counts, disconnects by reason, queue
	// overflows, fan-out deliveries, bus gaps and socket security events;
	// default parley.NopMetrics.
	Metrics parley.Metrics
}

// Handler answers one client event for an authenticated caller; the result
// or error goes back in the ack envelope.
type Handler func(ctx context.Context, caller *parley.Identity, data json.RawMessage) (any, error)

// Hub holds every socket of this node, by user.
type Hub struct {
	svc      *service.Service
	bus      parley.Bus
	log      *slog.Logger
	cfg      Config
	sio      *socketio.Server
	ws       *wsock.Upgrader
	handlers map[string]Handler
	unsub    func()
	m        parley.Metrics
	// deadlines gives each client event its context (EventTimeout).
	deadlines eventDeadlines

	mu    sync.RWMutex
	users map[string][]*client // a user's sockets on this node (a slice: fan-out iterates it per addressee)

	// events counts client events being handled, which Close waits for;
	// once stopping is set no event starts.
	evMu     sync.Mutex
	stopping bool
	events   sync.WaitGroup
}

// New builds a hub over svc and subscribes it to bus.
func New(svc *service.Service, bus parley.Bus, cfg Config) *Hub {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 256
	}
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = 1<<20 + 64<<10
	}
	if cfg.MaxSocketsPerUser <= 0 {
		cfg.MaxSocketsPerUser = 64
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.EventTimeout <= 0 {
		cfg.EventTimeout = 5 * time.Second
	}
	if cfg.MaxPendingSockets <= 0 {
		cfg.MaxPendingSockets = 10_000
	}
	if cfg.MaxPendingSocketsPerAddr <= 0 {
		cfg.MaxPendingSocketsPerAddr = 64
	}
	if cfg.MaxQueuedBytes <= 0 {
		cfg.MaxQueuedBytes = 256 << 20
	}
	if cfg.WriteCoalesce == 0 {
		cfg.WriteCoalesce = 70 * time.Millisecond
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 25 * time.Second
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = 20 * time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = parley.NopMetrics{}
	}
	h := &Hub{svc: svc, bus: bus, log: cfg.Logger, cfg: cfg, m: cfg.Metrics, users: map[string][]*client{},
		deadlines: eventDeadlines{timeout: cfg.EventTimeout}}
	h.handlers = h.clientEvents()
	check := h.loggedOriginCheck(originChecker(cfg.AllowedOrigins))
	budget := wsock.NewBudget(cfg.MaxQueuedBytes)
	coalescer := wsock.NewCoalescer(cfg.WriteCoalesce, CoalesceBusy)
	h.sio = socketio.NewServer(socketio.Options{ConnectTimeout: cfg.ConnectTimeout, EngineIO: engineio.Options{
		MaxPending:        cfg.MaxPendingSockets,
		MaxPendingPerAddr: cfg.MaxPendingSocketsPerAddr,
		ClientAddr:        cfg.ClientAddr,
		Budget:            budget,
		Coalescer:         coalescer,
		PingInterval:      cfg.PingInterval,
		PingTimeout:       cfg.PingTimeout,
		MaxPayload:        cfg.ReadLimit,
		QueueSize:         cfg.QueueSize,
		AllowedOrigins:    cfg.AllowedOrigins,
		CheckOrigin:       check,
		Allow: func(r *http.Request) error {
			if !check(r) {
				return errors.New("origin not allowed")
			}
			return nil
		},
	}})
	nsp := h.sio.Of("/")
	nsp.OnConnect(h.onSocketIOConnect)
	for name := range h.handlers {
		nsp.On(name, h.onSocketIOEvent(name))
	}
	nsp.OnUnknown(func(sock *socketio.Socket, event string, args socketio.Args, ack socketio.AckFunc) {
		h.onSocketIOEvent(event)(sock, args, ack) // answered with invalid_argument by call
	})
	h.ws = wsock.NewUpgrader(wsock.Options{ReadLimit: cfg.ReadLimit, QueueSize: cfg.QueueSize, CheckOrigin: check,
		PingInterval: cfg.PingInterval, PingTimeout: cfg.PingTimeout, Budget: budget, Coalescer: coalescer})
	h.unsub = bus.Subscribe(h.deliver)
	return h
}

// PendingSockets is the number of Socket.IO connections of this node that
// have not authenticated yet.
func (h *Hub) PendingSockets() int { return h.sio.Engine().Pending() }

// Mount registers /socket.io/ and /ws on mux.
func (h *Hub) Mount(mux *http.ServeMux) {
	mux.Handle("/socket.io/", h.sio)
	mux.HandleFunc("GET /ws", h.serveWS)
}

// Close stops delivery and closes every connection.
func (h *Hub) Close() {
	h.evMu.Lock()
	h.stopping = true
	h.evMu.Unlock()
	h.unsub()
	h.sio.Close()
	h.mu.Lock()
	var all []*client
	for _, cs := range h.users {
		for _, c := range cs {
			all = append(all, c)
		}
	}
	h.mu.Unlock()
	for _, c := range all {
		c.closeFor("shutdown")
	}
	// Events already taken in finish (their work is bounded by
	// EventTimeout), so none reaches the service after it closed.
	h.events.Wait()
}

// Connections returns how many sockets this node holds.
func (h *Hub) Connections() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, cs := range h.users {
		n += len(cs)
	}
	return n
}

// originChecker allows requests without Origin, same-origin requests and
// the configured origins ("*" allows any).
func originChecker(allowed []string) func(*http.Request) bool {
	set := map[string]bool{}
	for _, o := range allowed {
		set[strings.TrimSuffix(strings.ToLower(o), "/")] = true
	}
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		if origin == "" || set["*"] || set[strings.ToLower(origin)] {
			return true
		}
		u, err := url.Parse(origin)
		return err == nil && strings.EqualFold(u.Host, r.Host)
	}
}

// client is one connected socket of a user, on either transport.
type client struct {
	revoked atomic.Bool // its token was revoked; it is being closed
	// slots bounds its pipelined events in flight (see dispatch); made
	// with its first one, so an idle socket does not pay for it.
	slots atomic.Pointer[chan struct{}]
	id    *parley.Identity
	sio   *socketio.Socket // set for Socket.IO clients
	conn  *wsock.Conn      // set for plain WebSocket clients
	// reason is why the hub closed it (a parley.CloseReasons value), set
	// before closing; nil when the transport or the client closed it.
	reason atomic.Pointer[string]
}

func (c *client) close() {
	if c.sio != nil {
		c.sio.CloseConn()
	} else {
		c.conn.Close()
	}
}

// closeFor closes c, recording why (the first reason set wins).
func (c *client) closeFor(reason string) {
	c.reason.CompareAndSwap(nil, &reason)
	c.close()
}

// transport names c's transport, the metrics' label.
func (c *client) transport() string {
	if c.sio != nil {
		return "socketio"
	}
	return "ws"
}

// loggedOriginCheck wraps the origin check of both transports: a refused
// origin is a security event.
func (h *Hub) loggedOriginCheck(check func(*http.Request) bool) func(*http.Request) bool {
	return func(r *http.Request) bool {
		if check(r) {
			return true
		}
		origin := r.Header.Get("Origin")
		if len(origin) > 200 {
			origin = origin[:200]
		}
		h.log.Warn("socket origin refused", "event", parley.SecOriginRefused, "origin", origin, "path", r.URL.Path)
		h.m.SecurityEvent(parley.SecOriginRefused)
		return false
	}
}

// authFailed logs and counts a socket handshake whose token was refused
// (not one that failed because the database did not answer).
func (h *Hub) authFailed(transport string, err error) {
	if parley.ErrorCode(err) != parley.EUNAUTHORIZED {
		return
	}
	h.log.Warn("socket authentication failed", "event", parley.SecSocketAuth, "transport", transport)
	h.m.SecurityEvent(parley.SecSocketAuth)
}

// frames is one event framed for each transport, lazily and once.
type frames struct {
	ev      *parley.Event
	bulk    bool // a fan-out's: see BulkAudience
	sioOnce sync.Once
	sio     *socketio.Prepared
	wsOnce  sync.Once
	ws      wsock.Message
}

func (f *frames) forSocketIO() *socketio.Prepared {
	f.sioOnce.Do(func() {
		// The data is an encoder's (parley.Event): framed as it is.
		f.sio, _ = socketio.PrepareEvent("/", f.ev.Name, socketio.Encoded(f.ev.Data))
		if f.sio != nil && f.bulk {
			f.sio.MarkBulk()
		}
	})
	return f.sio
}

// forWS is the event's /ws frame, framed as a WebSocket message once, so
// every /ws socket is queued the same bytes.
func (f *frames) forWS() wsock.Message {
	f.wsOnce.Do(func() {
		b := appendWSFrame(nil, f.ev.Name, f.ev.Data)
		f.ws = wsock.NewMessage(false, len(b))
		copy(f.ws.Data, b)
		f.ws.Bulk = f.bulk
	})
	return f.ws
}

func (c *client) send(f *frames) bool {
	if c.sio != nil {
		return c.sio.SendPrepared(f.forSocketIO())
	}
	return c.conn.SendMessages(f.forWS())
}

// errTooManySockets refuses a socket past Config.MaxSocketsPerUser.
var errTooManySockets = errors.New("too many sockets")

// add joins c to its user's room, or refuses it with errTooManySockets.
func (h *Hub) add(c *client) error {
	h.mu.Lock()
	cs := h.users[c.id.UserID]
	if len(cs) >= h.cfg.MaxSocketsPerUser {
		h.mu.Unlock()
		return errTooManySockets
	}
	h.users[c.id.UserID] = append(cs, c)
	h.mu.Unlock()
	h.svc.SocketConnected(c.id.UserID)
	h.joined(c)
	h.m.SocketOpened(c.transport())
	h.log.Info("socket connected", "user", c.id.UserID, "transport", c.transport())
	return nil
}

// confirm re-checks the token of a client just added: a logout that
// committed before the add was published before it too, so its
// revocation event missed c. Re-reading the session after the add makes
// revocation win every race.
func (h *Hub) confirm(c *client) bool {
	if c.revoked.Load() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.svc.SessionLive(ctx, c.id) == nil
}

// remove takes c out of its user's room; reason is the transport's
// (a parley.CloseReasons value), unless the hub closed c for its own.
func (h *Hub) remove(c *client, reason string) {
	h.mu.Lock()
	cs := h.users[c.id.UserID]
	i := slices.Index(cs, c)
	ok := i >= 0
	if ok {
		cs = slices.Delete(cs, i, i+1) // clears the vacated slot
	}
	if len(cs) == 0 {
		delete(h.users, c.id.UserID)
	} else {
		h.users[c.id.UserID] = cs
	}
	h.mu.Unlock()
	if ok {
		h.svc.SocketDisconnected(c.id.UserID)
		h.svc.DeviceSocketClosed(c.id)
		if r := c.reason.Load(); r != nil {
			reason = *r
		}
		h.m.SocketClosed(c.transport(), reason)
		h.log.Info("socket disconnected", "user", c.id.UserID, "transport", c.transport(), "reason", reason)
	}
}

// deliver queues a bus event to every socket of its addressees on this
// node. Internal events (names starting with "_") act on the hub instead.
func (h *Hub) deliver(ev *parley.Event) {
	if strings.HasPrefix(ev.Name, "_") {
		h.internal(ev)
		return
	}
	f := &frames{ev: ev, bulk: len(ev.To) > BulkAudience}
	// Collect first, send after: a send that overflows a queue closes
	// that connection, and its disconnect callback takes h.mu.
	var targets []*client
	h.mu.RLock()
	if ev.Audience != nil && len(ev.To) > 2*len(h.users) {
		// A fan-out to more users than this node has online (a large
		// channel): check each of them against the audience instead.
		for uid, cs := range h.users {
			if ev.Audience.Has(uid) {
				targets = append(targets, cs...)
			}
		}
		h.mu.RUnlock()
		h.send(f, targets)
		return
	}
	for _, addr := range ev.To {
		// An addressee is a user, or one device of a user (or all but
		// one): parley.DeviceAddress.
		uid, dev, except := parley.ParseAddress(addr)
		for _, c := range h.users[uid] {
			if dev == "" || (c.id.DeviceID == dev) != except {
				targets = append(targets, c)
			}
		}
	}
	h.mu.RUnlock()
	h.send(f, targets)
}

// send queues f on each of targets.
func (h *Hub) send(f *frames, targets []*client) {
	n := 0
	for _, c := range targets {
		if c.send(f) {
			n++
		} else if full := "queue_full"; c.reason.CompareAndSwap(nil, &full) {
			// A send fails when the queue overflowed (the transport then
			// closes the socket) or, rarely, when the socket closed at
			// this moment; a socket the hub closed already has a reason.
			h.m.QueueOverflow(c.transport())
		}
	}
	h.m.Delivered(n)
}

func (h *Hub) internal(ev *parley.Event) {
	switch ev.Name {
	case parley.EventBusGap:
		h.m.BusGap()
		h.resync(ev.To)
		return
	case service.EventSessionRevoked:
	default:
		return
	}
	var r struct {
		TokenHash string `json:"tokenHash"`
		All       bool   `json:"all"`
	}
	if json.Unmarshal(ev.Data, &r) != nil {
		return
	}
	var doomed []*client
	h.mu.RLock()
	for _, uid := range ev.To {
		for _, c := range h.users[uid] {
			if r.All || c.id.TokenHash == r.TokenHash {
				c.revoked.Store(true) // refuse its events from now on
				doomed = append(doomed, c)
			}
		}
	}
	h.mu.RUnlock()
	for _, c := range doomed {
		h.log.Warn("socket closed: its session was revoked", "event", parley.SecSocketRevoked, "user", c.id.UserID, "transport", c.transport())
		h.m.SecurityEvent(parley.SecSocketRevoked)
		c.closeFor("revoked")
	}
}

// resync closes the sockets of users (every socket of this node when
// users is empty) after the bus lost events from other nodes addressed to
// them. Their clients reconnect (the connection drops, so Socket.IO
// clients do it by themselves) and, as after any reconnection, catch up
// through /api/sync; sockets opened with a token revoked meanwhile are
// refused then.
func (h *Hub) resync(users []string) {
	h.mu.RLock()
	var all []*client
	if len(users) == 0 {
		for _, cs := range h.users {
			for _, c := range cs {
				all = append(all, c)
			}
		}
	}
	for _, uid := range users {
		for _, c := range h.users[uid] {
			all = append(all, c)
		}
	}
	h.mu.RUnlock()
	if len(all) > 0 {
		h.log.Warn("events from other nodes may have been missed; closing sockets so clients resynchronise", "sockets", len(all), "everyone", len(users) == 0)
	}
	for _, c := range all {
		c.closeFor("bus_gap")
	}
}

// tokenOf finds the bearer token of a handshake: the auth payload's token,
// the token query parameter, or the Authorization header.
func tokenOf(auth json.RawMessage, r *http.Request) string {
	var a struct {
		Token string `json:"token"`
	}
	if len(auth) > 0 && json.Unmarshal(auth, &a) == nil && a.Token != "" {
		return strings.TrimPrefix(a.Token, "Bearer ")
	}
	if r != nil {
		if t := r.URL.Query().Get("token"); t != "" {
			return t
		}
		if v := r.Header.Get("Authorization"); len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			return strings.TrimSpace(v[7:])
		}
	}
	return ""
}

func (h *Hub) authenticate(token string) (*parley.Identity, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.svc.Authenticate(ctx, token)
}

func (h *Hub) authenticateTicket(ticket string) (*parley.Identity, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.svc.AuthenticateTicket(ctx, ticket)
}

// call runs a client event's handler and returns the ack envelope.
func (h *Hub) call(c *client, name string, data json.RawMessage, queued func()) parley.Reply {
	fn := h.handlers[name]
	if fn == nil {
		return parley.ReplyOf(nil, parley.Errorf(parley.EINVALID, "unknown event %q", name))
	}
	if c.revoked.Load() {
		go c.closeFor("revoked")
		return parley.ReplyOf(nil, parley.Errorf(parley.EUNAUTHORIZED, "session revoked"))
	}
	if !h.cfg.Now().Before(c.id.ExpiresAt) {
		go c.closeFor("expired")
		return parley.ReplyOf(nil, parley.Errorf(parley.EUNAUTHORIZED, "token expired"))
	}
	ctx := h.deadlines.context()
	if queued != nil {
		ctx = service.WithQueued(ctx, queued)
	}
	res, err := fn(ctx, c.id, data)
	if parley.ErrorCode(err) == parley.EINTERNAL {
		h.log.Error("socket event failed", "event", name, "user", c.id.UserID, "err", err)
	}
	return parley.ReplyOf(res, err)
}

// pipelined names the client events whose handling may go on after the
// socket's next event is read: sends, which wait for their commit once
// queued (service.WithQueued). A socket pipelining its sends thus has
// several in one commit, in the order it sent them, instead of one per
// commit; its other events, its pongs among them, are read meanwhile.
var pipelined = map[string]bool{"send_message": true, "send_group_message": true, "send_channel_message": true}

// maxPipelined bounds one socket's pipelined events in flight; past it
// the socket is not read until one of them is answered.
const maxPipelined = 32

// dispatch handles one client event of c and hands its reply to respond.
// An event of pipelined runs on a goroutine of its own: dispatch returns,
// and the socket's next event is read, once its send is queued for the
// commit (or it was answered earlier, by an error), and respond runs when
// it is answered. Any other event is answered before dispatch returns.
func (h *Hub) dispatch(c *client, name string, data json.RawMessage, respond func(parley.Reply)) {
	h.evMu.Lock()
	if h.stopping {
		h.evMu.Unlock()
		respond(parley.ReplyOf(nil, parley.Errorf(parley.EUNAVAILABLE, "server shutting down")))
		return
	}
	h.events.Add(1)
	h.evMu.Unlock()
	if !pipelined[name] {
		defer h.events.Done()
		respond(h.call(c, name, data, nil))
		return
	}
	slots := c.pipelineSlots()
	slots <- struct{}{}
	queued := make(chan struct{})
	signal := sync.OnceFunc(func() { close(queued) })
	go func() {
		defer h.events.Done()
		reply := h.call(c, name, data, signal)
		signal()
		<-slots
		respond(reply)
	}()
	<-queued
}

// pipelineSlots returns c's slots, making them with its first use.
func (c *client) pipelineSlots() chan struct{} {
	if p := c.slots.Load(); p != nil {
		return *p
	}
	ch := make(chan struct{}, maxPipelined)
	if c.slots.CompareAndSwap(nil, &ch) {
		return ch
	}
	return *c.slots.Load()
}
