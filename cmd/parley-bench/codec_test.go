package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/parley-chat/parley/socketio"
)

func TestDecodeSIO(t *testing.T) {
	for _, tc := range []struct {
		in    string
		ok    bool
		typ   byte
		id    int64
		hasID bool
		data  string
	}{
		{in: `0{"sid":"abc"}`, ok: true, typ: sioConnect, data: `{"sid":"abc"}`},
		{in: `4{"message":"unauthorized"}`, ok: true, typ: sioConnectError, data: `{"message":"unauthorized"}`},
		{in: `2["new_message",{"a":1}]`, ok: true, typ: sioEvent, data: `["new_message",{"a":1}]`},
		{in: `312[{"success":true}]`, ok: true, typ: sioAck, id: 12, hasID: true, data: `[{"success":true}]`},
		{in: `1`, ok: true, typ: sioDisconnect},
		{in: ``},
		{in: `7`},
		{in: `2`},                              // event without payload
		{in: `2{"a":1}`},                       // event payload must be an array
		{in: `3["x"]`},                         // ack without id
		{in: `31234567890123456["x"]`},         // id too long
		{in: `2["x"`},                          // invalid JSON
		{in: `2/chat,["x"]`},                   // other namespace
		{in: `51-["x",{"_placeholder":true}]`}, // binary
		{in: `1{}`},                            // disconnect with data
	} {
		p, err := decodeSIO([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("decodeSIO(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if !tc.ok {
			continue
		}
		if p.Type != tc.typ || p.ID != tc.id || p.HasID != tc.hasID || string(p.Data) != tc.data {
			t.Errorf("decodeSIO(%q) = %+v (data %q)", tc.in, p, p.Data)
		}
	}
}

func TestEventRoundTrip(t *testing.T) {
	arg := json.RawMessage(`{"recipientId":"usr_1","encryptedContent":"{\"m\":\"x\"}","type":"text"}`)
	frame := appendEvent(nil, 42, "send_message", arg)
	if want := `4242["send_message",` + string(arg) + `]`; string(frame) != want {
		t.Fatalf("frame = %s, want %s", frame, want)
	}
	// The server's own decoder must accept what the client sends.
	sp, err := socketio.DecodePacket(frame[1:])
	if err != nil || sp.Type != socketio.Event || !sp.HasID || sp.ID != 42 {
		t.Fatalf("server decode = %+v, %v", sp, err)
	}
	p, err := decodeSIO(frame[1:])
	if err != nil {
		t.Fatal(err)
	}
	name, args, err := eventArgs(p.Data)
	if err != nil || name != "send_message" || len(args) != 1 || !bytes.Equal(args[0], arg) {
		t.Fatalf("eventArgs = %q %s %v", name, args, err)
	}
	if got := appendEvent(nil, -1, `we"ird`, nil); string(got) != `42["we\"ird"]` {
		t.Fatalf("no-ack frame = %s", got)
	}
	if got := string(connectFrame(`t"k`)); got != `40{"token":"t\"k"}` {
		t.Fatalf("connect frame = %s", got)
	}
}

// FuzzDecodeSIO checks that the decoder never panics, that whatever the
// server's (stricter) decoder accepts for the default namespace it accepts
// too with the same id and payload, and that events re-encode identically.
func FuzzDecodeSIO(f *testing.F) {
	for _, s := range []string{`0{"sid":"x"}`, `4{"message":"unauthorized"}`, `2["new_message",{"messageId":"m"}]`,
		`37[{"success":true,"data":{"messageId":"m"}}]`, `1`, `2/x,["a"]`, `51-["a",{"_placeholder":true,"num":0}]`,
		`29["a",1,"2",[3]]`, `3999999999999999[]`, `2[]`, `2["\u0000"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeSIO(b)
		if sp, serr := socketio.DecodePacket(b); serr == nil && sp.Namespace == "/" && sp.Attachments == 0 &&
			len(b) > 1 && b[1] != '/' && sp.Type <= socketio.ConnectError {
			if err != nil {
				t.Fatalf("server accepts %q, client refuses: %v", b, err)
			}
			if p.HasID != sp.HasID || p.ID != sp.ID || !bytes.Equal(p.Data, sp.Data) {
				t.Fatalf("%q: client %+v, server %+v", b, p, sp)
			}
		}
		if err != nil || p.Type != sioEvent {
			return
		}
		name, args, err := eventArgs(p.Data)
		if err != nil || len(args) != 1 || !p.HasID {
			return
		}
		again, err := decodeSIO(appendEvent(nil, p.ID, name, args[0])[1:])
		if err != nil || again.ID != p.ID {
			t.Fatalf("re-encoding %q failed: %+v %v", b, again, err)
		}
		name2, args2, err := eventArgs(again.Data)
		if err != nil || name2 != name || !bytes.Equal(args2[0], args[0]) {
			t.Fatalf("re-encoding %q changed the event: %q %s", b, name2, args2)
		}
	})
}

func TestRawStringField(t *testing.T) {
	for _, tc := range []struct {
		in, event, field, want string
		ok                     bool
	}{
		{in: `["new_message",{"messageId":"msg_1","seq":3}]`, event: "new_message", field: "messageId", want: "msg_1", ok: true},
		{in: `["new_group_message",{"messageId":"msg_2","groupId":"group_x"}]`, event: "new_group_message", field: "groupId", want: "group_x", ok: true},
		{in: `["new_message",{"messageId":"msg_1"}]`, event: "new_group_message", field: "messageId"}, // another event
		{in: `["new_message",{"seq":3}]`, event: "new_message", field: "messageId"},                   // no such field
		{in: `["new_message",{"messageId":"a\"b"}]`, event: "new_message", field: "messageId"},        // escaped: refused
		{in: `["new_message",{"messageId":"unterminated`, event: "new_message", field: "messageId"},
		{in: `["new`, event: "new_message", field: "messageId"},
	} {
		got, ok := rawStringField([]byte(tc.in), tc.event, tc.field)
		if ok != tc.ok || got != tc.want {
			t.Errorf("rawStringField(%s, %s, %s) = %q, %v; want %q, %v", tc.in, tc.event, tc.field, got, ok, tc.want, tc.ok)
		}
	}
}
