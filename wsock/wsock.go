// Package wsock is a WebSocket server connection with a bounded,
// non-blocking outgoing queue and an idle footprint of a few hundred bytes:
// an idle connection owns no goroutine and no buffer.
//
// Reading (read.go, poll_linux.go): on Linux a connection's socket is
// watched by one epoll instance per Upgrader (EPOLLONESHOT, level
// triggered) instead of by a goroutine blocked in read(2). When bytes
// arrive, a goroutine is started for that connection only: it reads what is
// there into a pooled buffer, parses the frames (frames.go), calls the
// Handler, re-arms the socket and exits. A frame split across reads is kept
// in a buffer sized for it only until it is complete. One goroutine per
// ready socket, rather than a fixed pool, because handlers call the store
// and may block: a pool would let one slow handler hold up other sockets.
// Connections whose net.Conn exposes no file descriptor (TLS, wrappers),
// and every connection on other systems, are read by a goroutine of their
// own, as before. The handshake is ours too (handshake.go), so nothing of
// net/http's or a library's per-connection buffers survives it.
//
// Writing (writer.go): each Conn keeps its own bounded queue of frames
// already encoded (a Message built by NewMessage is framed once and the
// same bytes are queued on every connection), and a writer goroutine,
// started only while there is something to write, takes everything queued
// and writes it with one write(2). Control frames (ping, pong, close) go
// through the same queue, so nothing interleaves and a close frame always
// follows what was queued before it. No extension is negotiated, so frames
// are never compressed.
package wsock

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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
	// readBufferSize is the size of the pooled buffers reads go into;
	// a connection holds one only while it reads.
	readBufferSize = 16 << 10
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

// Handler receives the events of one connection. Its methods are called
// one at a time, each after the previous one returned (from whichever
// goroutine reads the connection at that moment).
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
	// WriteTimeout bounds the writes of queued frames, so a stuck peer is
	// dropped: the deadline is moved only once less than half of it is
	// left (see writeBatch), so a write that blocks fails between
	// WriteTimeout/2 and WriteTimeout after it began.
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
// use and should be shared, because it owns the poller that watches its
// idle connections.
type Upgrader struct {
	opts  Options
	epoch time.Time // heartbeat times are durations since it (monotonic)
	polls pollers
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
	return &Upgrader{opts: opts, epoch: time.Now()}
}

// Conn is one server-side WebSocket connection. Send, SendMessages, Close
// and CloseNow are safe for concurrent use.
//
// Lock order: readMu, then mu. mu is a leaf (see below); readMu is held by
// whoever reads the connection, while it calls the Handler.
type Conn struct {
	nc     net.Conn
	h      Handler
	u      *Upgrader
	closed atomic.Bool           // set once by CloseNow/overflow/write error/end of reading
	reason atomic.Pointer[error] // first error that made us close, for OnClose
	// heartbeat pings the peer every PingInterval and closes it when it
	// has been silent too long; it is a runtime timer, not a goroutine,
	// so an idle connection costs no extra stack.
	heartbeat *time.Timer
	seen      atomic.Int64 // when the peer last sent a frame, since u.epoch
	handling  atomic.Bool  // the Handler has a message: the connection is not read
	nextPing  atomic.Int64 // when the next ping is due, since u.epoch

	// readMu is held by the goroutine reading the connection: with no
	// goroutine of its own, successive readers are ordered by it. It
	// guards rd, early and poll.
	readMu sync.Mutex
	rd     frameReader
	early  []byte   // bytes read with the handshake, parsed first
	poll   pollConn // the epoll registration (Linux), zero otherwise

	// mu guards the outgoing queue (writer.go). It is a leaf: callers may
	// hold their own locks when they send (engineio's Session.mu,
	// socketio's Socket.mu), and nothing else is taken, nothing written
	// to the network and no callback run while it is held.
	mu          sync.Mutex
	queue       *[][]byte     // frames waiting for the writer; nil while idle
	pending     int           // frames queued or being written
	queuedBytes int           // bytes of queue taken from the Budget
	writing     bool          // the writer goroutine runs
	closing     bool          // Close was called: no more frames, then a close frame
	closeSent   bool          // the writer wrote the close frame
	lastWrite   int64         // UnixNano of the last write, kept only with a Coalescer
	urgent      bool          // a frame that is not Bulk is queued: write without waiting
	wake        chan struct{} // closed to end the writer's Coalescer wait early; nil unless it waits
	closeMsg    []byte        // the close frame to write, when not a normal closure

	writeBy int64 // UnixNano of the write deadline last set; the writer's alone (see writeBatch)
}

