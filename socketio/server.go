// Package socketio is a Socket.IO protocol v5 server over package engineio:
// namespaces, handshake auth, events, acknowledgements in both directions
// and binary attachments. It holds no application logic.
//
// Lock order: Server.mu, conn.mu and Socket.mu are never held together,
// and none is held while application code runs (connect hooks, event and
// ack handlers, disconnect callbacks). One nesting is allowed: Socket.mu →
// engineio Session.mu, where markConnected queues the CONNECT answer and
// the hook's emits under Socket.mu so that no concurrent Emit overtakes
// them; Session.Send never blocks and never calls back (an overflowing
// session is closed on another goroutine), so it cannot come back for
// Socket.mu. The engineio session's recvMu is held around OnMessage, so
// event handlers of one connection run one at a time.
package socketio

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/parley-chat/parley/engineio"
)

// Disconnect reasons passed to Socket.OnDisconnect callbacks.
const (
	ReasonClientDisconnect = "client namespace disconnect"
	ReasonServerDisconnect = "server namespace disconnect"
	ReasonParseError       = "parse error"
)

// DefaultConnectTimeout is how long a connection may stay without joining
// any namespace before it is closed.
const DefaultConnectTimeout = 45 * time.Second

// Options configures a Server.
type Options struct {
	// EngineIO configures the underlying Engine.IO server; its OnSession
	// is called before the Socket.IO layer takes the session over.
	EngineIO engineio.Options
	// ConnectTimeout closes connections that join no namespace in time.
	ConnectTimeout time.Duration
}

// Server is a Socket.IO endpoint; it implements http.Handler.
type Server struct {
	opts   Options
	engine *engineio.Server

	mu         sync.Mutex
	namespaces map[string]*Namespace
}

// NewServer returns a Server; namespaces are declared with Of.
func NewServer(opts Options) *Server {
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	s := &Server{opts: opts, namespaces: make(map[string]*Namespace)}
	eo := opts.EngineIO
	userHook := eo.OnSession
	eo.OnSession = func(sess *engineio.Session) {
		if userHook != nil {
			userHook(sess)
		}
		s.attach(sess)
	}
	s.engine = engineio.NewServer(eo)
	return s
}

// ServeHTTP serves the Socket.IO endpoint (mount it at /socket.io/).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// Engine returns the underlying Engine.IO server.
func (s *Server) Engine() *engineio.Server { return s.engine }

// Close closes every connection.
func (s *Server) Close() { s.engine.Close() }

