package wsock

import (
	"encoding/binary"
	"errors"
	"sync"
	"unicode/utf8"

	"github.com/lxzan/gws"
)

// readBufs recycles the buffers reads go into: a connection takes one only
// while it reads, so idle connections hold none.
var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufferSize); return &b }}

// received parses data read from the peer and hands what it completes to
// the Handler. The caller holds readMu.
func (c *Conn) received(data []byte) {
	err := c.rd.feed(data, c.dispatch)
	var pe *protocolError
	if errors.As(err, &pe) {
		// Fail the connection (RFC 6455 §7.1.7): a close frame with the
		// code, behind what is queued; the reader then only waits for the
		// end of the stream.
		c.setReason(err)
		payload := append(binary.BigEndian.AppendUint16(nil, pe.code), pe.msg...)
		c.closeWith(controlFrame(opClose, payload[:min(len(payload), maxControlFrame)]))
	}
}

// dispatch handles one complete message or control frame (see
// frameReader.feed).
func (c *Conn) dispatch(op byte, p []byte) error {
	if c.closed.Load() {
		return errStopReading
	}
	c.alive()
	switch op {
	case opText:
		// A text message must be UTF-8 (RFC 6455 §8.1); one that is not
		// fails the connection with 1007, before anything reads it.
		if !utf8.Valid(p) {
			return errNotUTF8
		}
		c.handle(Text, p)
	case opBinary:
		c.handle(Binary, p)
	case opPing:
		// The pong goes through the queue, behind what is queued: a peer
		// that pings without reading fills the queue like one that only
		// reads nothing.
		c.enqueue(0, false, controlFrame(opPong, p))
	case opClose:
		c.peerClosed(p)
		return errStopReading
	}
	return nil
}

// handle passes a message to the Handler. The connection is not read
// while the Handler holds it, so the peer's silence is measured from its
// return (see tick): a peer whose pong waited behind a slow handler is not
// taken for a frozen one.
func (c *Conn) handle(t MessageType, p []byte) {
	c.handling.Store(true)
	c.h.OnMessage(c, t, p)
	c.alive()
	c.handling.Store(false)
}

// peerClosed answers the peer's close frame (RFC 6455 §5.5.1) and records
// it, as a *gws.CloseError (what the reader returned before wsock read
// frames itself), for OnClose. The close code answered is the peer's when
// it is one an endpoint may send, 1000 for the other valid codes below
// 3000, 1002 for a malformed frame or a reserved code, and 1007 for a
// reason that is not UTF-8.
func (c *Conn) peerClosed(p []byte) {
	ce := &gws.CloseError{}
	var answer []byte
	switch {
	case len(p) == 1:
		ce.Code = uint16(p[0])
		answer = []byte{closeProtocol >> 8, closeProtocol & 0xFF}
	case len(p) >= 2:
		ce.Code = binary.BigEndian.Uint16(p)
		ce.Reason = append([]byte(nil), p[2:]...)
		code := ce.Code
		switch {
		case !utf8.Valid(ce.Reason): // the reason is UTF-8 text too (§5.5.1)
			code = closeBadData
		case code < 1000 || code >= 5000 || (code >= 1016 && code < 3000),
			code == 1004, code == 1005, code == 1006, code == 1014, code == 1015:
			code = closeProtocol
		case code < 1016:
			code = closeNormal
		}
		answer = binary.BigEndian.AppendUint16(nil, code)
	}
	c.setReason(ce)
	c.closeWith(controlFrame(opClose, answer))
}

// finish ends a connection whose reading is over: it is marked closed,
// its socket closed, what is still queued dropped, and OnClose called
// (exactly once, since only the reader calls finish and it stops reading).
// err is why reading ended; an error recorded earlier takes precedence.
// The caller holds readMu.
func (c *Conn) finish(err error) {
	c.closed.Store(true)
	if c.heartbeat != nil {
		c.heartbeat.Stop()
	}
	if r := c.reason.Load(); r != nil {
		err = *r
	}
	c.mu.Lock()
	if !c.writing {
		c.dropQueueLocked()
	}
	c.mu.Unlock()
	c.rd.fail()
	c.early = nil
	c.stopPolling()
	_ = c.nc.Close()
	c.h.OnClose(c, err)
}

// receiveEarly parses the bytes read with the handshake, once, before
// anything read from the socket. The caller holds readMu.
func (c *Conn) receiveEarly() {
	if c.early != nil {
		early := c.early
		c.early = nil
		c.received(early)
	}
}

// readLoop reads the connection on a goroutine of its own until the
// stream ends: the reader for connections the poller cannot watch. Its
// buffer is its own (not pooled) and small, since it is held while idle.
func (c *Conn) readLoop() {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	c.receiveEarly()
	buf := make([]byte, 4<<10)
	for {
		if c.closed.Load() {
			c.finish(nil)
			return
		}
		n, err := c.nc.Read(buf)
		if n > 0 {
			c.received(buf[:n])
		}
		if err != nil {
			c.finish(err)
			return
		}
	}
}
