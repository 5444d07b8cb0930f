package realtime

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestAppendWSFrame checks that an event's /ws frame, built by hand,
// reads as the wsFrame json.Marshal would make of it.
func TestAppendWSFrame(t *testing.T) {
	for _, tc := range []struct {
		event string
		data  string
	}{
		{"new_message", `{"messageId":"msg_1","encryptedContent":"<b>&</b>","seq":3}`},
		{"typing_indicator", `{"userId":"usr_a","isTyping":true}`},
		{"presence", `[1,"two",null]`},
		{"odd\"name", `"text"`},
		{"no_data", ``},
	} {
		got := appendWSFrame(nil, tc.event, json.RawMessage(tc.data))
		want, err := json.Marshal(wsFrame{Event: tc.event, Data: json.RawMessage(tc.data)})
		if err != nil {
			t.Fatal(err)
		}
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("%s: %s is not JSON: %v", tc.event, got, err)
		}
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: got %s, want %s", tc.event, got, want)
		}
	}
}
