package httpapi

import (
	"encoding"
	"encoding/json"
	"reflect"
)

// The inputs clients send most (send_message and its group and channel
// forms, message_status; over a socket or as a REST body) are a flat JSON
// object of strings. Decoding one with encoding/json (scan, reflection,
// DisallowUnknownFields) was 4 % of the server's CPU at 10,000 direct
// messages/s over sockets (BENCHMARKS.md, issue #23, session 34).
// decodeFlat decodes the usual shape of such an object directly and leaves
// everything else to encoding/json, so that the result, and every error,
// is encoding/json's: FuzzDecodeFlat holds it to that.

// FlatFields is a struct type whose every field is an exported string with
// a plain JSON name (and no method of its own to decode JSON or text): the
// field index + 1 of each name. Each route and each socket event handler
// computes its input type's once.
type FlatFields map[string]int

// flatFields returns the names of t's fields, or nil when t is not a struct
// of strings only with plain JSON names.
func FlatFieldsOf(t reflect.Type) FlatFields {
	var fields FlatFields
	p := reflect.PointerTo(t)
	if t.Kind() == reflect.Struct && !p.Implements(jsonUnmarshaler) && !p.Implements(textUnmarshaler) {
		fields = FlatFields{}
		for i := range t.NumField() {
			sf := t.Field(i)
			name := sf.Tag.Get("json")
			if !sf.IsExported() || sf.Anonymous || sf.Type.Kind() != reflect.String || sf.Type.PkgPath() != "" ||
				!plainName(name) || fields[name] != 0 {
				fields = nil
				break
			}
			fields[name] = i + 1 // 0 means absent
		}
	}
	return fields
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// plainName reports whether a json tag is a bare name of letters, digits
// and underscores (no options, nothing encoding/json would reject).
func plainName(tag string) bool {
	if tag == "" {
		return false
	}
	for _, c := range tag {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// decodeFlat decodes data into v, a pointer to a struct whose flatFields
// are fields, when data is one JSON object whose keys are exactly the
// names of those fields (no escapes), each with a string value, and
// reports whether it did. It sets nothing unless it decodes the whole
// object: otherwise the caller decodes with encoding/json. data must have
// passed parley.CheckJSONText (valid UTF-8, no NUL).
func decodeFlat(data []byte, v any, fields FlatFields) bool {
	rv := reflect.ValueOf(v)
	if fields == nil || rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return false
	}
	type set struct {
		field int
		val   string
	}
	var sets [12]set
	got := sets[:0]
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		i++
	} else {
		for {
			key, next, ok := plainString(data, i)
			if !ok {
				return false
			}
			field := fields[string(key)]
			if field == 0 {
				return false // another spelling or an unknown field: encoding/json says which
			}
			i = skipSpace(data, next)
			if i >= len(data) || data[i] != ':' {
				return false
			}
			val, next, ok := stringValue(data, skipSpace(data, i+1))
			if !ok {
				return false
			}
			got = append(got, set{field - 1, val})
			i = skipSpace(data, next)
			if i >= len(data) {
				return false
			}
			if data[i] == '}' {
				i++
				break
			}
			if data[i] != ',' {
				return false
			}
			i = skipSpace(data, i+1)
		}
	}
	if skipSpace(data, i) != len(data) {
		return false // more than one value: encoding/json's error
	}
	s := rv.Elem()
	for _, g := range got {
		s.Field(g.field).SetString(g.val) // a repeated key: the last one wins, as in encoding/json
	}
	return true
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// plainString returns the contents of the JSON string at data[i] and the
// index after it, when it has no escape and no control character.
func plainString(data []byte, i int) ([]byte, int, bool) {
	if i >= len(data) || data[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return data[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// stringValue decodes the JSON string at data[i], returning it and the
// index after it. The short escapes are decoded here; a string with a
// \u escape is decoded by encoding/json (surrogate pairs and their
// replacement). A control character or a malformed escape fails.
func stringValue(data []byte, i int) (string, int, bool) {
	if s, next, ok := plainString(data, i); ok {
		return string(s), next, true
	}
	end := stringEnd(data, i)
	if end < 0 {
		return "", 0, false
	}
	b := make([]byte, 0, end-i)
	run := i + 1 // start of the bytes not yet copied
	for j := i + 1; j < end; j++ {
		c := data[j]
		if c < 0x20 {
			return "", 0, false
		}
		if c != '\\' {
			continue
		}
		b = append(b, data[run:j]...)
		j++ // stringEnd saw a byte after every backslash before end
		switch data[j] {
		case '"', '\\', '/':
			b = append(b, data[j])
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			var s string
			if json.Unmarshal(data[i:end+1], &s) != nil {
				return "", 0, false
			}
			return s, end + 1, true
		default:
			return "", 0, false
		}
		run = j + 1
	}
	return string(append(b, data[run:end]...)), end + 1, true
}

// stringEnd returns the index of the quote that ends the JSON string at
// data[i], or -1.
func stringEnd(data []byte, i int) int {
	if i >= len(data) || data[i] != '"' {
		return -1
	}
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '"':
			return j
		case '\\':
			j++ // the escaped byte
		}
	}
	return -1
}
