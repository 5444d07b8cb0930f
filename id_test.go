package parley

import (
	"strings"
	"testing"
	"time"
)

// TestNewID checks the ID layout: the prefix, 26 characters, the creation
// time in the first 48 bits, and no repeats.
func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		before := time.Now().UnixMilli()
		id := NewID("msg")
		after := time.Now().UnixMilli()
		rest, ok := strings.CutPrefix(id, "msg_")
		if !ok || len(rest) != 26 {
			t.Fatalf("NewID = %q", id)
		}
		b, err := idEncoding.DecodeString(rest)
		if err != nil || len(b) != 16 {
			t.Fatalf("NewID = %q does not decode: %v", id, err)
		}
		var ms int64
		for _, x := range b[:6] {
			ms = ms<<8 | int64(x)
		}
		if ms < before || ms > after {
			t.Fatalf("NewID = %q carries time %d, not within [%d, %d]", id, ms, before, after)
		}
		if seen[id] {
			t.Fatalf("NewID repeated %q", id)
		}
		seen[id] = true
	}
}