// Of returns the namespace called name ("/" is the default one), creating it
// on first use. Clients may only connect to namespaces created this way.
func (s *Server) Of(name string) *Namespace {
	if name == "" {
		name = "/"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.namespaces[name]
	if n == nil {
		n = &Namespace{name: name}
		s.namespaces[name] = n
	}
	return n
}

func (s *Server) namespace(name string) *Namespace {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.namespaces[name]
}

// EventHandler handles one event. ack is nil when the client asked for no
// acknowledgement; otherwise calling it (once) answers the client.
type EventHandler func(sock *Socket, args Args, ack AckFunc)

// AckFunc answers an event's acknowledgement; []byte arguments are sent as
// binary attachments. Only the first call sends anything.
type AckFunc func(args ...any) error

// Namespace is a Socket.IO namespace: its connect hook and shared event
// handlers. Configure it before serving.
type Namespace struct {
	name string

	mu        sync.RWMutex
	onConnect func(sock *Socket, auth json.RawMessage) error
	handlers  map[string]EventHandler
	unknown   func(sock *Socket, event string, args Args, ack AckFunc)
}

// OnUnknown sets the handler of events that have no handler of their own,
// so that a client asking for an ack still gets an answer.
func (n *Namespace) OnUnknown(f func(sock *Socket, event string, args Args, ack AckFunc)) {
	n.mu.Lock()
	n.unknown = f
	n.mu.Unlock()
}

// Name returns the namespace's name, such as "/" or "/custom".
func (n *Namespace) Name() string { return n.name }

// OnConnect sets the hook run for every connection to the namespace, with
// the handshake auth object ({} when none was sent). Returning an error
// refuses it with CONNECT_ERROR {"message": err.Error()}. Emits made from
// the hook are delivered after the CONNECT answer.
func (n *Namespace) OnConnect(f func(sock *Socket, auth json.RawMessage) error) {
	n.mu.Lock()
	n.onConnect = f
	n.mu.Unlock()
}

// On sets the handler of event for every socket of the namespace. Sharing
// handlers here, rather than per socket, keeps idle sockets small.
func (n *Namespace) On(event string, h EventHandler) {
	n.mu.Lock()
	if n.handlers == nil {
		n.handlers = make(map[string]EventHandler)
	}
	n.handlers[event] = h
	n.mu.Unlock()
}

func (n *Namespace) handler(event string) EventHandler {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if h := n.handlers[event]; h != nil {
		return h
	}
	if f := n.unknown; f != nil {
		return func(sock *Socket, args Args, ack AckFunc) { f(sock, event, args, ack) }
	}
	return nil
}

// Prepared is an event encoded once, to be sent to many sockets of one
// namespace with Socket.SendPrepared.
type Prepared struct {
	nsp    string
	frames []engineio.Frame
}

// PrepareEvent encodes event with args for namespace nsp; []byte args become
// binary attachments, json.RawMessage args are inserted as they are.
func PrepareEvent(nsp, event string, args ...any) (*Prepared, error) {
	if nsp == "" {
		nsp = "/"
	}
	frames, err := encodeEvent(nsp, event, args, 0, false)
	if err != nil {
		return nil, err
	}
	return &Prepared{nsp: nsp, frames: frames}, nil
}

// MarkBulk marks p's frames as a fan-out's (wsock.Message.Bulk): a busy
// WebSocket may hold them until its next write. Call it before sending p.
func (p *Prepared) MarkBulk() {
	for i := range p.frames {
		p.frames[i].Bulk = true
	}
}

// Frames returns the prepared Engine.IO frames (read-only).
func (p *Prepared) Frames() []engineio.Frame { return p.frames }

func encodeEvent(nsp, event string, args []any, id int64, hasID bool) ([]engineio.Frame, error) {
	name, err := json.Marshal(event)
	if err != nil {
		return nil, err
	}
	return encodePacket(Event, nsp, name, args, id, hasID)
}

// encodePacket builds the Engine.IO frames of an event or ack: the text
// packet ("4" + Socket.IO packet) followed by its binary attachments.
func encodePacket(t PacketType, nsp string, prefix []byte, args []any, id int64, hasID bool) ([]engineio.Frame, error) {
	body, atts, err := encodeArgs(nil, prefix, args)
	if err != nil {
		return nil, err
	}
	if len(atts) > 0 {
		t += BinaryEvent - Event // EVENT→BINARY_EVENT, ACK→BINARY_ACK
	}
	var hdr [48]byte
	h := appendHeader(append(hdr[:0], '4'), t, len(atts), nsp, id, hasID)
	f := engineio.NewTextFrame(len(h) + len(body))
	copy(f.Data[copy(f.Data, h):], body)
	frames := make([]engineio.Frame, 0, 1+len(atts))
	frames = append(frames, f)
	for _, a := range atts {
		frames = append(frames, engineio.BinaryMessage(a))
	}
	return frames, nil
}

func controlPacket(t PacketType, nsp string, payload []byte) engineio.Frame {
	var hdr [48]byte
	h := appendHeader(append(hdr[:0], '4'), t, 0, nsp, 0, false)
	f := engineio.NewTextFrame(len(h) + len(payload))
	copy(f.Data[copy(f.Data, h):], payload)
	return f
}

// conn is the Socket.IO state of one Engine.IO session.
type conn struct {
	srv  *Server
	sess *engineio.Session

	mu           sync.Mutex
	sockets      []*Socket // usually one; a slice is smaller than a map
	everJoined   bool
	closed       bool
	closeReason  string
	partial      *Packet  // a binary packet waiting for attachments
	parts        [][]byte // its attachments so far
	connectTimer *time.Timer
}

func (s *Server) attach(sess *engineio.Session) {
	c := &conn{srv: s, sess: sess}
	sess.OnMessage(c.onMessage)
	sess.OnClose(c.onClose)
	t := time.AfterFunc(s.opts.ConnectTimeout, func() {
		c.mu.Lock()
		idle := !c.everJoined
		c.mu.Unlock()
		if idle {
			sess.Close()
		}
	})
	c.mu.Lock()
	c.connectTimer = t
	c.mu.Unlock()
}

// stopConnectTimer stops the connect timeout and lets go of the timer (and
// its closure), which an idle connection would otherwise keep for life.
func (c *conn) stopConnectTimer() {
	c.mu.Lock()
	t := c.connectTimer
	c.connectTimer = nil
	c.mu.Unlock()
	if t != nil {
		t.Stop()
	}
}

func (c *conn) invalid() {
	c.mu.Lock()
	if c.closeReason == "" {
		c.closeReason = ReasonParseError
	}
	c.mu.Unlock()
	c.sess.Close()
}

func (c *conn) onMessage(data []byte, binary bool) {
	if binary {
		c.mu.Lock()
		if c.partial == nil {
			c.mu.Unlock()
			c.invalid()
			return
		}
		c.parts = append(c.parts, data)
		if len(c.parts) < c.partial.Attachments {
			c.mu.Unlock()
			return
		}
		p, atts := *c.partial, c.parts
		c.partial, c.parts = nil, nil
		c.mu.Unlock()
		c.dispatch(p, atts)
		return
	}
	p, err := DecodePacket(data)
	if err != nil {
		c.invalid()
		return
	}
	if p.Attachments > 0 {
		// Attachments are buffered until the last one arrives, so only a
		// socket connected to the namespace may announce them: before
		// CONNECT nobody may make the server hold megabytes for them.
		if sock := c.socket(p.Namespace); sock == nil || !sock.isConnected() {
			c.invalid()
			return
		}
	}
	c.mu.Lock()
	if c.partial != nil {
		c.mu.Unlock()
		c.invalid()
		return
	}
	if p.Attachments > 0 {
		if !checkPlaceholders(p.Data, p.Attachments) {
			c.mu.Unlock()
			c.invalid()
			return
		}
		c.partial = &p
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.dispatch(p, nil)
}

func (c *conn) socket(nsp string) *Socket {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.sockets {
		if s.nsp.name == nsp {
			return s
		}
	}
	return nil
}

func (c *conn) remove(sock *Socket) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.sockets {
		if s == sock {
			c.sockets = append(c.sockets[:i], c.sockets[i+1:]...)
			return
		}
	}
}

func (c *conn) dispatch(p Packet, atts [][]byte) {
	switch p.Type {
	case Connect:
		c.connect(p)
	case Disconnect:
		if sock := c.socket(p.Namespace); sock != nil {
			sock.disconnected(ReasonClientDisconnect, false)
		}
	case Event, BinaryEvent:
		if sock := c.socket(p.Namespace); sock != nil && sock.isConnected() {
			sock.onEvent(p, atts)
		}
	case Ack, BinaryAck:
		if sock := c.socket(p.Namespace); sock != nil {
			sock.onAck(p, atts)
		}
	default: // CONNECT_ERROR only goes server → client
		c.invalid()
	}
}

func (c *conn) connect(p Packet) {
	nsp := c.srv.namespace(p.Namespace)
	if nsp == nil {
		c.sess.Send(controlPacket(ConnectError, p.Namespace, []byte(`{"message":"Invalid namespace"}`)))
		return
	}
	auth := json.RawMessage(`{}`)
	if len(p.Data) > 0 {
		if p.Data[0] != '{' {
			c.sess.Send(controlPacket(ConnectError, p.Namespace, []byte(`{"message":"Invalid auth payload"}`)))
			return
		}
		auth = p.Data
	}
	if c.socket(p.Namespace) != nil {
		return // already connected: a duplicate CONNECT changes nothing
	}
	sock := &Socket{conn: c, nsp: nsp, id: engineio.NewID()}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.sockets = append(c.sockets, sock)
	c.mu.Unlock()

	nsp.mu.RLock()
	hook := nsp.onConnect
	nsp.mu.RUnlock()
	if hook != nil {
		if err := hook(sock, auth); err != nil {
			c.remove(sock)
			msg, _ := json.Marshal(struct {
				Message string `json:"message"`
			}{err.Error()})
			c.sess.Send(controlPacket(ConnectError, p.Namespace, msg))
			return
		}
	}
	c.mu.Lock()
	c.everJoined = true
	c.mu.Unlock()
	c.stopConnectTimer()
	c.sess.Established()
	sock.markConnected()
}

func (c *conn) onClose(reason string) {
	c.mu.Lock()
	c.closed = true
	if c.closeReason != "" {
		reason = c.closeReason
	}
	socks := c.sockets
	c.sockets = nil
	c.mu.Unlock()
	c.stopConnectTimer()
	for _, s := range socks {
		s.disconnected(reason, false)
	}
}

// errors returned by Socket methods.
var (
	// ErrDisconnected is returned when the socket is no longer connected.
	ErrDisconnected = errors.New("socketio: socket disconnected")
	// ErrAckTimeout is passed to an ack callback when no answer came in time.
	ErrAckTimeout = errors.New("socketio: ack timeout")
	// ErrAckUsed is returned by an AckFunc called more than once.
	ErrAckUsed = errors.New("socketio: ack already sent")
	// ErrQueueFull is returned when the connection's queue overflowed (the
	// connection is then closed).
	ErrQueueFull = errors.New("socketio: outgoing queue full")
)
