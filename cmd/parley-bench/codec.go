package main

import (
	"encoding/json"
	"errors"
	"strconv"
)

// The subset of Engine.IO v4 / Socket.IO v5 a WebSocket-only client of the
// default namespace needs. Text frames only: the bench never sends binary
// attachments and treats a binary packet from the server as an error.

// Engine.IO packet types (the first byte of a WebSocket text frame).
const (
	eioOpen    = '0'
	eioClose   = '1'
	eioPing    = '2'
	eioPong    = '3'
	eioMessage = '4'
	eioNoop    = '6'
)

// Socket.IO packet types (the byte after the Engine.IO '4').
const (
	sioConnect      = '0'
	sioDisconnect   = '1'
	sioEvent        = '2'
	sioAck          = '3'
	sioConnectError = '4'
	sioBinaryEvent  = '5'
	sioBinaryAck    = '6'
)

// maxAckID keeps ack ids inside int64 (15 digits, as the server does).
const maxAckIDDigits = 15

// errPacket is returned for a frame this client cannot understand.
var errPacket = errors.New("invalid Socket.IO packet")

// sioPacket is one decoded Socket.IO packet of the default namespace.
type sioPacket struct {
	Type  byte  // sioConnect ... sioBinaryAck
	ID    int64 // ack id, when HasID
	HasID bool
	Data  []byte // the JSON payload, nil when absent; aliases the frame
}

// decodeSIO decodes the Socket.IO packet inside an Engine.IO message (the
// frame without its leading '4'). Packets of other namespaces and binary
// packets are rejected; the payload must be valid JSON when present.
func decodeSIO(b []byte) (sioPacket, error) {
	var p sioPacket
	if len(b) == 0 || b[0] < sioConnect || b[0] > sioBinaryAck {
		return p, errPacket
	}
	p.Type = b[0]
	if p.Type == sioBinaryEvent || p.Type == sioBinaryAck {
		return p, errPacket
	}
	i := 1
	if i < len(b) && b[i] == '/' {
		return p, errPacket // only the default namespace is used
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i > start {
		if i-start > maxAckIDDigits {
			return p, errPacket
		}
		p.ID, _ = strconv.ParseInt(string(b[start:i]), 10, 64)
		p.HasID = true
	}
	if i < len(b) {
		p.Data = b[i:]
		if !json.Valid(p.Data) {
			return p, errPacket
		}
	}
	switch p.Type {
	case sioEvent:
		if len(p.Data) == 0 || p.Data[0] != '[' {
			return p, errPacket
		}
	case sioAck:
		if !p.HasID || len(p.Data) == 0 || p.Data[0] != '[' {
			return p, errPacket
		}
	case sioDisconnect:
		if p.Data != nil || p.HasID {
			return p, errPacket
		}
	}
	return p, nil
}

// eventArgs splits an event payload ["name", args...] into the name and
// its arguments.
func eventArgs(data []byte) (string, []json.RawMessage, error) {
	var all []json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil || len(all) == 0 {
		return "", nil, errPacket
	}
	var name string
	if err := json.Unmarshal(all[0], &name); err != nil {
		return "", nil, errPacket
	}
	return name, all[1:], nil
}

// appendEvent appends the WebSocket text frame of an event:
// 42[<id>]["name",<arg>], where arg is already JSON. id < 0 asks no ack.
func appendEvent(dst []byte, id int64, name string, arg json.RawMessage) []byte {
	dst = append(dst, eioMessage, sioEvent)
	if id >= 0 {
		dst = strconv.AppendInt(dst, id, 10)
	}
	dst = append(dst, '[')
	quoted, _ := json.Marshal(name) // strconv.Quote is not JSON for every string
	dst = append(dst, quoted...)
	if arg != nil {
		dst = append(dst, ',')
		dst = append(dst, arg...)
	}
	return append(dst, ']')
}

// connectFrame is the CONNECT packet to the default namespace with the
// handshake auth {"token": token}.
func connectFrame(token string) []byte {
	auth, _ := json.Marshal(map[string]string{"token": token})
	return append([]byte{eioMessage, sioConnect}, auth...)
}
