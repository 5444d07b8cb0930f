package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
)

// ErrArgIndex is returned by Args.Unmarshal for an index out of range.
var ErrArgIndex = errors.New("socketio: no such argument")

// Args are the arguments of a received event or ack. JSON holds each
// top-level argument as sent; a binary argument appears there as the
// placeholder {"_placeholder":true,"num":N} and its bytes are Attachments[N].
type Args struct {
	JSON        []json.RawMessage
	Attachments [][]byte
}

// Len returns the number of arguments.
func (a Args) Len() int { return len(a.JSON) }

// Binary returns the bytes of argument i when it is a binary placeholder.
func (a Args) Binary(i int) ([]byte, bool) {
	if i < 0 || i >= len(a.JSON) {
		return nil, false
	}
	raw := a.JSON[i]
	if len(raw) == 0 || raw[0] != '{' || !bytes.Contains(raw, []byte(`"_placeholder"`)) {
		return nil, false
	}
	var ph placeholder
	if json.Unmarshal(raw, &ph) != nil || !ph.Placeholder || ph.Num == nil {
		return nil, false
	}
	n := int(*ph.Num)
	if n < 0 || n >= len(a.Attachments) {
		return nil, false
	}
	return a.Attachments[n], true
}

// Unmarshal decodes argument i into v; it returns ErrArgIndex when there is
// no argument i.
func (a Args) Unmarshal(i int, v any) error {
	if i < 0 || i >= len(a.JSON) {
		return ErrArgIndex
	}
	return json.Unmarshal(a.JSON[i], v)
}

// Values returns the arguments ready to pass to Emit or an ack: a []byte
// for a top-level binary argument, the json.RawMessage otherwise. (Binary
// data nested inside an object is not re-encoded as binary.)
func (a Args) Values() []any {
	out := make([]any, len(a.JSON))
	for i, raw := range a.JSON {
		if b, ok := a.Binary(i); ok {
			out[i] = b
		} else {
			out[i] = raw
		}
	}
	return out
}

// splitArgs returns the elements of the JSON array data, each as the
// bytes it was sent as (sub-slices of data, without surrounding white
// space): for valid JSON, what json.Unmarshal into a []json.RawMessage
// returns, including nil for null and failure for a value that is not an
// array. It does not validate: data must be valid JSON, as DecodePacket
// made every Packet.Data (on other input it fails or returns garbage, but
// never panics). Every received event and ack goes through it, and a full
// decode would scan the packet a second time and copy every element.
func splitArgs(data []byte) ([]json.RawMessage, bool) {
	i := skipSpace(data, 0)
	if i == len(data) {
		return nil, false
	}
	switch data[i] {
	case 'n':
		return nil, true // null
	case '[':
	default:
		return nil, false
	}
	args := []json.RawMessage{}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return args, true
	}
	// In valid JSON an element ends at the first comma or bracket outside
	// strings that brings the depth back to the array's.
	start, depth, inString := i, 0, false
	for ; i < len(data); i++ {
		c := data[i]
		if inString {
			switch c {
			case '\\':
				i++ // the escaped character cannot end the string
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
		case '}', ']':
			if depth > 0 {
				depth--
				continue
			}
			args = append(args, json.RawMessage(trimSpaceRight(data[start:i])))
			return args, true
		case ',':
			if depth == 0 {
				args = append(args, json.RawMessage(trimSpaceRight(data[start:i])))
				start = skipSpace(data, i+1)
			}
		}
	}
	return nil, false // not valid JSON
}

// skipSpace returns the index of the first byte of data at or after i
// that is not JSON white space.
func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// trimSpaceRight cuts the JSON white space off the end of b.
func trimSpaceRight(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// eventName decodes the JSON string raw, the first argument of an event.
// A name of plain ASCII without escapes (every name Parley handles) is
// taken as it is, without the decoder.
func eventName(raw json.RawMessage) (string, bool) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		plain := true
		for _, c := range raw[1 : len(raw)-1] {
			if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
				plain = false
				break
			}
		}
		if plain {
			return string(raw[1 : len(raw)-1]), true
		}
	}
	var name string
	return name, json.Unmarshal(raw, &name) == nil
}

// encodeArgs builds the JSON array of a packet from Go values, turning each
// top-level []byte into a placeholder and an attachment. prefix, when not
// empty, is the already-encoded first element (the event name).
func encodeArgs(dst []byte, prefix []byte, args []any) ([]byte, [][]byte, error) {
	var atts [][]byte
	dst = append(dst, '[')
	first := true
	if len(prefix) > 0 {
		dst = append(dst, prefix...)
		first = false
	}
	for _, a := range args {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		switch v := a.(type) {
		case []byte:
			dst = append(dst, `{"_placeholder":true,"num":`...)
			dst = appendInt(dst, len(atts))
			dst = append(dst, '}')
			atts = append(atts, v)
		case json.RawMessage:
			// Inserted as it is (json.Marshal would re-validate and compact
			// it through a buffer, the most expensive step of a fan-out's
			// one encoding); it must still be valid.
			if v != nil && !json.Valid(v) {
				return nil, nil, errInvalidRaw
			}
			dst = appendJSON(dst, v)
		case Encoded:
			// An encoder's output: inserted without json.Valid, which
			// costs as much as the rest of the packet's encoding.
			dst = appendJSON(dst, v)
		default:
			b, err := json.Marshal(v)
			if err != nil {
				return nil, nil, err
			}
			dst = append(dst, b...)
		}
	}
	dst = append(dst, ']')
	if len(atts) > MaxAttachments {
		return nil, nil, ErrTooManyAttachments
	}
	return dst, atts, nil
}

// appendJSON appends raw, already JSON, or null when it is empty.
func appendJSON(dst, raw []byte) []byte {
	if len(raw) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, raw...)
}

// Encoded is an argument that is already JSON because an encoder made it
// (json.Marshal, or an equivalent the caller tests against it): it goes
// into the packet as it is. A json.RawMessage argument is checked with
// json.Valid first, as it may hold anything; Encoded is not, so it must
// never carry bytes a client or another party supplied unchecked. Empty
// encodes as null.
type Encoded []byte

// errInvalidRaw is returned for a json.RawMessage argument that is not JSON.
var errInvalidRaw = errors.New("socketio: json.RawMessage argument is not valid JSON")

// ErrTooManyAttachments is returned when an emit carries more than
// MaxAttachments binary arguments (clients would refuse the packet).
var ErrTooManyAttachments = errors.New("socketio: too many binary arguments")

func appendInt(dst []byte, n int) []byte {
	if n >= 10 {
		dst = appendInt(dst, n/10)
	}
	return append(dst, byte('0'+n%10))
}
