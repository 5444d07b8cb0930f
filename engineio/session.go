package engineio

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chat/parley/wsock"
)

// Close reasons passed to a session's OnClose callback.
const (
	ReasonTransportClose = "transport close"
	ReasonTransportError = "transport error"
	ReasonPingTimeout    = "ping timeout"
	ReasonParseError     = "parse error"
	ReasonForcedClose    = "forced close"
)

var (
	pingFrame  = controlFrame(PacketPing, "")
	noopFrame  = controlFrame(PacketNoop, "")
	closeFrame = controlFrame(PacketClose, "")
)

// Session is one Engine.IO client. Its methods are safe for concurrent use.
type Session struct {
	srv     *Server
	id      string
	addr    string                       // client IP, for the pending caps
	pending bool                         // counted as not yet established; guarded by srv.mu
	req     atomic.Pointer[http.Request] // nil once released

	// Set by OnSession before any packet is received; read without lock.
	onMessage func(data []byte, binary bool)
	onClose   func(reason string)

	// recvMu serialises packet delivery of concurrent polling POSTs.
	recvMu sync.Mutex

	// open is ws while the session is open on WebSocket, set once what
	// was queued before it went to ws: Send then needs no lock.
	open atomic.Pointer[wsock.Conn]

	mu           sync.Mutex
	closed       bool
	isWS         bool        // the session's transport is WebSocket
	ws           *wsock.Conn // when isWS
	probe        *wsock.Conn // a WebSocket being upgraded to
	upgrading    bool        // probe answered, waiting for "5"
	queue        []Frame     // polling only
	queuedBytes  int         // bytes of queue taken from the server's Budget
	polling      bool        // a GET is waiting
	posting      bool        // a POST is being handled
	awaitingPong bool
	handling     int  // message packets being handled (see onTimer)
	pongDeferred bool // the pong deadline passed while handling: see onTimer
	overflowed   bool // the queue overflowed; close is under way
	timer        *time.Timer
	wake         chan struct{} // polling only, capacity 1
	done         chan struct{} // polling only, closed on close
}

// ID returns the Engine.IO session id.
func (s *Session) ID() string { return s.id }

// Request returns the handshake request (headers, URL and query, remote
// address); its body and context are detached from the HTTP connection.
// It returns nil after ReleaseRequest.
func (s *Session) Request() *http.Request { return s.req.Load() }

// ReleaseRequest drops the handshake request. A parsed request (headers,
// URL, query) costs more than 1 KiB, an eighth of what an idle WebSocket
// session costs in all, so an application that has read what it needs
// from it (a token, say) should let it go.
func (s *Session) ReleaseRequest() { s.req.Store(nil) }

// Established tells the server the application accepted the session (for
// Socket.IO: a namespace CONNECT was authenticated), so it no longer counts
// against Options.MaxPending and MaxPendingPerAddr. It is idempotent.
func (s *Session) Established() { s.srv.releasePending(s) }

// Transport returns "websocket" or "polling".
func (s *Session) Transport() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isWS {
		return "websocket"
	}
	return "polling"
}

// OnMessage sets the receiver of message packets; data belongs to the
// receiver. Set it from Options.OnSession.
func (s *Session) OnMessage(f func(data []byte, binary bool)) { s.onMessage = f }

// OnClose sets the callback called exactly once when the session closes.
// Set it from Options.OnSession.
func (s *Session) OnClose(f func(reason string)) { s.onClose = f }

// SendText sends one text message; see Send.
func (s *Session) SendText(payload []byte) bool { return s.Send(TextMessage(payload)) }

