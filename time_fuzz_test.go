package parley_test

import (
	"testing"
	"time"

	"github.com/parley-chat/parley"
)

// FuzzParseTime checks that query times never panic and that epoch
// milliseconds round-trip.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"1700000000000", "2025-04-12T11:56:12.043Z", "2025-04-12", "", "99999999999999999", "-1", "2025-13-40T99:99:99Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parley.ParseTime(s)
		if ok && got.Location() != time.UTC {
			t.Fatalf("%q parsed to a non-UTC time", s)
		}
	})
}

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1744458972043", 1744458972043, true},
		{"2025-04-12T11:56:12.043Z", 1744458972043, true},
		{"yesterday", 0, false},
		{"", 0, false},
	} {
		got, ok := parley.ParseTime(tc.in)
		if ok != tc.ok || (ok && got.UnixMilli() != tc.want) {
			t.Errorf("ParseTime(%q) = %v, %v", tc.in, got, ok)
		}
	}
}
