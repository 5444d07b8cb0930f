package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/parley-chat/parley/socketio"
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
)

// errPacket is returned for a frame this client cannot understand.
var errPacket = errors.New("invalid Socket.IO packet")

// sioPacket is one decoded Socket.IO packet of the default namespace.
type sioPacket struct {
	Type  byte  // sioConnect ... sioConnectError
	ID    int64 // ack id, when HasID
	HasID bool
	Data  []byte // the JSON payload, nil when absent; aliases the frame
}

// decodeSIO decodes the Socket.IO packet inside an Engine.IO message (the
// frame without its leading '4') with the server's own decoder. Packets of
// other namespaces and binary packets are rejected: this client uses
// neither.
func decodeSIO(b []byte) (sioPacket, error) {
	p, err := socketio.DecodePacket(b)
	if err != nil || p.Namespace != "/" || p.Type == socketio.BinaryEvent || p.Type == socketio.BinaryAck {
		return sioPacket{}, errPacket
	}
	return sioPacket{Type: '0' + byte(p.Type), ID: p.ID, HasID: p.HasID, Data: p.Data}, nil
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

// rawStringField picks field's string value out of the raw payload of an
// event named event (`["event",{...}]` as the server encodes it), without
// decoding the rest. It is meant for ids, which need no JSON escapes; a
// value with a backslash is refused rather than misread. The first
// occurrence wins, so field should be one the server writes before any
// nested object.
func rawStringField(payload []byte, event, field string) (string, bool) {
	prefix := `["` + event + `",`
	if len(payload) < len(prefix) || string(payload[:len(prefix)]) != prefix {
		return "", false
	}
	rest := payload[len(prefix):]
	key := `"` + field + `":"`
	i := bytes.Index(rest, []byte(key))
	if i < 0 {
		return "", false
	}
	rest = rest[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 {
		return "", false
	}
	return string(rest[:j]), true
}
