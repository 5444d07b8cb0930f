package socketio

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chat/parley/engineio"
)

// Socket is one client connected to one namespace. Its methods are safe for
// concurrent use.
type Socket struct {
	conn *conn
	nsp  *Namespace
	id   string

	// live is state == stateConnected once the CONNECT answer and the
	// connect hook's emits are queued: send then needs no lock.
	live atomic.Bool

	mu           sync.Mutex
	state        socketState
	early        [][]engineio.Frame // emits made by the connect hook
	data         any
	handlers     map[string]EventHandler // per-socket, allocated on first On
	onDisconnect func(reason string)
	reason       string // why it left, once disconnected
	acks         map[int64]*pendingAck
	nextAck      int64
}

type socketState uint8

const (
	stateConnecting socketState = iota
	stateConnected
	stateDisconnected
)

type pendingAck struct {
	cb    func(Args, error)
	timer *time.Timer
}

// ID returns the socket id sent in the CONNECT answer (not the Engine.IO id).
func (s *Socket) ID() string { return s.id }

// Namespace returns the socket's namespace.
func (s *Socket) Namespace() *Namespace { return s.nsp }

// Request returns the Engine.IO handshake request (headers, query such as
// ?token=, remote address), or nil once ReleaseRequest was called.
func (s *Socket) Request() *http.Request { return s.conn.sess.Request() }

// ReleaseRequest drops the handshake request of the socket's connection
// (for all its namespaces): call it once the connect hooks that need it
// have run, to keep idle connections small.
func (s *Socket) ReleaseRequest() { s.conn.sess.ReleaseRequest() }

// Transport returns "websocket" or "polling".
func (s *Socket) Transport() string { return s.conn.sess.Transport() }

// SetData attaches application data to the socket.
func (s *Socket) SetData(v any) {
	s.mu.Lock()
	s.data = v
	s.mu.Unlock()
}

// Data returns what SetData stored, or nil.
func (s *Socket) Data() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data
}

// On sets a handler of event for this socket only; it takes precedence over
// the namespace's handler.
func (s *Socket) On(event string, h EventHandler) {
	s.mu.Lock()
	if s.handlers == nil {
		s.handlers = make(map[string]EventHandler)
	}
	s.handlers[event] = h
	s.mu.Unlock()
}

// OnDisconnect sets the callback called once when the socket leaves its
// namespace, with the reason (ReasonClientDisconnect, "transport close",
// "ping timeout", ReasonParseError, ...). If the socket already left (its
// connection closed while the connect hook ran), f is called at once, on
// the caller's goroutine, with the reason it left for.
func (s *Socket) OnDisconnect(f func(reason string)) {
	s.mu.Lock()
	if s.state == stateDisconnected {
		reason := s.reason
		s.mu.Unlock()
		f(reason)
		return
	}
	s.onDisconnect = f
	s.mu.Unlock()
}

// Emit sends event with args; []byte args become binary attachments. It
// returns ErrDisconnected or ErrQueueFull when nothing could be queued.
func (s *Socket) Emit(event string, args ...any) error {
	frames, err := encodeEvent(s.nsp.name, event, args, 0, false)
	if err != nil {
		return err
	}
	return s.send(frames)
}

// EmitWithAck sends event and calls cb once with the client's answer, or
// with ErrAckTimeout after timeout, or ErrDisconnected if the socket leaves
// first.
func (s *Socket) EmitWithAck(event string, timeout time.Duration, cb func(Args, error), args ...any) error {
	s.mu.Lock()
	if s.state == stateDisconnected {
		s.mu.Unlock()
		return ErrDisconnected
	}
	s.nextAck++
	id := s.nextAck
	if s.acks == nil {
		s.acks = make(map[int64]*pendingAck)
	}
	pa := &pendingAck{cb: cb}
	s.acks[id] = pa
	pa.timer = time.AfterFunc(timeout, func() {
		if s.takeAck(id) != nil {
			cb(Args{}, ErrAckTimeout)
		}
	})
	s.mu.Unlock()
	frames, err := encodeEvent(s.nsp.name, event, args, id, true)
	if err == nil {
		err = s.send(frames)
	}
	if err != nil && s.takeAck(id) != nil {
		pa.timer.Stop()
	}
	return err
}

