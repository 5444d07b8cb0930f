package socketio

import (
	"bytes"
	"testing"
)

// FuzzDecodePacket checks that no Socket.IO packet panics the decoder and
// that an accepted packet re-encodes to one that decodes the same.
func FuzzDecodePacket(f *testing.F) {
	for _, seed := range []string{
		"0", "0/custom,", `0{"token":"123"}`, `0/admin,{"a":1}`, "1", "1/custom,",
		`2["message",1,"2",{"3":[true]}]`, `2456["message-with-ack",1]`, `2/nsp,7["e"]`,
		`3456[1,"2"]`, `51-["message",{"_placeholder":true,"num":0}]`, `61-789[{"_placeholder":true,"num":0}]`,
		`4{"message":"x"}`, "abc", `2{"abc`, `2[1]`, `2[]`, `511-["m"]`, `5-["m"]`, "2999999999999999999999[\"e\"]",
		`2/nsp`, `0"str"`, "", "7",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePacket(b)
		if err != nil {
			return
		}
		if p.Attachments > 0 {
			_ = checkPlaceholders(p.Data, p.Attachments)
		}
		enc := append(appendHeader(nil, p.Type, p.Attachments, p.Namespace, p.ID, p.HasID), p.Data...)
		q, err := DecodePacket(enc)
		if err != nil {
			t.Fatalf("re-encoded %q (from %q) does not decode: %v", enc, b, err)
		}
		if q.Type != p.Type || q.Namespace != p.Namespace || q.Attachments != p.Attachments ||
			q.HasID != p.HasID || q.ID != p.ID || !bytes.Equal(q.Data, p.Data) {
			t.Fatalf("round trip changed %+v into %+v", p, q)
		}
	})
}
