package parley

import (
	"bytes"
	"unicode/utf8"
)

// Text a client sends must be storable byte for byte on every store:
// PostgreSQL refuses NUL in text, and Go's JSON decoder silently turns
// invalid UTF-8 and lone surrogate escapes into U+FFFD, which would change
// what is stored (and its contentHash). Such input is refused with
// invalid_argument before it reaches the service, by every transport.

// CheckJSONText reports whether raw JSON (a request body or a socket
// event's data) holds only text that can be stored exactly: valid UTF-8,
// no NUL (raw or escaped as \u0000), and no \u escape of a lone UTF-16
// surrogate. It returns an EINVALID error otherwise.
func CheckJSONText(data []byte) error {
	if !utf8.Valid(data) {
		return Errorf(EINVALID, "JSON text must be valid UTF-8")
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return Errorf(EINVALID, "JSON text must not contain NUL characters")
	}
	// A backslash is only valid JSON inside a string, where it starts an
	// escape; anything malformed is left for the decoder to report.
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		if i+1 >= len(data) {
			break
		}
		if data[i+1] != 'u' {
			i++ // skip the escaped character, which may be a backslash
			continue
		}
		r, ok := hex4(data, i+2)
		if !ok {
			i++
			continue
		}
		switch {
		case r == 0:
			return Errorf(EINVALID, "JSON text must not contain NUL characters")
		case r >= 0xDC00 && r <= 0xDFFF:
			return Errorf(EINVALID, "JSON text must not contain a lone UTF-16 surrogate (\\u%04x)", r)
		case r >= 0xD800 && r <= 0xDBFF:
			if i+7 < len(data) && data[i+6] == '\\' && data[i+7] == 'u' {
				if lo, ok := hex4(data, i+8); ok && lo >= 0xDC00 && lo <= 0xDFFF {
					i += 11 // the whole pair
					continue
				}
			}
			return Errorf(EINVALID, "JSON text must not contain a lone UTF-16 surrogate (\\u%04x)", r)
		}
		i += 5
	}
	return nil
}

// hex4 decodes the four hex digits at data[at:at+4].
func hex4(data []byte, at int) (rune, bool) {
	if at+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
