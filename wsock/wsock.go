// Package wsock is a WebSocket connection with a bounded, non-blocking
// outgoing queue and a small idle footprint, built on github.com/lxzan/gws.
//
// Why gws: it drops the hijacked net/http bufio buffers and reads through a
// pooled reader whose size we choose (1 KiB here), so an idle connection is
// one read goroutine plus small structs. coder/websocket keeps the 4 KiB +
// 4 KiB hijacked bufio buffers for the connection's life and needs a
// caller-owned writer goroutine; it was ruled out on that design basis, not
// measured side by side.
//
// gws reads; wsock writes. gws writes each message with its own write(2)
// and frames it again for every connection, which made write(2) 60 % of
// the server's CPU in a fan-out to 2,000 sockets. So each Conn keeps its own
// bounded queue of frames already encoded (a Message built by NewMessage
// is framed once and the same bytes are queued on every connection), and a
// writer goroutine, started only while there is something to write, takes
// everything queued and writes it with one write(2). Control frames (ping,
// pong, close) go through the same queue, so nothing interleaves and a
// close frame always follows what was queued before it. The only frames
// gws itself still writes are the close frames of its read loop (a
// protocol error, or the answer to the peer's close), each in one Write
// call, which a net.Conn never interleaves with another. Frames are written
// uncompressed: the upgrader leaves permessage-deflate off (gws's default),
// so no extension is ever negotiated.
package wsock

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
)

// MessageType says whether a message is UTF-8 text or binary.
type MessageType uint8

const (
	// Text is a text (opcode 1) message.
	Text MessageType = 1
	// Binary is a binary (opcode 2) message.
	Binary MessageType = 2
)

// Default values used when an Options field is zero.
const (
	DefaultReadLimit    = 1 << 20
	DefaultQueueSize    = 256
	DefaultWriteTimeout = 10 * time.Second
	// readBufferSize is small on purpose: it stays allocated for the whole
	// life of a connection, and bigger frames are read straight into the
	// message buffer anyway.
	readBufferSize = 1024
)

// ErrOrigin is returned by Upgrade when CheckOrigin refuses the request.
var ErrOrigin = errors.New("wsock: origin not allowed")

// ErrQueueFull is the error passed to OnClose when a connection was closed
// because its outgoing queue overflowed, or because queuing more would have
// gone over the shared Budget.
var ErrQueueFull = errors.New("wsock: outgoing queue full")

// Budget bounds the bytes queued for writing across many connections, so
// that many slow readers together cannot hold more than a fixed amount of
// memory. A connection that would go over it is closed, like one whose own
// queue is full. Bytes shared by several queues (one encoded event fanned
// out) are counted once per queue. A nil *Budget is unlimited. It is safe
// for concurrent use.
type Budget struct {
	limit int64
	used  atomic.Int64
}

// NewBudget returns a budget of limit bytes; limit <= 0 means unlimited
// (nil).
func NewBudget(limit int64) *Budget {
	if limit <= 0 {
		return nil
	}
	return &Budget{limit: limit}
}

// Take reserves n bytes and reports whether they fit.
func (b *Budget) Take(n int) bool {
	if b == nil || n == 0 {
		return true
	}
	if b.used.Add(int64(n)) > b.limit {
		b.used.Add(-int64(n))
		return false
	}
	return true
}

// Give returns n bytes taken earlier.
func (b *Budget) Give(n int) {
	if b != nil && n != 0 {
		b.used.Add(-int64(n))
	}
}

// Used is the number of bytes queued now.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// Handler receives the events of one connection. Its methods are called from
// the connection's read goroutine, one at a time.
type Handler interface {
	// OnMessage receives one complete message; data is only valid during
	// the call (the buffer is recycled), so copy what you keep.
	OnMessage(c *Conn, t MessageType, data []byte)
	// OnClose is called exactly once, after the connection is closed.
	OnClose(c *Conn, err error)
}

// Options configures an Upgrader. Zero values mean the defaults above.
type Options struct {
	// ReadLimit is the largest message accepted; a bigger one closes the
	// connection with status 1009.
	ReadLimit int
	// QueueSize bounds the outgoing queue, in messages. A connection whose
	// queue is full is closed, so a client that stops reading never slows
	// down senders.
	QueueSize int
	// WriteTimeout bounds each write of a batch of queued frames, so a
	// stuck peer is dropped.
	WriteTimeout time.Duration
	// PingInterval is how often the server pings an idle peer; zero turns
	// heartbeats off. A peer that sends nothing at all (no message, ping
	// or pong) for PingInterval+PingTimeout is closed, so a frozen client
	// does not stay connected (and online) forever.
	PingInterval time.Duration
	// PingTimeout is how long a pong may take after a ping; default 20s
	// when PingInterval is set.
	PingTimeout time.Duration
	// Budget, when not nil, is shared by every connection of the upgrader
	// (and may be shared with other queues): see Budget.
	Budget *Budget
	// Coalescer, when not nil, holds busy connections' writes apart under
	// heavy fan-out (see Coalescer); it may be shared by several upgraders.
	Coalescer *Coalescer
	// CheckOrigin decides whether a request with an Origin header may
	// upgrade. Nil means SameOrigin.
	CheckOrigin func(r *http.Request) bool
	// OnMessage and OnClose are used by the package-level Upgrade function
	// (a Handler passed to Upgrader.Upgrade takes precedence).
	OnMessage func(c *Conn, t MessageType, data []byte)
	OnClose   func(c *Conn, err error)
}

