package wsock

import (
	"encoding/binary"
	"sync"
	"time"
)

// Message is one outgoing message. A Message made by NewMessage carries
// its WebSocket frame, encoded once, so queuing it on many connections (a
// fan-out) neither frames nor allocates per connection. A Message written
// as a literal ({Data, Binary}) is framed when it is queued.
type Message struct {
	// Data is the payload; it must not be modified once the message is
	// queued.
	Data []byte
	// Binary marks a binary (opcode 2) message; otherwise it is text.
	Binary bool
	// Bulk marks a message of a fan-out to many connections (a post to a
	// large channel or group): under a Coalescer it may wait for the
	// connection's next write. Every other message (a reply, a chat's
	// message, a control frame) is written at once, and whatever bulk is
	// queued goes out with it.
	Bulk bool
	// wire is Data with its frame header in front (Data aliases its
	// tail), or nil.
	wire []byte
}

// NewMessage returns a message whose Data has n bytes for the caller to fill
// in before queuing it; its frame header is already written in front of
// them.
func NewMessage(binary bool, n int) Message {
	op := byte(opText)
	if binary {
		op = opBinary
	}
	h := headerLen(n)
	b := make([]byte, h+n)
	putHeader(b, op, n)
	return Message{Data: b[h:], Binary: binary, wire: b}
}

// frame returns the bytes to write for m.
func (m *Message) frame() []byte {
	if m.wire != nil {
		return m.wire
	}
	op := byte(opText)
	if m.Binary {
		op = opBinary
	}
	return controlFrame(op, m.Data)
}

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// headerLen is the length of an unmasked (server) frame header for a
// payload of n bytes.
func headerLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xFFFF:
		return 4
	}
	return 10
}

// putHeader writes the header of a final, unmasked frame at the start of b.
func putHeader(b []byte, op byte, n int) {
	b[0] = 0x80 | op
	switch {
	case n < 126:
		b[1] = byte(n)
	case n <= 0xFFFF:
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
	default:
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
	}
}

// controlFrame returns a frame of op carrying payload (copied).
func controlFrame(op byte, payload []byte) []byte {
	h := headerLen(len(payload))
	b := make([]byte, h+len(payload))
	putHeader(b, op, len(payload))
	copy(b[h:], payload)
	return b
}

var (
	pingFrame  = controlFrame(opPing, nil)
	closeFrame = controlFrame(opClose, []byte{0x03, 0xE8}) // 1000, normal closure
)

// bigFrame is the size from which a frame is written on its own rather than
// copied into the batch buffer.
const bigFrame = 32 << 10

// queues and batches recycle the queue slices and write buffers of busy
// connections, so that an idle connection holds neither and a busy one
// allocates neither per message.
var (
	queues  = sync.Pool{New: func() any { q := make([][]byte, 0, 16); return &q }}
	batches = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}
)

// enqueue queues frames (each counted as one message against QueueSize and,
// with size bytes in all, against the Budget) and starts the writer if it
// is not running; unless bulk, it also ends a Coalescer's wait, so they are
// written at once. It never blocks. It returns false when the connection is
// closed or closing, or when the frames do not fit (the connection is then
// aborted with ErrQueueFull).
func (c *Conn) enqueue(size int, bulk bool, frames ...[]byte) bool {
	c.mu.Lock()
	if c.closing || c.closed.Load() {
		c.mu.Unlock()
		return false
	}
	if c.pending+len(frames) > c.u.opts.QueueSize || !c.u.opts.Budget.Take(size) {
		c.mu.Unlock()
		c.abort(ErrQueueFull)
		return false
	}
	c.pending += len(frames)
	c.queuedBytes += size
	if c.queue == nil {
		c.queue = queues.Get().(*[][]byte)
	}
	*c.queue = append(*c.queue, frames...)
	if !bulk {
		c.urgent = true
		c.wakeLocked()
	}
	c.startWriterLocked()
	c.mu.Unlock()
	return true
}

// wakeLocked ends the writer's Coalescer wait, if it waits.
func (c *Conn) wakeLocked() {
	if c.wake != nil {
		close(c.wake)
		c.wake = nil
	}
}

// startWriterLocked starts the writer goroutine unless it runs already.
func (c *Conn) startWriterLocked() {
	if !c.writing {
		c.writing = true
		c.u.opts.Coalescer.started()
		go c.writeLoop()
	}
}