// Start begins reading; call it exactly once. On Linux an idle connection
// is then watched by the Upgrader's poller, without a goroutine; elsewhere
// a goroutine reads it. The HTTP handler can return right away, which lets
// net/http free its buffers.
func (c *Conn) Start() {
	if o := &c.u.opts; o.PingInterval > 0 && !c.closed.Load() {
		c.alive()
		c.nextPing.Store(c.seen.Load() + int64(o.PingInterval))
		// Armed only after the field is set: tick reads it.
		c.heartbeat = time.AfterFunc(time.Hour, c.tick)
		c.heartbeat.Reset(o.PingInterval)
	}
	if !c.startPolled() {
		go c.readLoop()
	}
}

// errFrozen is passed to OnClose when the peer sent nothing for
// PingInterval+PingTimeout.
var errFrozen = fmt.Errorf("wsock: no frame from the peer within the ping timeout: %w", os.ErrDeadlineExceeded)

// alive records that the peer showed it is there.
func (c *Conn) alive() {
	if c.u.opts.PingInterval > 0 {
		c.seen.Store(int64(time.Since(c.u.epoch)))
	}
}

// tick queues a WebSocket ping (behind pending messages) when one is due
// and closes a peer silent for PingInterval+PingTimeout, then re-arms the
// timer for whichever comes first. It runs on the timer's goroutine.
func (c *Conn) tick() {
	o := &c.u.opts
	now := time.Since(c.u.epoch)
	deadline := time.Duration(c.seen.Load()) + o.PingInterval + o.PingTimeout
	if now >= deadline {
		if !c.handling.Load() {
			c.abort(errFrozen)
			return
		}
		// The peer's frames may be waiting unread behind a message the
		// Handler still holds (a send waiting for its commit): the
		// silence is ours. The handler's return counts as a frame seen
		// (dispatch); until then, look again a timeout later.
		deadline = now + o.PingTimeout
	}
	next := time.Duration(c.nextPing.Load())
	if now >= next {
		if !c.enqueue(0, false, pingFrame) {
			return
		}
		next = now + o.PingInterval
		c.nextPing.Store(int64(next))
	}
	c.heartbeat.Reset(min(next, deadline) - now)
}

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

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
	encoded, bulk := true, true
	for i := range ms {
		size += len(ms[i].Data)
		encoded = encoded && ms[i].wire != nil
		bulk = bulk && ms[i].Bulk
	}
	if encoded && len(ms) == 1 {
		return c.enqueue(size, bulk, ms[0].wire)
	}
	frames := make([][]byte, len(ms))
	for i := range ms {
		frames[i] = ms[i].frame()
	}
	return c.enqueue(size, bulk, frames...)
}

// Close sends a normal close frame after the messages already queued, then
// closes the connection. Later sends are refused. It is idempotent.
func (c *Conn) Close() { c.closeWith(nil) }

// closeWith is Close with the close frame to write (nil: a normal closure).
func (c *Conn) closeWith(frame []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.closed.Load() {
		return
	}
	c.closing = true
	c.closeMsg = frame
	c.wakeLocked()
	c.startWriterLocked()
}

// CloseNow closes the network connection at once, dropping queued messages.
func (c *Conn) CloseNow() { c.abort(nil) }

// abort marks the connection closed and shuts its socket down: that
// unblocks a writer stuck on a peer that does not read (it then drops the
// queue), and makes the reader see the end of the stream, which calls
// OnClose. The socket is closed, and OnClose called, by the reader only.
func (c *Conn) abort(err error) {
	if c.closed.Swap(true) {
		return
	}
	if err == nil {
		err = net.ErrClosed
	}
	c.setReason(err)
	c.closeSocket()
}

// setReason records err as why the connection closed, unless an earlier
// error was recorded.
func (c *Conn) setReason(err error) { c.reason.CompareAndSwap(nil, &err) }

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
