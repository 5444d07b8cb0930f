package natsbus

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/parley-chat/parley"
)

// FuzzDecode checks that no payload from another node panics the decoder,
// and that what decodes encodes back to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, seed := range []struct{ name, payload string }{
		{"new_message", "usr_a,usr_b\n{\"messageId\":\"msg_1\"}"},
		{"typing_indicator", "usr_a\n{}"},
		{"_bus_gap", "\n"},
		{"_session_revoked", "usr_a\n{\"tokenHash\":\"ab\",\"all\":true}"},
		{"x", ""},
		{"x", "no newline"},
		{"x", ",,\n"},
		{"x", "a\nb\nc"},
		{"a.b", "usr_a\n{}"},
		{"", "\n"},
	} {
		f.Add(seed.name, []byte(seed.payload))
	}
	f.Fuzz(func(t *testing.T, name string, payload []byte) {
		ev, err := decode(name, payload)
		if err != nil {
			return
		}
		if len(ev.Data) > 0 && !json.Valid(ev.Data) {
			t.Fatalf("data %q that is not JSON decoded", ev.Data)
		}
		if slices.Contains(ev.To, "") {
			return // empty addressees decode but are refused by encode
		}
		again, err := encode(ev)
		if err != nil {
			t.Fatalf("decoded event %+v does not encode: %v", ev, err)
		}
		if !bytes.Equal(again, payload) {
			t.Fatalf("round trip changed %q into %q", payload, again)
		}
	})
}

// TestCodec checks the wire form of an event and that what cannot travel
// is refused before anything is sent.
func TestCodec(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		ev := &parley.Event{Name: "new_message", Data: []byte("{\n\"a\": 1\n}"), To: []string{"usr_a", "usr_b"}}
		p, err := encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		if string(p) != "usr_a,usr_b\n{\n\"a\": 1\n}" {
			t.Fatalf("payload %q", p)
		}
		got, err := decode("new_message", p)
		if err != nil || got.Name != ev.Name || !slices.Equal(got.To, ev.To) || string(got.Data) != string(ev.Data) {
			t.Fatalf("decode = %+v, %v", got, err)
		}
	})
	t.Run("NoAddressees", func(t *testing.T) {
		p, err := encode(&parley.Event{Name: parley.EventBusGap})
		if err != nil || string(p) != "\n" {
			t.Fatalf("payload %q, %v", p, err)
		}
		got, err := decode(parley.EventBusGap, p)
		if err != nil || got.To != nil || len(got.Data) != 0 {
			t.Fatalf("decode = %+v, %v", got, err)
		}
	})
	t.Run("ErrCannotTravel", func(t *testing.T) {
		for _, ev := range []*parley.Event{
			{Name: "a.b", To: []string{"u"}},
			{Name: "a>", To: []string{"u"}},
			{Name: "", To: []string{"u"}},
			{Name: "a b", To: []string{"u"}},
			{Name: "ok", To: []string{"u,v"}},
			{Name: "ok", To: []string{"u\n"}},
			{Name: "ok", To: []string{""}},
		} {
			if _, err := encode(ev); err == nil {
				t.Errorf("encode(%q to %q) accepted", ev.Name, ev.To)
			}
		}
		if _, err := decode("ok", []byte("usr_a")); err == nil {
			t.Error("payload without an addressee line accepted")
		}
		// Sockets frame an event's data without checking it again.
		for _, data := range []string{"{", `{"a":}`, "nul", `"x`, "{} {}"} {
			if _, err := decode("ok", []byte("usr_a\n"+data)); err == nil {
				t.Errorf("data %q that is not JSON accepted", data)
			}
		}
	})
}

// TestRedact checks that passwords never reach logs or errors.
func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                         "nats://127.0.0.1:4222",
		"nats://ann:s3cret@h:4222":                      "nats://ann:xxxxx@h:4222",
		"nats://s3cret@h:4222":                          "nats://xxxxx@h:4222",
		"nats://a:s3cret@h1:4222,tls://b:s3cret@h2:443": "nats://a:xxxxx@h1:4222,tls://b:xxxxx@h2:443",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]bool{
		"nats://h:4222": true, "tls://h:4222": true, "nats://a:4222,nats://b:4222": true, "wss://h/nats": true,
		"local": false, "": false, "http://h:4222": false, "nats://": false, "h:4222": false,
	} {
		if got := IsURL(in); got != want {
			t.Errorf("IsURL(%q) = %v, want %v", in, got, want)
		}
	}
}
