// Package engineio is an Engine.IO protocol v4 server: HTTP long-polling,
// WebSocket, the upgrade between them, and server-initiated heartbeats.
//
// Lock order: Session.recvMu → Session.mu → Server.mu. recvMu serialises
// the packets of concurrent polling POSTs and is held while the OnMessage
// callback runs (application work included), so that callback must never
// wait for another POST of the same session. Session.mu may be held while
// taking Server.mu (to unregister a session); Server.mu is never held while
// taking a Session.mu, and no callback (OnSession, OnMessage, OnClose) runs
// under Session.mu or Server.mu.
package engineio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parley-chat/parley/wsock"
)

// Default values used when an Options field is zero.
const (
	DefaultPingInterval = 25 * time.Second
	DefaultPingTimeout  = 20 * time.Second
	DefaultMaxPayload   = 1_000_000
	DefaultQueueSize    = 256
)

// Engine.IO HTTP error codes, sent as {"code":N,"message":"..."}.
const (
	CodeUnknownTransport    = 0
	CodeUnknownSID          = 1
	CodeBadHandshakeMethod  = 2
	CodeBadRequest          = 3
	CodeForbidden           = 4
	CodeUnsupportedProtocol = 5
	// CodeTooManyPending (not in the Engine.IO specification) refuses a
	// handshake, with HTTP 429, while too many sessions that have not yet
	// been established (see Session.Established) are open, overall or
	// from the client's address.
	CodeTooManyPending = 6
)

var codeMessages = [...]string{
	CodeUnknownTransport:    "Transport unknown",
	CodeUnknownSID:          "Session ID unknown",
	CodeBadHandshakeMethod:  "Bad handshake method",
	CodeBadRequest:          "Bad request",
	CodeForbidden:           "Forbidden",
	CodeUnsupportedProtocol: "Unsupported protocol version",
	CodeTooManyPending:      "Too many pending connections",
}

// Options configures a Server. Zero values mean the defaults above.
type Options struct {
	// PingInterval is how often the server pings; PingTimeout how long it
	// then waits for the pong before closing the session.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// MaxPayload bounds a polling POST body (413 beyond) and a WebSocket
	// message (the connection is closed beyond).
	MaxPayload int
	// QueueSize bounds each session's outgoing queue, in packets; a
	// session whose queue overflows is closed.
	QueueSize int
	// AllowedOrigins lists the origins given CORS headers and allowed to
	// upgrade to WebSocket; "*" allows any origin.
	AllowedOrigins []string
	// CheckOrigin overrides the WebSocket origin check (default: same
	// origin, no Origin header, or an origin in AllowedOrigins).
	CheckOrigin func(r *http.Request) bool
	// Allow is called on each handshake; an error refuses it with 403 and
	// code 4 (Forbidden).
	Allow func(r *http.Request) error
	// OnSession is called for each new session before its open packet is
	// sent, so it can install the session's callbacks race-free.
	OnSession func(s *Session)
	// MaxPending caps the sessions open at once that the application has
	// not yet marked Established (for Socket.IO: not yet authenticated);
	// MaxPendingPerAddr caps them per client IP address (the peer address
	// of the connection). Past either cap a handshake is refused with
	// HTTP 429 and CodeTooManyPending. Zero means no cap.
	MaxPending        int
	MaxPendingPerAddr int
	// ClientAddr names the client of a handshake for MaxPendingPerAddr;
	// nil: the IP of the connection's peer. Behind load balancers, pass
	// one that trusts their X-Forwarded-For.
	ClientAddr func(r *http.Request) string
	// Budget, when not nil, bounds the bytes queued for sending across
	// every session (polling queues and WebSockets); a session that would
	// go over it is closed like one whose queue overflowed.
	Budget *wsock.Budget
	// Coalescer, when not nil, holds busy WebSockets' writes apart under
	// heavy fan-out (wsock.Coalescer).
	Coalescer *wsock.Coalescer
}

// Server is an Engine.IO endpoint; it implements http.Handler and is safe
// for concurrent use.
type Server struct {
	opts     Options
	upgrader *wsock.Upgrader

	mu          sync.Mutex
	sessions    map[string]*Session
	pending     int            // sessions not yet established
	pendingAddr map[string]int // the same, by client address
}

// NewServer returns a Server with opts, defaults filled in.
func NewServer(opts Options) *Server {
	if opts.PingInterval <= 0 {
		opts.PingInterval = DefaultPingInterval
	}
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = DefaultPingTimeout
	}
	if opts.MaxPayload <= 0 {
		opts.MaxPayload = DefaultMaxPayload
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	srv := &Server{opts: opts, sessions: make(map[string]*Session), pendingAddr: make(map[string]int)}
	check := opts.CheckOrigin
	if check == nil {
		check = func(r *http.Request) bool {
			return wsock.SameOrigin(r) || srv.originAllowed(r.Header.Get("Origin"))
		}
	}
	srv.upgrader = wsock.NewUpgrader(wsock.Options{
		ReadLimit:   opts.MaxPayload,
		QueueSize:   opts.QueueSize,
		CheckOrigin: check,
		Budget:      opts.Budget,
		Coalescer:   opts.Coalescer,
	})
	return srv
}

