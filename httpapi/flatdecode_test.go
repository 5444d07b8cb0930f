package httpapi

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/service"
)

// flatSeeds are event payloads decodeFlat takes and ones it must leave to
// encoding/json.
var flatSeeds = []string{
	`{"recipientId":"usr_b","encryptedContent":"{\"message\":\"QUJD\",\"key\":\"k\",\"iv\":\"iv\"}","type":"text","clientMessageId":"c-1"}`,
	` { "senderId" : "usr_a" ,` + "\n\t" + `"content":"é 👍 \u2028" } `,
	`{}`, `{ }`, `{"type":"a","type":"b"}`, `{"type":"a\u00e9\ud83d\ude00"}`, `{"type":"\ud800"}`,
	`{"type":"a\/b\\c\b\f\n\r\t"}`, `{"type":"\x"}`, `{"Type":"text"}`, `{"TYPE":"a","type":"b"}`, `{"typo":"text"}`,
	`{"type":null}`, `{"type":1}`, `{"type":"a"} {}`, `{"type":"a"}x`, `{"type":"a",}`, `{"type" "a"}`, `[]`, `"s"`,
	`{"type":"a"`, `{"type":"` + "\x01" + `"}`, `{"ty\u0070e":"a"}`, `{"type":"\"}`, `null`, ` null`, ``, `{"type":"\u0000"}`,
}

// checkFlat holds decodeInto to DecodeJSON (encoding/json) for one
// payload and input type: the same error, or the same values; and when
// decodeFlat takes the payload, encoding/json must succeed with the same
// values.
func checkFlat[T comparable](t *testing.T, data []byte) {
	var want, got, flat T
	fields := FlatFieldsOf(reflect.TypeFor[T]())
	wantErr := DecodeJSON(data, &want)
	gotErr := DecodeJSONFlat(data, &got, fields)
	if (wantErr == nil) != (gotErr == nil) || wantErr != nil && wantErr.Error() != gotErr.Error() {
		t.Fatalf("%q: DecodeJSONFlat error %v, encoding/json %v", data, gotErr, wantErr)
	}
	if wantErr == nil && got != want {
		t.Fatalf("%q: DecodeJSONFlat %+v, encoding/json %+v", data, got, want)
	}
	if parley.CheckJSONText(data) == nil && decodeFlat(data, &flat, fields) {
		if wantErr != nil || flat != want {
			t.Fatalf("%q: decodeFlat took it as %+v; encoding/json: %+v, %v", data, flat, want, wantErr)
		}
	}
}

func TestDecodeFlat(t *testing.T) {
	sendFields := FlatFieldsOf(reflect.TypeFor[service.SendInput]())
	took := 0
	for _, s := range flatSeeds {
		checkFlat[service.SendInput](t, []byte(s))
		checkFlat[service.StatusInput](t, []byte(s))
		var in service.SendInput
		if parley.CheckJSONText([]byte(s)) == nil && decodeFlat([]byte(s), &in, sendFields) {
			took++
		}
	}
	if took < 6 {
		t.Fatalf("decodeFlat took %d of the seeds, want the usual shapes (at least 6)", took)
	}
	// Not a flat struct: left to encoding/json.
	if FlatFieldsOf(reflect.TypeFor[service.TypingInput]()) != nil {
		t.Fatal("a struct with a *bool field counts as flat")
	}
	if FlatFieldsOf(reflect.TypeFor[map[string]string]()) != nil {
		t.Fatal("a map counts as a flat struct")
	}
	type named string
	if FlatFieldsOf(reflect.TypeFor[struct {
		A named `json:"a"`
	}]()) != nil || FlatFieldsOf(reflect.TypeFor[struct {
		A string `json:"a,omitempty"`
	}]()) != nil || FlatFieldsOf(reflect.TypeFor[struct {
		A string `json:"a"`
		b string
	}]()) != nil {
		t.Fatal("a struct with a named string, a tag option or an unexported field counts as flat")
	}
	// A send_message payload as clients send it decodes exactly.
	in := service.SendInput{RecipientID: "usr_b", EncryptedContent: `{"m":"<&>\u2028"}`, Type: "text", ClientMessageID: "c"}
	data, _ := json.Marshal(in)
	var out service.SendInput
	if !decodeFlat(data, &out, sendFields) || out != in {
		t.Fatalf("%s decoded as %+v", data, out)
	}
}

// FuzzDecodeFlat: DecodeJSONFlat answers every payload as encoding/json does.
func FuzzDecodeFlat(f *testing.F) {
	for _, s := range flatSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFlat[service.SendInput](t, data)
		checkFlat[service.GroupSendInput](t, data)
		checkFlat[service.StatusInput](t, data)
	})
}

// BenchmarkDecodeSendMessage: a send_message payload as parley-bench sends
// it, through decodeInto and through DecodeJSON (encoding/json).
func BenchmarkDecodeSendMessage(b *testing.B) {
	content, _ := json.Marshal(map[string]any{"message": strings.Repeat("QUJD", 64), "key": "k", "iv": "iv", "t": 12345})
	data, _ := json.Marshal(service.SendInput{RecipientID: "usr_agregsomrkrdlm25oz3ul6rx2e", EncryptedContent: string(content),
		Type: "text", ClientMessageID: "kfukdk-s4g8z7v1_176-249"})
	sendFields := FlatFieldsOf(reflect.TypeFor[service.SendInput]())
	for _, c := range []struct {
		name   string
		decode func([]byte, any) error
	}{{"flat", func(d []byte, v any) error { return DecodeJSONFlat(d, v, sendFields) }}, {"encoding-json", DecodeJSON}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var in service.SendInput
				if err := c.decode(data, &in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