// writeLoop writes what is queued, one batch per write, until the queue is
// empty; then it returns its buffers to the pools and exits. After a
// Close it writes the close frame behind the last batch and closes the
// connection. If the connection is closed under it, it drops the queue.
// With a Coalescer it may first wait, letting more frames join the batch,
// while everything queued is bulk.
func (c *Conn) writeLoop() {
	co := c.u.opts.Coalescer
	defer co.stopped()
	var spare *[][]byte
	var buf *[]byte
	waited := false
	c.mu.Lock()
	for {
		if c.closed.Load() || c.closeSent {
			c.dropQueueLocked()
			break
		}
		batch := c.queue
		n := 0
		if batch != nil {
			n = len(*batch)
		}
		if n == 0 && !c.closing {
			break
		}
		if !waited && !c.closing && !c.urgent {
			if d := co.wait(c.lastWrite); d > 0 {
				wake := make(chan struct{})
				c.wake = wake
				c.mu.Unlock()
				co.sleep(d, wake)
				c.mu.Lock()
				if c.wake == wake {
					c.wake = nil
				}
				waited = true
				continue // closed meanwhile? more queued: take it all
			}
		}
		waited = false
		c.urgent = false
		c.queue = spare
		spare = nil
		size := c.queuedBytes
		c.queuedBytes = 0
		closeAfter := c.closing // Send refuses new frames once closing
		c.closeSent = closeAfter
		c.mu.Unlock()

		if buf == nil {
			buf = batches.Get().(*[]byte)
		}
		var frames [][]byte
		if batch != nil {
			frames = *batch
		}
		err := c.writeBatch(buf, frames, closeAfter)
		stamp := co.stamp()
		c.u.opts.Budget.Give(size)
		if batch != nil {
			clear(*batch)
			*batch = (*batch)[:0]
			spare = batch
		}
		if err != nil {
			c.abort(err)
		} else if closeAfter {
			c.closeSocket()
		}
		c.mu.Lock()
		c.pending -= n
		c.lastWrite = stamp
	}
	// Idle or dead: keep nothing.
	if c.queue != nil && len(*c.queue) == 0 {
		queues.Put(c.queue)
		c.queue = nil
	}
	c.writing = false
	c.mu.Unlock()
	if spare != nil {
		queues.Put(spare)
	}
	if buf != nil && cap(*buf) <= 256<<10 {
		*buf = (*buf)[:0]
		batches.Put(buf)
	}
}

// dropQueueLocked forgets what is queued on a closed connection and gives
// its bytes back to the budget.
func (c *Conn) dropQueueLocked() {
	if c.queue != nil {
		c.pending -= len(*c.queue)
		clear(*c.queue)
		*c.queue = (*c.queue)[:0]
	}
	c.u.opts.Budget.Give(c.queuedBytes)
	c.queuedBytes = 0
}

// writeClock is time.Now; tests move it.
var writeClock = time.Now

// writeBatch writes frames (and a close frame after them when closeAfter)
// with as few writes as it can: one, unless a frame is bigger than
// bigFrame, which is written on its own instead of being copied.
func (c *Conn) writeBatch(buf *[]byte, frames [][]byte, closeAfter bool) error {
	nc := c.nc
	// The deadline moves only once less than half of WriteTimeout is
	// left: setting it for every batch (a timer update in the poller)
	// was 3.5 % of a fan-out's CPU. A write that blocks therefore fails
	// between WriteTimeout/2 and WriteTimeout after it began. Writers of
	// one Conn run one after another (c.writing, under c.mu), so writeBy
	// needs no lock of its own.
	if now := writeClock(); c.writeBy-now.UnixNano() < int64(c.u.opts.WriteTimeout/2) {
		by := now.Add(c.u.opts.WriteTimeout)
		if err := nc.SetWriteDeadline(by); err != nil {
			return err
		}
		c.writeBy = by.UnixNano()
	}
	b := (*buf)[:0]
	defer func() { *buf = b[:0] }()
	for _, f := range frames {
		if len(f) >= bigFrame {
			if len(b) > 0 {
				if _, err := nc.Write(b); err != nil {
					return err
				}
				b = b[:0]
			}
			if _, err := nc.Write(f); err != nil {
				return err
			}
			continue
		}
		b = append(b, f...)
	}
	if closeAfter {
		if c.closeMsg != nil {
			b = append(b, c.closeMsg...)
		} else {
			b = append(b, closeFrame...)
		}
	}
	if len(b) > 0 {
		if _, err := nc.Write(b); err != nil {
			return err
		}
	}
	return nil
}
