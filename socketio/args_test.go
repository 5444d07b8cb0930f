package socketio_test

import (
	"encoding/json"
	"testing"

	"github.com/parley-chat/parley/socketio"
)

// TestPrepareEventRaw checks that json.RawMessage arguments are inserted
// as they are, that a nil one is null, and that one which is not JSON is
// refused rather than sent as a broken packet.
func TestPrepareEventRaw(t *testing.T) {
	for _, tc := range []struct {
		arg  json.RawMessage
		want string
		ok   bool
	}{
		{arg: json.RawMessage(`{"a": [1, 2]}`), want: `42["e",{"a": [1, 2]}]`, ok: true},
		{arg: nil, want: `42["e",null]`, ok: true},
		{arg: json.RawMessage(`{"a":`)},
		{arg: json.RawMessage(``)},
	} {
		p, err := socketio.PrepareEvent("/", "e", tc.arg)
		if (err == nil) != tc.ok {
			t.Errorf("PrepareEvent(%q) err = %v, want ok=%v", tc.arg, err, tc.ok)
			continue
		}
		if tc.ok && string(p.Frames()[0].Data) != tc.want {
			t.Errorf("PrepareEvent(%q) = %s, want %s", tc.arg, p.Frames()[0].Data, tc.want)
		}
	}
}

// TestPrepareEventEncoded checks that an Encoded argument is inserted as it
// is, with no check (its maker vouches for it), and that an empty one is
// null rather than a hole in the array.
func TestPrepareEventEncoded(t *testing.T) {
	for _, tc := range []struct {
		arg  socketio.Encoded
		want string
	}{
		{arg: socketio.Encoded(`{"a":[1,2],"b":"<x>"}`), want: `42["e",{"a":[1,2],"b":"<x>"}]`},
		{arg: nil, want: `42["e",null]`},
		{arg: socketio.Encoded{}, want: `42["e",null]`},
	} {
		p, err := socketio.PrepareEvent("/", "e", tc.arg)
		if err != nil {
			t.Fatalf("PrepareEvent(%q): %v", tc.arg, err)
		}
		if got := string(p.Frames()[0].Data); got != tc.want {
			t.Errorf("PrepareEvent(%q) = %s, want %s", tc.arg, got, tc.want)
		}
	}
}
