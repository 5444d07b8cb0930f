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