// Send enqueues frames, kept together and in order, without blocking. It
// returns false if the session is closed or its queue overflowed (the
// session is then closed with ReasonTransportError, on another goroutine:
// Send never runs the OnClose callback itself, so it may be called while
// holding locks that callback takes). Frame bytes are never
// modified, so the same frames can be sent to many sessions.
func (s *Session) Send(frames ...Frame) bool {
	if ws := s.open.Load(); ws != nil {
		// A fan-out sends to many sessions: no lock per delivery. A send
		// racing close may still be queued, as if it came just before.
		return ws.SendMessages(frames...)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	if s.isWS {
		ws := s.ws
		s.mu.Unlock()
		// One call keeps the frames of a packet (text, then attachments)
		// together; false: the read loop's OnClose closes the session.
		return ws.SendMessages(frames...)
	}
	if s.overflowed {
		s.mu.Unlock()
		return false
	}
	size := 0
	for _, f := range frames {
		size += len(f.Data)
	}
	if len(s.queue)+len(frames) > s.srv.opts.QueueSize || !s.srv.opts.Budget.Take(size) {
		// Close on another goroutine: the caller may hold its own locks
		// (a hub's, a socket's), and closing runs the OnClose callback,
		// which may take them again.
		s.overflowed = true
		s.mu.Unlock()
		go s.close(ReasonTransportError, false)
		return false
	}
	s.queuedBytes += size
	s.queue = append(s.queue, frames...)
	s.wakePollLocked()
	s.mu.Unlock()
	return true
}

// Close closes the session from the server side (ReasonForcedClose); a
// polling client receives a close packet if it is waiting.
func (s *Session) Close() { s.close(ReasonForcedClose, true) }

// takeQueueLocked empties the polling queue and gives its bytes back to the
// budget.
func (s *Session) takeQueueLocked() []Frame {
	frames := s.queue
	s.queue = nil
	s.srv.opts.Budget.Give(s.queuedBytes)
	s.queuedBytes = 0
	return frames
}

func (s *Session) wakePollLocked() {
	if s.polling {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (s *Session) close(reason string, sendClose bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.open.Store(nil)
	if s.timer != nil {
		s.timer.Stop()
	}
	// What was queued is dropped; only the close packet (not counted in
	// the budget) may still be handed to a last GET.
	s.takeQueueLocked()
	switch {
	case s.isWS:
	case sendClose:
		s.queue = append(s.queue, closeFrame)
	case reason == ReasonTransportClose && !s.polling:
		// The client closed with a POST. A GET it sent at the same time
		// may reach us a moment later; like the pending GET the reference
		// server would answer, it gets a noop, and only the GET after it
		// an unknown sid.
		s.queue = append(s.queue, noopFrame)
	}
	if s.done != nil {
		close(s.done)
	}
	ws, probe := s.ws, s.probe
	if len(s.queue) > 0 && !s.isWS && !s.polling {
		// No GET is waiting to carry the last packet: keep the session
		// reachable for one more GET so the client learns it was closed
		// rather than seeing an unknown sid.
		time.AfterFunc(s.srv.opts.PingTimeout, func() { s.srv.unregister(s) })
	} else {
		s.srv.unregister(s)
	}
	s.mu.Unlock()
	if ws != nil {
		if reason == ReasonForcedClose || reason == ReasonParseError || reason == ReasonTransportClose {
			ws.Close() // flush what is queued, then a close frame
		} else {
			ws.CloseNow()
		}
	}
	if probe != nil {
		probe.CloseNow()
	}
	s.srv.releasePending(s)
	if s.onClose != nil {
		s.onClose(reason)
	}
}

func (s *Session) startHeartbeat() {
	s.mu.Lock()
	s.timer = time.AfterFunc(s.srv.opts.PingInterval, s.onTimer)
	s.mu.Unlock()
}

// onTimer either sends a ping (and arms the pong deadline) or, when the
// previous ping went unanswered, closes the session. One timer per session
// instead of a goroutine keeps idle sessions cheap.
func (s *Session) onTimer() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.awaitingPong {
		if s.handling > 0 {
			// The pong may be waiting unread behind a message we are
			// still handling (a send waiting for its commit): the wait
			// is ours, not the client's. The deadline starts again when
			// the handler returns (endHandling).
			s.pongDeferred = true
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.close(ReasonPingTimeout, false)
		return
	}
	s.awaitingPong = true
	s.timer.Reset(s.srv.opts.PingTimeout)
	s.mu.Unlock()
	s.Send(pingFrame)
}

func (s *Session) onPong() {
	s.mu.Lock()
	if s.awaitingPong && !s.closed {
		s.awaitingPong = false
		s.timer.Reset(s.srv.opts.PingInterval)
	}
	s.mu.Unlock()
}

// beginHandling and endHandling bracket the application's handling of a
// message packet, during which the transport is not read: a pong deadline
// that passes meanwhile is deferred, and given a whole PingTimeout again
// once reading resumes.
func (s *Session) beginHandling() {
	s.mu.Lock()
	s.handling++
	s.mu.Unlock()
}

func (s *Session) endHandling() {
	s.mu.Lock()
	s.handling--
	if s.handling == 0 && s.pongDeferred {
		s.pongDeferred = false
		if !s.closed && s.awaitingPong {
			s.timer.Reset(s.srv.opts.PingTimeout)
		}
	}
	s.mu.Unlock()
}

// handlePacket processes one packet from the client on the session's
// current transport.
func (s *Session) handlePacket(p Packet) {
	switch p.Type {
	case PacketPong:
		s.onPong()
	case PacketPing:
		s.Send(controlFrame(PacketPong, string(p.Data)))
	case PacketMessage:
		if s.onMessage != nil {
			s.beginHandling()
			s.onMessage(p.Data, p.Binary)
			s.endHandling()
		}
	case PacketClose:
		s.close(ReasonTransportClose, false)
	case PacketNoop:
	default: // open, or upgrade outside of a probe
		s.close(ReasonParseError, false)
	}
}

// poll answers a long-polling GET with the queued packets, waiting for one
// if the queue is empty.
func (s *Session) poll(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.isWS {
		s.mu.Unlock()
		writeError(w, CodeBadRequest)
		return
	}
	if s.polling {
		// Engine.IO allows one pending GET; a second one is a broken or
		// hostile client, so the session ends.
		s.mu.Unlock()
		s.close(ReasonTransportError, true)
		writeError(w, CodeBadRequest)
		return
	}
	if s.closed {
		// A lingering closed session: hand over what is left (the close
		// packet), then forget it.
		frames := s.takeQueueLocked()
		s.mu.Unlock()
		s.srv.unregister(s)
		if len(frames) == 0 {
			writeError(w, CodeUnknownSID)
			return
		}
		writePayload(w, frames)
		return
	}
	select {
	case <-s.wake:
	default:
	}
	// A GET that arrives during an upgrade (after "2probe") is held for at
	// most upgradePollWait, as the reference server does: a client that
	// completes the upgrade meanwhile gets 400, like any GET after the
	// upgrade, and a client that waits for this poll before sending "5"
	// gets a noop.
	if len(s.queue) == 0 || s.upgrading {
		s.polling = true
		var expire <-chan time.Time
		if s.upgrading {
			t := time.NewTimer(upgradePollWait)
			defer t.Stop()
			expire = t.C
		}
		s.mu.Unlock()
		var gone bool
		select {
		case <-s.wake:
		case <-expire:
		case <-s.done:
		case <-r.Context().Done():
			gone = true
		}
		s.mu.Lock()
		s.polling = false
		if gone {
			s.mu.Unlock()
			return // keep the queue for the next GET
		}
		if s.isWS {
			s.mu.Unlock()
			writeError(w, CodeBadRequest)
			return
		}
	}
	frames := s.takeQueueLocked()
	s.mu.Unlock()
	if len(frames) == 0 {
		frames = []Frame{noopFrame}
	}
	writePayload(w, frames)
}

// upgradePollWait is how long a GET that arrives during an upgrade is held
// before it is answered with a noop.
const upgradePollWait = 100 * time.Millisecond

// post delivers the packets of a long-polling POST.
func (s *Session) post(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeError(w, CodeUnknownSID)
		return
	}
	if s.isWS || s.posting {
		s.mu.Unlock()
		if !s.isWS {
			s.close(ReasonTransportError, true)
		}
		writeError(w, CodeBadRequest)
		return
	}
	s.posting = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.posting = false
		s.mu.Unlock()
	}()

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.srv.opts.MaxPayload)))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.close(ReasonTransportError, false)
			http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
			return
		}
		s.close(ReasonTransportError, false)
		writeError(w, CodeBadRequest)
		return
	}
	packets, err := DecodePayload(body)
	if err != nil {
		s.close(ReasonParseError, false)
		writeError(w, CodeBadRequest)
		return
	}
	s.recvMu.Lock()
	for _, p := range packets {
		s.handlePacket(p)
	}
	s.recvMu.Unlock()
	w.Header().Set("Content-Type", "text/html")
	_, _ = w.Write([]byte("ok"))
}

