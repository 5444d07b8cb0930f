package engineio

import (
	"bytes"
	"encoding/base64"
	"errors"

	"github.com/parley-chat/parley/wsock"
)

// PacketType is the Engine.IO packet type, the first character of a text packet.
type PacketType byte

// Engine.IO v4 packet types.
const (
	PacketOpen    PacketType = '0'
	PacketClose   PacketType = '1'
	PacketPing    PacketType = '2'
	PacketPong    PacketType = '3'
	PacketMessage PacketType = '4'
	PacketUpgrade PacketType = '5'
	PacketNoop    PacketType = '6'
)

// recordSeparator joins packets in an HTTP long-polling payload.
const recordSeparator = 0x1e

// ErrInvalidPacket is returned for a packet or payload that breaks the
// Engine.IO v4 encoding.
var ErrInvalidPacket = errors.New("engineio: invalid packet")

// Packet is one decoded Engine.IO packet. For a binary message Type is
// PacketMessage, Binary is true and Data holds the raw bytes.
type Packet struct {
	Type   PacketType
	Data   []byte
	Binary bool
}

// Frame is one encoded Engine.IO packet, ready to be written on any
// transport: Data is the whole text packet (type character included), or
// the raw bytes of a binary message (Binary set). Its bytes are never
// modified after creation, so a Frame can be shared by many sessions
// (encode once, fan out). It is a wsock.Message: frames made by this
// package's constructors (and NewTextFrame) also carry their WebSocket
// frame, encoded once, so a fan-out to WebSocket sessions writes the same
// bytes everywhere without framing or copying them per session.
type Frame = wsock.Message

// NewTextFrame returns a text frame of n bytes for the caller to fill in
// (Data[0] is the packet type), before it is sent.
func NewTextFrame(n int) Frame { return wsock.NewMessage(false, n) }

// TextMessage returns the frame of a text message packet ("4" + payload).
func TextMessage(payload []byte) Frame {
	f := NewTextFrame(1 + len(payload))
	f.Data[0] = byte(PacketMessage)
	copy(f.Data[1:], payload)
	return f
}

// BinaryMessage returns the frame of a binary message; data is not copied
// (it is framed when sent on a WebSocket).
func BinaryMessage(data []byte) Frame { return Frame{Data: data, Binary: true} }

func controlFrame(t PacketType, data string) Frame {
	f := NewTextFrame(1 + len(data))
	f.Data[0] = byte(t)
	copy(f.Data[1:], data)
	return f
}

// DecodePacket decodes one text packet as carried by a WebSocket text frame
// or one record of a polling payload (where "b<base64>" is a binary message).
// The returned Data aliases p.
func DecodePacket(p []byte) (Packet, error) {
	if len(p) == 0 {
		return Packet{}, ErrInvalidPacket
	}
	if p[0] == 'b' {
		data := make([]byte, base64.StdEncoding.DecodedLen(len(p)-1))
		n, err := base64.StdEncoding.Decode(data, p[1:])
		if err != nil {
			return Packet{}, ErrInvalidPacket
		}
		return Packet{Type: PacketMessage, Data: data[:n], Binary: true}, nil
	}
	t := PacketType(p[0])
	if t < PacketOpen || t > PacketNoop {
		return Packet{}, ErrInvalidPacket
	}
	return Packet{Type: t, Data: p[1:]}, nil
}

// DecodePayload splits an HTTP long-polling payload into packets. An empty
// payload or an empty record is invalid.
func DecodePayload(body []byte) ([]Packet, error) {
	if len(body) == 0 {
		return nil, ErrInvalidPacket
	}
	var out []Packet
	for len(body) > 0 || out == nil {
		rec := body
		if i := bytes.IndexByte(body, recordSeparator); i >= 0 {
			rec, body = body[:i], body[i+1:]
			if len(body) == 0 {
				// A trailing separator would announce an empty record.
				return nil, ErrInvalidPacket
			}
		} else {
			body = nil
		}
		p, err := DecodePacket(rec)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// appendPayload appends frames as one polling payload to dst.
func appendPayload(dst []byte, frames []Frame) []byte {
	for i, f := range frames {
		if i > 0 {
			dst = append(dst, recordSeparator)
		}
		if f.Binary {
			dst = append(dst, 'b')
			dst = base64.StdEncoding.AppendEncode(dst, f.Data)
			continue
		}
		dst = append(dst, f.Data...)
	}
	return dst
}