// Len returns the number of open sessions.
func (srv *Server) Len() int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return len(srv.sessions)
}

// Polling reports whether a long-polling GET of session sid is waiting
// for packets: what a test waits for, instead of sleeping, before it acts
// on a pending poll.
func (srv *Server) Polling(sid string) bool {
	s := srv.lookup(sid)
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polling
}

// Close closes every open session (with reason ReasonForcedClose).
func (srv *Server) Close() {
	srv.mu.Lock()
	all := make([]*Session, 0, len(srv.sessions))
	for _, s := range srv.sessions {
		all = append(all, s)
	}
	srv.mu.Unlock()
	for _, s := range all {
		s.Close()
	}
}

func (srv *Server) lookup(sid string) *Session {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.sessions[sid]
}

func (srv *Server) register(s *Session) {
	srv.mu.Lock()
	srv.sessions[s.id] = s
	srv.mu.Unlock()
}

func (srv *Server) unregister(s *Session) {
	srv.mu.Lock()
	if srv.sessions[s.id] == s {
		delete(srv.sessions, s.id)
	}
	srv.mu.Unlock()
}

// Pending returns the number of open sessions not yet established.
func (srv *Server) Pending() int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.pending
}

// reservePending counts s as pending, or reports false when a cap is
// reached.
func (srv *Server) reservePending(s *Session) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if max := srv.opts.MaxPending; max > 0 && srv.pending >= max {
		return false
	}
	if max := srv.opts.MaxPendingPerAddr; max > 0 && srv.pendingAddr[s.addr] >= max {
		return false
	}
	srv.pending++
	srv.pendingAddr[s.addr]++
	s.pending = true
	return true
}

// releasePending stops counting s as pending; it is idempotent.
func (srv *Server) releasePending(s *Session) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if !s.pending {
		return
	}
	s.pending = false
	srv.pending--
	if n := srv.pendingAddr[s.addr] - 1; n > 0 {
		srv.pendingAddr[s.addr] = n
	} else {
		delete(srv.pendingAddr, s.addr)
	}
}

func (srv *Server) originAllowed(origin string) bool {
	if origin == "" {
		return false
	}
	for _, o := range srv.opts.AllowedOrigins {
		if o == "*" || o == origin {
			return true
		}
	}
	return false
}

// setCORS adds CORS headers for an allowed origin. "*" is sent as is (no
// credentials), a listed origin is echoed with credentials allowed.
func (srv *Server) setCORS(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" || !srv.originAllowed(origin) {
		return
	}
	h := w.Header()
	wildcard := false
	for _, o := range srv.opts.AllowedOrigins {
		wildcard = wildcard || o == "*"
	}
	if wildcard {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Add("Vary", "Origin")
	}
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
			h.Set("Access-Control-Allow-Headers", rh)
		}
	}
}

// ServeHTTP serves the Engine.IO endpoint (both transports).
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	srv.setCORS(w, r)
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	q := r.URL.Query()
	if q.Get("EIO") != "4" {
		writeError(w, CodeUnsupportedProtocol)
		return
	}
	transport := q.Get("transport")
	if transport != "polling" && transport != "websocket" {
		writeError(w, CodeUnknownTransport)
		return
	}
	sid := q.Get("sid")
	if sid == "" {
		if r.Method != http.MethodGet {
			writeError(w, CodeBadHandshakeMethod)
			return
		}
		if transport == "websocket" && !isWebSocketRequest(r) {
			writeError(w, CodeBadRequest)
			return
		}
		if srv.opts.Allow != nil {
			if err := srv.opts.Allow(r); err != nil {
				writeError(w, CodeForbidden)
				return
			}
		}
		srv.handshake(w, r, transport)
		return
	}
	s := srv.lookup(sid)
	if s == nil {
		writeErrorMessage(w, CodeUnknownSID, UnknownSessionMessage)
		return
	}
	switch {
	case transport == "websocket" && isWebSocketRequest(r):
		s.probeWebSocket(w, r)
	case transport == "polling" && r.Method == http.MethodGet:
		s.poll(w, r)
	case transport == "polling" && r.Method == http.MethodPost:
		s.post(w, r)
	default:
		writeError(w, CodeBadRequest)
	}
}

