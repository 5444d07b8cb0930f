package parley_test

import (
	"testing"

	"github.com/parley-chat/parley"
)

// TestParseAddress reads back what DeviceAddress and OtherDevicesAddress
// write, and a plain user id as itself.
func TestParseAddress(t *testing.T) {
	cases := []struct {
		addr         string
		user, device string
		except       bool
	}{
		{"usr_a", "usr_a", "", false},
		{parley.DeviceAddress("usr_a", "phone"), "usr_a", "phone", false},
		{parley.OtherDevicesAddress("usr_a", "phone"), "usr_a", "phone", true},
		{parley.DeviceAddress("usr_a", "dev#1!x"), "usr_a", "dev#1!x", false},
		{"usr_a#zz", "usr_a", "\x00", false}, // not hex: names no device, reaches nobody
		{"usr_a#", "usr_a", "\x00", false},
	}
	for _, c := range cases {
		u, d, e := parley.ParseAddress(c.addr)
		if u != c.user || d != c.device || e != c.except {
			t.Errorf("ParseAddress(%q) = %q, %q, %v; want %q, %q, %v", c.addr, u, d, e, c.user, c.device, c.except)
		}
	}
}
