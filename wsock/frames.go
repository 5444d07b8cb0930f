package wsock

import (
	"encoding/binary"
	"errors"
)

// Close status codes (RFC 6455 §7.4.1) the reader answers with.
const (
	closeNormal     = 1000
	closeProtocol   = 1002
	closeBadData    = 1007
	closeTooLarge   = 1009
	maxControlFrame = 125
	maxHeader       = 14 // 2 + 8 (length) + 4 (mask key)
)

// protocolError is a violation of RFC 6455 by the peer; the connection is
// failed with a close frame carrying code.
type protocolError struct {
	code uint16
	msg  string
}

func (e *protocolError) Error() string { return "wsock: " + e.msg }

var (
	errUnmasked     = &protocolError{closeProtocol, "unmasked frame from a client"}
	errReserved     = &protocolError{closeProtocol, "reserved bits set without an extension"}
	errOpcode       = &protocolError{closeProtocol, "unknown opcode"}
	errControl      = &protocolError{closeProtocol, "fragmented or oversized control frame"}
	errContinuation = &protocolError{closeProtocol, "continuation frame outside a fragmented message"}
	errInterleaved  = &protocolError{closeProtocol, "new message inside a fragmented message"}
	errLength       = &protocolError{closeProtocol, "payload length with the most significant bit set"}
	errTooLarge     = &protocolError{closeTooLarge, "message over the read limit"}
	errNotUTF8      = &protocolError{closeBadData, "text message that is not UTF-8"}
	errStopReading  = errors.New("wsock: stop reading")
)

// frameReader turns the bytes read from a client into frames (RFC 6455
// §5). It holds memory only between reads that split a frame (partial) or
// a fragmented message (msg); once a frame and a message are complete both
// are released, so an idle connection keeps nothing. It is used by one
// goroutine at a time.
type frameReader struct {
	limit   int    // largest message payload accepted
	partial []byte // the start of a frame not yet complete, or nil
	msg     []byte // payload of a fragmented message so far, or nil
	msgOp   byte   // opcode of that message (opText/opBinary), 0 if none
	failed  bool   // a protocol error or a close frame was read: ignore the rest
}

// frameHeader is a parsed frame header.
type frameHeader struct {
	fin  bool
	op   byte
	key  [4]byte
	n    int // payload length
	size int // header length
}

// parseHeader parses the frame header at the start of b. It returns
// ok=false when b does not hold the whole header yet, and an error for a
// header the reader must refuse (the payload length is checked against
// limit, less what a fragmented message already holds, before any of it is
// read).
func (r *frameReader) parseHeader(b []byte) (h frameHeader, ok bool, err error) {
	if len(b) < 2 {
		return h, false, nil
	}
	if b[0]&0x70 != 0 {
		return h, false, errReserved
	}
	h.fin = b[0]&0x80 != 0
	h.op = b[0] & 0x0F
	if b[1]&0x80 == 0 {
		return h, false, errUnmasked
	}
	n := uint64(b[1] & 0x7F)
	h.size = 2
	switch n {
	case 126:
		h.size = 4
	case 127:
		h.size = 10
	}
	if h.op&0x08 != 0 {
		if !h.fin || n > maxControlFrame {
			return h, false, errControl
		}
		if h.op != opClose && h.op != opPing && h.op != opPong {
			return h, false, errOpcode
		}
	} else if h.op > opBinary {
		return h, false, errOpcode
	}
	if len(b) < h.size+4 {
		return h, false, nil
	}
	switch n {
	case 126:
		n = uint64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		n = binary.BigEndian.Uint64(b[2:])
		if n>>63 != 0 {
			return h, false, errLength
		}
	}
	room := uint64(r.limit)
	if h.op == 0 || h.op == opText || h.op == opBinary {
		if uint64(len(r.msg)) > room {
			room = 0
		} else {
			room -= uint64(len(r.msg))
		}
	}
	if n > room {
		return h, false, errTooLarge
	}
	h.n = int(n)
	copy(h.key[:], b[h.size:])
	h.size += 4
	return h, true, nil
}

// feed parses data, appended to any partial frame kept from the last
// call, and hands each complete message, ping, pong or close to emit: op
// is opText or opBinary for a message (a fragmented one reassembled), or
// the control opcode. payload is unmasked and valid only during the call.
// emit returning an error stops reading (the rest is dropped). A protocol
// error is returned as a *protocolError; after it, or after a close frame,
// the reader is failed and ignores all further input.
func (r *frameReader) feed(data []byte, emit func(op byte, payload []byte) error) error {
	if r.failed {
		return nil
	}
	if len(r.partial) > 0 {
		r.partial = append(r.partial, data...)
		data = r.partial
	}
	for {
		h, ok, err := r.parseHeader(data)
		if err != nil {
			r.fail()
			return err
		}
		if !ok || len(data) < h.size+h.n {
			r.keep(data, h, ok)
			return nil
		}
		p := data[h.size : h.size+h.n]
		data = data[h.size+h.n:]
		unmask(p, h.key)
		if err := r.frame(h, p, emit); err != nil {
			r.fail()
			if err == errStopReading {
				return nil
			}
			return err
		}
	}
}

// keep saves the incomplete frame at the start of data for the next feed,
// or releases the partial buffer when nothing is left. Once the header is
// known the buffer is sized for the whole frame, so a big frame read in
// many pieces is not copied again as it grows.
func (r *frameReader) keep(data []byte, h frameHeader, known bool) {
	if len(data) == 0 {
		r.partial = nil
		return
	}
	if len(r.partial) > 0 && &data[0] == &r.partial[0] {
		return // the whole partial buffer is still unparsed
	}
	need := maxHeader
	if known {
		need = h.size + h.n
	}
	if len(r.partial) > 0 && cap(r.partial) >= need {
		// The unparsed tail of the old buffer moves to its front.
		r.partial = r.partial[:copy(r.partial[:cap(r.partial)], data)]
		return
	}
	buf := make([]byte, len(data), max(need, len(data)))
	copy(buf, data)
	r.partial = buf
}

// frame handles one complete, unmasked frame.
func (r *frameReader) frame(h frameHeader, p []byte, emit func(op byte, payload []byte) error) error {
	switch h.op {
	case opClose, opPing, opPong:
		return emit(h.op, p)
	case 0:
		if r.msgOp == 0 {
			return errContinuation
		}
		r.msg = append(r.msg, p...)
		if !h.fin {
			return nil
		}
		op, msg := r.msgOp, r.msg
		r.msgOp, r.msg = 0, nil
		return emit(op, msg)
	}
	if r.msgOp != 0 {
		return errInterleaved
	}
	if h.fin {
		return emit(h.op, p)
	}
	r.msgOp = h.op
	r.msg = append(make([]byte, 0, len(p)), p...)
	return nil
}

// fail drops what the reader holds and makes it ignore further input.
func (r *frameReader) fail() {
	r.failed = true
	r.partial, r.msg, r.msgOp = nil, nil, 0
}

// unmask XORs p with the client's masking key (RFC 6455 §5.3).
func unmask(p []byte, key [4]byte) {
	k := binary.LittleEndian.Uint32(key[:])
	k64 := uint64(k)<<32 | uint64(k)
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, binary.LittleEndian.Uint64(p)^k64)
		p = p[8:]
	}
	for i := range p {
		p[i] ^= key[i&3]
	}
}