// probeWebSocket accepts a WebSocket for a polling session that wants to
// upgrade; at most one probe at a time, and none once upgraded.
//
// A WebSocket for a session that is closed, already upgraded or already
// probing is accepted and closed at once (as the reference server does),
// rather than refused with an HTTP error, so that the client sees a plain
// close. The upgrade itself runs without s.mu: it writes to the network.
func (s *Session) probeWebSocket(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	busy := s.closed || s.isWS || s.probe != nil
	s.mu.Unlock()
	if busy {
		s.refuseWebSocket(w, r)
		return
	}
	c, err := s.srv.upgrader.Upgrade(w, r, (*wsHandler)(s))
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.closed || s.isWS || s.probe != nil { // lost a race with another probe
		s.mu.Unlock()
		c.Close()
		c.Start()
		return
	}
	s.probe = c
	s.mu.Unlock()
	c.Start()
}

// refuseWebSocket completes the WebSocket handshake and closes the
// connection with a normal close frame.
func (s *Session) refuseWebSocket(w http.ResponseWriter, r *http.Request) {
	c, err := s.srv.upgrader.Upgrade(w, r, nopHandler{})
	if err != nil {
		return
	}
	c.Close()
	c.Start() // reads until the close completes, then lets go
}

type nopHandler struct{}