func (s *Socket) takeAck(id int64) *pendingAck {
	s.mu.Lock()
	defer s.mu.Unlock()
	pa := s.acks[id]
	delete(s.acks, id)
	return pa
}

// SendPrepared enqueues a prepared event without re-encoding it; it returns
// false if the socket is not connected, belongs to another namespace, or its
// queue overflowed.
func (s *Socket) SendPrepared(p *Prepared) bool {
	if p == nil || p.nsp != s.nsp.name {
		return false
	}
	return s.send(p.frames) == nil
}

// send queues frames, holding them back while the connect hook runs so the
// client sees the CONNECT answer first.
func (s *Socket) send(frames []engineio.Frame) error {
	if s.live.Load() {
		// A fan-out sends to many sockets: no lock per delivery. A send
		// racing Disconnect may still go out, as if it came just before.
		if !s.conn.sess.Send(frames...) {
			return ErrQueueFull
		}
		return nil
	}
	s.mu.Lock()
	switch s.state {
	case stateDisconnected:
		s.mu.Unlock()
		return ErrDisconnected
	case stateConnecting:
		s.early = append(s.early, frames)
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	if !s.conn.sess.Send(frames...) {
		return ErrQueueFull
	}
	return nil
}

func (s *Socket) isConnected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stateConnected
}

// markConnected sends the CONNECT answer, then what the hook emitted.
func (s *Socket) markConnected() {
	s.mu.Lock()
	if s.state != stateConnecting {
		s.mu.Unlock()
		return
	}
	s.state = stateConnected
	early := s.early
	s.early = nil
	// Sent under s.mu so no concurrent Emit can overtake the CONNECT answer.
	s.conn.sess.Send(controlPacket(Connect, s.nsp.name, []byte(`{"sid":"`+s.id+`"}`)))
	for _, f := range early {
		s.conn.sess.Send(f...)
	}
	s.live.Store(true) // after the CONNECT answer: no emit overtakes it
	s.mu.Unlock()
}

// Disconnect makes the socket leave its namespace (the client is told);
// the underlying connection stays open for other namespaces.
func (s *Socket) Disconnect() { s.disconnected(ReasonServerDisconnect, true) }

// CloseConn closes the socket's whole connection (all its namespaces).
func (s *Socket) CloseConn() { s.conn.sess.Close() }

func (s *Socket) disconnected(reason string, notify bool) {
	s.mu.Lock()
	if s.state == stateDisconnected {
		s.mu.Unlock()
		return
	}
	s.state = stateDisconnected
	s.live.Store(false)
	s.reason = reason
	acks := s.acks
	s.acks = nil
	s.early = nil
	cb := s.onDisconnect
	s.mu.Unlock()
	s.conn.remove(s)
	if notify {
		s.conn.sess.Send(controlPacket(Disconnect, s.nsp.name, nil))
	}
	for _, pa := range acks {
		pa.timer.Stop()
		pa.cb(Args{}, ErrDisconnected)
	}
	if cb != nil {
		cb(reason)
	}
}

func (s *Socket) onEvent(p Packet, atts [][]byte) {
	args, ok := splitArgs(p.Data)
	if !ok || len(args) == 0 {
		s.conn.invalid()
		return
	}
	name, ok := eventName(args[0])
	if !ok {
		s.conn.invalid()
		return
	}
	s.mu.Lock()
	h := s.handlers[name]
	s.mu.Unlock()
	if h == nil {
		h = s.nsp.handler(name)
	}
	if h == nil {
		return
	}
	var ack AckFunc
	if p.HasID {
		var once sync.Once
		id := p.ID
		ack = func(args ...any) error {
			err := ErrAckUsed
			once.Do(func() {
				var frames []engineio.Frame
				frames, err = encodePacket(Ack, s.nsp.name, nil, args, id, true)
				if err == nil {
					err = s.send(frames)
				}
			})
			return err
		}
	}
	h(s, Args{JSON: args[1:], Attachments: atts}, ack)
}

func (s *Socket) onAck(p Packet, atts [][]byte) {
	pa := s.takeAck(p.ID)
	if pa == nil {
		return // late or unknown: the timeout already answered
	}
	pa.timer.Stop()
	args, ok := splitArgs(p.Data)
	if !ok {
		s.conn.invalid()
		return
	}
	pa.cb(Args{JSON: args, Attachments: atts}, nil)
}