func isWebSocketRequest(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// UnknownSessionMessage is the error message for a request naming a
// session this server does not hold. Behind a load balancer that is most
// often a long-polling request sent to another node than the one that
// opened the session, so the message says what to do about it.
const UnknownSessionMessage = "Session ID unknown: this node holds no session with that sid. " +
	"It closed, or another node holds it: with several nodes, route every long-polling request " +
	"of a session to the node that opened it (sticky sessions), or connect with the websocket transport only"

func writeError(w http.ResponseWriter, code int) {
	writeErrorMessage(w, code, codeMessages[code])
}

func writeErrorMessage(w http.ResponseWriter, code int, message string) {
	status := http.StatusBadRequest
	switch code {
	case CodeForbidden:
		status = http.StatusForbidden
	case CodeTooManyPending:
		status = http.StatusTooManyRequests
	}
	body, _ := json.Marshal(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, message})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (srv *Server) openFrame(sid string, upgrades bool) Frame {
	up := `[]`
	if upgrades {
		up = `["websocket"]`
	}
	// The sid is base64url, so it needs no JSON escaping.
	b := make([]byte, 0, 128)
	b = append(b, byte(PacketOpen))
	b = append(b, `{"sid":"`...)
	b = append(b, sid...)
	b = append(b, `","upgrades":`...)
	b = append(b, up...)
	b = append(b, `,"pingInterval":`...)
	b = strconv.AppendInt(b, srv.opts.PingInterval.Milliseconds(), 10)
	b = append(b, `,"pingTimeout":`...)
	b = strconv.AppendInt(b, srv.opts.PingTimeout.Milliseconds(), 10)
	b = append(b, `,"maxPayload":`...)
	b = strconv.AppendInt(b, int64(srv.opts.MaxPayload), 10)
	b = append(b, '}')
	return Frame{Data: b}
}

func (srv *Server) handshake(w http.ResponseWriter, r *http.Request, transport string) {
	addr := clientAddr(r.RemoteAddr)
	if srv.opts.ClientAddr != nil {
		addr = srv.opts.ClientAddr(r)
	}
	s := &Session{srv: srv, id: NewID(), addr: addr}
	if !srv.reservePending(s) {
		writeError(w, CodeTooManyPending)
		return
	}
	s.req.Store(detachRequest(r))
	if transport == "polling" {
		s.wake = make(chan struct{}, 1)
		s.done = make(chan struct{})
		srv.register(s)
		if srv.opts.OnSession != nil {
			srv.opts.OnSession(s)
		}
		s.startHeartbeat()
		writePayload(w, []Frame{srv.openFrame(s.id, true)})
		return
	}
	c, err := srv.upgrader.Upgrade(w, r, (*wsHandler)(s))
	if err != nil {
		srv.releasePending(s)
		return // the upgrader already answered
	}
	s.ws = c
	s.isWS = true
	s.open.Store(c)
	srv.register(s)
	if srv.opts.OnSession != nil {
		srv.opts.OnSession(s)
	}
	c.Send(wsock.Text, srv.openFrame(s.id, false).Data)
	s.startHeartbeat()
	c.Start()
}

// keptHeaders are the handshake headers a session keeps (see
// detachRequest): what authentication and origin checks read.
var keptHeaders = [...]string{"Authorization", "Origin", "X-Forwarded-For", "Cookie"}

// maxKeptBytes bounds each kept header value and the kept query: a longer
// one is dropped, not truncated (a cut token would only fail later).
const maxKeptBytes = 4 << 10

// detachRequest copies what a session keeps of its handshake request: the
// method, host, path and query, the remote address and a few headers, each
// bounded. Keeping the whole request (up to 64 KiB of headers) for every
// session not yet authenticated would let anyone fill the memory with
// handshakes.
func detachRequest(r *http.Request) *http.Request {
	u := &url.URL{Path: r.URL.Path}
	if len(r.URL.RawQuery) <= maxKeptBytes {
		u.RawQuery = r.URL.RawQuery
	}
	h := make(http.Header, len(keptHeaders))
	for _, k := range keptHeaders {
		if v := r.Header.Get(k); v != "" && len(v) <= maxKeptBytes {
			h[k] = []string{v}
		}
	}
	d := &http.Request{Method: r.Method, URL: u, Proto: r.Proto, ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
		Header: h, Body: http.NoBody, Host: r.Host, RemoteAddr: r.RemoteAddr, RequestURI: u.RequestURI()}
	return d.WithContext(context.Background())
}

// clientAddr is the IP part of a peer address, the key of the per-address
// pending cap.
func clientAddr(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// NewID returns a random 20-character URL-safe identifier.
func NewID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func writePayload(w http.ResponseWriter, frames []Frame) {
	n := 0
	for _, f := range frames {
		n += len(f.Data)*4/3 + 5
	}
	body := appendPayload(make([]byte, 0, n), frames)
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}
