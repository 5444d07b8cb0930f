package socketio

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzSplitArgs checks splitArgs against what it replaces: on valid JSON
// (all DecodePacket lets through), json.Unmarshal into a []json.RawMessage
// must accept the same inputs and give the same elements, byte for byte;
// on anything else splitArgs must not panic.
func FuzzSplitArgs(f *testing.F) {
	for _, seed := range []string{
		`["message",1,"2",{"3":[true]}]`, `[]`, ` [ ] `, `null`, ` null `, `[null]`, `{}`, `"str"`, `1`, ``, `[`,
		`["a" , { "b" : [1, 2] } ,"c\"]",  "\\"]`, "[\t\"e\"\n,\r{}\n]", `["e",[[]],[{}],"]"]`, `[1,]`, `[,1]`,
		`["e"] x`, `["\u00e9",{"k":"\ud83d\ude00"}]`, `[{"_placeholder":true,"num":0}]`, "[\"\xff\"]",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := splitArgs(data)
		if !json.Valid(data) {
			return
		}
		var want []json.RawMessage
		wantErr := json.Unmarshal(data, &want)
		if ok != (wantErr == nil) {
			t.Fatalf("splitArgs(%q) ok=%v, json.Unmarshal error %v", data, ok, wantErr)
		}
		if !ok {
			return
		}
		if (got == nil) != (want == nil) || len(got) != len(want) {
			t.Fatalf("splitArgs(%q) = %q, json.Unmarshal gives %q", data, got, want)
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("splitArgs(%q)[%d] = %q, json.Unmarshal gives %q", data, i, got[i], want[i])
			}
		}
	})
}

// FuzzEventName checks eventName against json.Unmarshal into a string.
func FuzzEventName(f *testing.F) {
	for _, seed := range []string{`"send_message"`, `""`, `"a\"b"`, `"\u0041"`, `"é"`, "\"\xff\"", `1`, `"`, `null`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return // eventName only sees elements splitArgs returned
		}
		var want string
		wantErr := json.Unmarshal(raw, &want)
		got, ok := eventName(raw)
		if ok != (wantErr == nil) || got != want {
			t.Fatalf("eventName(%q) = %q, %v; json.Unmarshal gives %q, %v", raw, got, ok, want, wantErr)
		}
	})
}

// BenchmarkSplitArgs splits the arguments of a client's send_message (the
// JSON of the Socket.IO packet, about 500 bytes), as every received event
// is, beside the json.Unmarshal it replaced.
func BenchmarkSplitArgs(b *testing.B) {
	data := []byte(`["send_message",{"recipientId":"usr_dddddddddddddddddddddddddd","encryptedContent":"{\"message\":\"` +
		strings.Repeat("A", 344) + `\",\"key\":\"k\",\"iv\":\"iv\"}","type":"text","clientMessageId":"c-123456"}]`)
	b.Run("splitArgs", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if args, ok := splitArgs(data); !ok || len(args) != 2 {
				b.Fatal(args, ok)
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			var args []json.RawMessage
			if err := json.Unmarshal(data, &args); err != nil || len(args) != 2 {
				b.Fatal(args, err)
			}
		}
	})
}
