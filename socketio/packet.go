package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// PacketType is the Socket.IO v5 packet type.
type PacketType byte

// Socket.IO v5 packet types.
const (
	Connect      PacketType = 0
	Disconnect   PacketType = 1
	Event        PacketType = 2
	Ack          PacketType = 3
	ConnectError PacketType = 4
	BinaryEvent  PacketType = 5
	BinaryAck    PacketType = 6
)

// MaxAttachments bounds the binary attachments of one packet, so a client
// cannot make the server buffer an unbounded number of frames.
const MaxAttachments = 10

// maxIDDigits keeps ack ids well inside int64.
const maxIDDigits = 15

// ErrInvalidPacket is returned for a packet that breaks the Socket.IO v5
// encoding; the server closes the connection that sent it.
var ErrInvalidPacket = errors.New("socketio: invalid packet")

// Packet is one decoded Socket.IO packet (binary attachments excluded).
type Packet struct {
	Type        PacketType
	Namespace   string // "/" when absent
	Attachments int
	HasID       bool
	ID          int64
	Data        json.RawMessage // the JSON payload, nil when absent; aliases the input
}

// DecodePacket decodes the text part of a Socket.IO packet (the Engine.IO
// message payload). It accepts only what a v5 client may send: valid JSON,
// an object or nothing for CONNECT, nothing for DISCONNECT, a non-empty
// array starting with a string for events, an array and an id for acks.
func DecodePacket(b []byte) (Packet, error) {
	p := Packet{Namespace: "/"}
	if len(b) == 0 || b[0] < '0' || b[0] > '6' {
		return p, ErrInvalidPacket
	}
	p.Type = PacketType(b[0] - '0')
	i := 1
	if p.Type == BinaryEvent || p.Type == BinaryAck {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start || i-start > 3 || i >= len(b) || b[i] != '-' {
			return p, ErrInvalidPacket
		}
		n, _ := strconv.Atoi(string(b[start:i]))
		if n < 1 || n > MaxAttachments {
			return p, ErrInvalidPacket
		}
		p.Attachments = n
		i++
	}
	if i < len(b) && b[i] == '/' {
		end := bytes.IndexByte(b[i:], ',')
		if end < 0 {
			p.Namespace = string(b[i:])
			i = len(b)
		} else {
			p.Namespace = string(b[i : i+end])
			i += end + 1
		}
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i > start {
		if i-start > maxIDDigits {
			return p, ErrInvalidPacket
		}
		p.ID, _ = strconv.ParseInt(string(b[start:i]), 10, 64)
		p.HasID = true
	}
	if i < len(b) {
		p.Data = b[i:]
		if !json.Valid(p.Data) {
			return p, ErrInvalidPacket
		}
	}
	if !payloadFits(p) {
		return p, ErrInvalidPacket
	}
	return p, nil
}

func payloadFits(p Packet) bool {
	first := byte(0)
	if len(p.Data) > 0 {
		first = p.Data[0]
	}
	switch p.Type {
	case Connect:
		// A non-object auth is answered with CONNECT_ERROR by the server,
		// not rejected here, so the client learns why.
		return !p.HasID
	case Disconnect:
		return p.Data == nil && !p.HasID
	case Event, BinaryEvent:
		// Data is valid JSON (checked above) starting with '[', so the
		// array is non-empty and starts with a string exactly when its
		// first non-blank byte after '[' is a quote; decoding the whole
		// array again to learn that costs as much as the check above.
		if first != '[' {
			return false
		}
		rest := bytes.TrimLeft(p.Data[1:], " \t\r\n")
		return len(rest) > 0 && rest[0] == '"'
	case Ack, BinaryAck:
		return p.HasID && first == '['
	case ConnectError:
		return first == '{' || first == '"'
	}
	return false
}

// appendHeader appends "<type>[<n>-][<nsp>,][<id>]".
func appendHeader(dst []byte, t PacketType, attachments int, nsp string, id int64, hasID bool) []byte {
	dst = append(dst, byte('0'+t))
	if attachments > 0 {
		dst = strconv.AppendInt(dst, int64(attachments), 10)
		dst = append(dst, '-')
	}
	if nsp != "/" && nsp != "" {
		dst = append(dst, nsp...)
		dst = append(dst, ',')
	}
	if hasID {
		dst = strconv.AppendInt(dst, id, 10)
	}
	return dst
}

// placeholder is the JSON that stands for binary attachment Num.
type placeholder struct {
	Placeholder bool     `json:"_placeholder"`
	Num         *float64 `json:"num"`
}

// checkPlaceholders reports whether every placeholder in data (at any
// depth) refers to an attachment below n.
func checkPlaceholders(data json.RawMessage, n int) bool {
	var v any
	if json.Unmarshal(data, &v) != nil {
		return false
	}
	return walkPlaceholders(v, n, 0)
}

func walkPlaceholders(v any, n, depth int) bool {
	if depth > 64 {
		return false
	}
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if !walkPlaceholders(e, n, depth+1) {
				return false
			}
		}
	case map[string]any:
		if ph, _ := x["_placeholder"].(bool); ph {
			num, ok := x["num"].(float64)
			return ok && num >= 0 && num < float64(n) && num == float64(int(num))
		}
		for _, e := range x {
			if !walkPlaceholders(e, n, depth+1) {
				return false
			}
		}
	}
	return true
}