func (nopHandler) OnMessage(*wsock.Conn, wsock.MessageType, []byte) {}
func (nopHandler) OnClose(*wsock.Conn, error)                       {}

// onProbeMessage runs the upgrade handshake on the probe WebSocket:
// "2probe" → "3probe" (and release the pending GET so the client can pause
// polling), then "5" switches the session to WebSocket.
func (s *Session) onProbeMessage(c *wsock.Conn, t wsock.MessageType, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.probe != c {
		c.CloseNow()
		return
	}
	switch {
	case t == wsock.Text && string(data) == "2probe" && !s.upgrading:
		s.upgrading = true
		c.Send(wsock.Text, []byte("3probe"))
		s.wakePollLocked()
	case t == wsock.Text && string(data) == "5" && s.upgrading:
		s.upgrading = false
		s.probe = nil
		s.isWS = true
		s.ws = c
		c.SendMessages(s.takeQueueLocked()...)
		s.open.Store(c)
		s.wakePollLocked() // the pending GET ends with a noop
	default:
		s.probe = nil
		s.upgrading = false
		s.wakePollLocked() // a GET held during the upgrade goes on polling
		c.CloseNow()
	}
}

// wsHandler is the wsock.Handler view of a Session, for both its upgraded
// WebSocket and a probe.
type wsHandler Session

func (h *wsHandler) OnMessage(c *wsock.Conn, t wsock.MessageType, data []byte) {
	s := (*Session)(h)
	s.mu.Lock()
	current := s.ws == c
	s.mu.Unlock()
	if !current {
		s.onProbeMessage(c, t, data)
		return
	}
	data = bytes.Clone(data) // wsock recycles the buffer
	if t == wsock.Binary {
		s.handlePacket(Packet{Type: PacketMessage, Data: data, Binary: true})
		return
	}
	p, err := DecodePacket(data)
	if err != nil {
		s.close(ReasonParseError, false)
		return
	}
	s.handlePacket(p)
}

func (h *wsHandler) OnClose(c *wsock.Conn, err error) {
	s := (*Session)(h)
	s.mu.Lock()
	if s.probe == c {
		s.probe = nil
		s.upgrading = false
		s.wakePollLocked()
		s.mu.Unlock()
		return
	}
	current := s.ws == c
	s.mu.Unlock()
	if current {
		reason := ReasonTransportClose
		if errors.Is(err, wsock.ErrQueueFull) {
			reason = ReasonTransportError
		}
		s.close(reason, false)
	}
}