// SameOrigin reports whether r carries no Origin header (non-browser
// clients send none) or an Origin whose host equals the request's Host.
func SameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// Upgrader turns HTTP requests into connections; it is safe for concurrent
// use and should be shared, because it owns the pool of read buffers.
type Upgrader struct {
	opts     Options
	upgrader *gws.Upgrader
}

// NewUpgrader returns an Upgrader with opts, defaults filled in.
func NewUpgrader(opts Options) *Upgrader {
	if opts.ReadLimit <= 0 {
		opts.ReadLimit = DefaultReadLimit
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.CheckOrigin == nil {
		opts.CheckOrigin = SameOrigin
	}
	if opts.PingInterval > 0 && opts.PingTimeout <= 0 {
		opts.PingTimeout = 20 * time.Second
	}
	u := &Upgrader{opts: opts}
	u.upgrader = gws.NewUpgrader(eventBridge{}, &gws.ServerOption{
		ReadMaxPayloadSize: opts.ReadLimit,
		ReadBufferSize:     readBufferSize,
		HandshakeTimeout:   opts.WriteTimeout,
		// gws allocates a locked map per connection by default; one
		// pointer slot to our Conn is all we need.
		NewSession: func() gws.SessionStorage { return &connSlot{} },
		// Origin is checked before hijacking so the refusal is a clean
		// HTTP 403 rather than a dropped connection.
	})
	return u
}

// Upgrade completes the WebSocket handshake. It answers 403 and returns
// ErrOrigin when the origin is refused, and a 400 for a malformed handshake.
// The returned connection does not read until Start is called, so the
// caller can finish its own bookkeeping first. h may be nil to use the
// Options callbacks.
func (u *Upgrader) Upgrade(w http.ResponseWriter, r *http.Request, h Handler) (*Conn, error) {
	if !u.opts.CheckOrigin(r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return nil, ErrOrigin
	}
	if h == nil {
		h = funcHandler{onMessage: u.opts.OnMessage, onClose: u.opts.OnClose}
	}
	ws, err := u.upgrader.Upgrade(w, r)
	if err != nil {
		return nil, err
	}
	c := &Conn{ws: ws, h: h, u: u}
	ws.Session().Store("", c)
	return c, nil
}

// Conn is one server-side WebSocket connection. Send, SendMessages, Close
// and CloseNow are safe for concurrent use.
type Conn struct {
	ws     *gws.Conn
	h      Handler
	u      *Upgrader
	closed atomic.Bool  // set once by CloseNow/overflow/write error/end of reading
	reason atomic.Value // error that made us close, for OnClose
	// heartbeat pings the peer every PingInterval; it is a runtime timer,
	// not a goroutine, so an idle connection costs no extra stack.
	heartbeat *time.Timer

	// mu guards the outgoing queue (writer.go). It is a leaf: callers may
	// hold their own locks when they send (engineio's Session.mu,
	// socketio's Socket.mu), and nothing else is taken, nothing written
	// to the network and no callback run while it is held.
	mu          sync.Mutex
	queue       *[][]byte // frames waiting for the writer; nil while idle
	pending     int       // frames queued or being written
	queuedBytes int       // bytes of queue taken from the Budget
	writing     bool      // the writer goroutine runs
	closing     bool      // Close was called: no more frames, then a close frame
	closeSent   bool      // the writer wrote the close frame
	lastWrite   int64     // UnixNano of the last write, kept only with a Coalescer
}

// Start begins reading in a new goroutine; call it exactly once. The HTTP
// handler can return right away, which lets net/http free its buffers.
func (c *Conn) Start() {
	if c.u.opts.PingInterval > 0 && !c.closed.Load() {
		c.alive()
		// Armed only after the field is set: ping reads it.
		c.heartbeat = time.AfterFunc(time.Hour, c.ping)
		c.heartbeat.Reset(c.u.opts.PingInterval)
	}
	go c.ws.ReadLoop()
}

// alive moves the read deadline forward: the peer showed it is there.
// Called from the read goroutine (and from Start before it runs).
func (c *Conn) alive() {
	if c.u.opts.PingInterval > 0 {
		_ = c.ws.SetReadDeadline(time.Now().Add(c.u.opts.PingInterval + c.u.opts.PingTimeout))
	}
}

// ping queues a WebSocket ping behind pending messages and re-arms the
// timer. It runs on the timer's goroutine.
func (c *Conn) ping() {
	if c.enqueue(0, pingFrame) {
		c.heartbeat.Reset(c.u.opts.PingInterval)
	}
}

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// Send enqueues data as one message and never blocks. data is not modified
// and may be shared by many connections, but it is framed (copied) for this
// one: to send the same bytes to many connections, build a Message once with
// NewMessage and use SendMessages. It returns false when the connection is
// closed or its queue was full (the connection is then closed).
func (c *Conn) Send(t MessageType, data []byte) bool {
	return c.SendMessages(Message{Data: data, Binary: t == Binary})
}

// SendMessages enqueues messages, kept together and in order, and never
// blocks; each counts as one message against QueueSize, and their payloads
// against the Budget. Messages made by NewMessage are queued as they are (no
// copy, no allocation); others are framed first. It returns false when the
// connection is closed or its queue was full (the connection is then
// closed).
func (c *Conn) SendMessages(ms ...Message) bool {
	if c.closed.Load() {
		return false
	}
	if len(ms) == 0 {
		return true
	}
	size := 0
	encoded := true
	for i := range ms {
		size += len(ms[i].Data)
		encoded = encoded && ms[i].wire != nil
	}
	if encoded && len(ms) == 1 {
		return c.enqueue(size, ms[0].wire)
	}
	frames := make([][]byte, len(ms))
	for i := range ms {
		frames[i] = ms[i].frame()
	}
	return c.enqueue(size, frames...)
}

// Close sends a normal close frame after the messages already queued, then
// closes the connection. Later sends are refused. It is idempotent.
func (c *Conn) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.closed.Load() {
		return
	}
	c.closing = true
	c.startWriterLocked()
}

