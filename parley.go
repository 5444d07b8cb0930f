// Package parley holds Parley's domain: the plain types (users, devices,
// sessions, conversations, messages), the error type, and the small
// interfaces the service layer needs from its adapters (stores, bus, mailer).
// It imports no adapter; adapters live in their own packages.
package parley

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
	"time"
)

// idEncoding is lowercase base32 without padding: URL-safe and case-insensitive.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns prefix + "_" + 26 characters: the creation time in
// milliseconds (48 bits) followed by 80 random bits. IDs stay opaque to
// clients; leading with the time makes the IDs created together share a
// prefix, so a database index on them takes new entries in a few adjacent
// pages instead of one random page per row (messages are written in
// batches of hundreds, and every random page is one more to write out).
func NewID(prefix string) string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails on supported platforms
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}

// TimeFormat is the wire format of every time: ISO 8601 UTC with milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// FormatTime formats t in TimeFormat; the zero time formats as "".
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeFormat)
}

// Millis converts t to epoch milliseconds, the storage form of times; zero is 0.
func Millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// FromMillis converts epoch milliseconds back to a UTC time; 0 is the zero time.
func FromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// Time is a time that marshals to JSON in TimeFormat, or null when zero.
type Time struct{ time.Time }

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + FormatTime(t.Time) + `"`), nil
}

// ParseTime parses a query time given as epoch milliseconds or ISO 8601.
func ParseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	if isDigits(s) && len(s) <= 16 {
		var ms int64
		for _, c := range s {
			ms = ms*10 + int64(c-'0')
		}
		return time.UnixMilli(ms).UTC(), true
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