// CloseNow closes the network connection at once, dropping queued messages.
func (c *Conn) CloseNow() { c.abort(nil) }

func (c *Conn) abort(err error) {
	if c.closed.Swap(true) {
		return
	}
	if err != nil {
		c.reason.Store(err)
	}
	// Closing the socket unblocks a writer stuck on a peer that does not
	// read (it then drops the queue), and makes the read loop return,
	// which calls OnClose.
	_ = c.ws.NetConn().Close()
}

// eventBridge adapts gws callbacks to Handler; it is stateless so one value
// serves every connection.
type eventBridge struct{}

func connOf(ws *gws.Conn) *Conn {
	v, _ := ws.Session().Load("")
	c, _ := v.(*Conn)
	return c
}

func (eventBridge) OnOpen(*gws.Conn) {}

func (eventBridge) OnClose(ws *gws.Conn, err error) {
	c := connOf(ws)
	if c == nil {
		return
	}
	c.closed.Store(true)
	if c.heartbeat != nil {
		c.heartbeat.Stop()
	}
	if r, ok := c.reason.Load().(error); ok {
		err = r
	}
	// Anything still queued is dropped by the writer, or now if none runs.
	c.mu.Lock()
	if !c.writing {
		c.dropQueueLocked()
	}
	c.mu.Unlock()
	c.h.OnClose(c, err)
}

func (eventBridge) OnPing(ws *gws.Conn, payload []byte) {
	c := connOf(ws)
	if c == nil {
		return
	}
	c.alive()
	// The pong goes through the queue, behind what is queued: a peer that
	// pings without reading fills the queue like one that only reads
	// nothing. gws caps a control frame's payload at 125 bytes.
	c.enqueue(0, controlFrame(opPong, payload))
}

func (eventBridge) OnPong(ws *gws.Conn, _ []byte) {
	if c := connOf(ws); c != nil {
		c.alive()
	}
}

func (eventBridge) OnMessage(ws *gws.Conn, m *gws.Message) {
	defer m.Close()
	c := connOf(ws)
	if c == nil {
		return
	}
	c.alive()
	t := Text
	if m.Opcode == gws.OpcodeBinary {
		t = Binary
	}
	c.h.OnMessage(c, t, m.Bytes())
}

type funcHandler struct {
	onMessage func(c *Conn, t MessageType, data []byte)
	onClose   func(c *Conn, err error)
}

func (f funcHandler) OnMessage(c *Conn, t MessageType, data []byte) {
	if f.onMessage != nil {
		f.onMessage(c, t, data)
	}
}

func (f funcHandler) OnClose(c *Conn, err error) {
	if f.onClose != nil {
		f.onClose(c, err)
	}
}

// connSlot is the gws SessionStorage of a connection: it holds only the Conn
// wrapping it. It is written once before reading starts, so it needs no lock.
type connSlot struct{ c *Conn }

func (s *connSlot) Len() int { return 1 }

func (s *connSlot) Load(string) (any, bool) { return s.c, s.c != nil }

func (s *connSlot) Delete(string) {}

func (s *connSlot) Store(_ string, v any) { s.c, _ = v.(*Conn) }

func (s *connSlot) Range(f func(string, any) bool) { f("", s.c) }
