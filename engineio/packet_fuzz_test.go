package engineio

import (
	"bytes"
	"testing"
)

// FuzzDecodePayload checks that no polling payload panics the decoder and
// that what decodes survives an encode/decode round trip unchanged.
func FuzzDecodePayload(f *testing.F) {
	for _, seed := range []string{
		"4hello", "2", "3probe", "1", "6", "4hello\x1e4world", "bAQID", "4a\x1ebAQID\x1e2",
		"", "\x1e", "4a\x1e", "b", "b===", "9", "bZm9v\x1e", "40{\"token\":\"x\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		packets, err := DecodePayload(body)
		if err != nil {
			return
		}
		frames := make([]Frame, len(packets))
		for i, p := range packets {
			if p.Binary {
				frames[i] = BinaryMessage(p.Data)
			} else {
				frames[i] = Frame{Data: append([]byte{byte(p.Type)}, p.Data...)}
			}
		}
		again, err := DecodePayload(appendPayload(nil, frames))
		if err != nil || len(again) != len(packets) {
			t.Fatalf("round trip: %v, %d vs %d packets", err, len(again), len(packets))
		}
		for i := range packets {
			if again[i].Type != packets[i].Type || again[i].Binary != packets[i].Binary || !bytes.Equal(again[i].Data, packets[i].Data) {
				t.Fatalf("packet %d changed: %+v vs %+v", i, packets[i], again[i])
			}
		}
	})
}

// FuzzDecodePacket checks that no WebSocket text frame panics the decoder.
func FuzzDecodePacket(f *testing.F) {
	for _, seed := range []string{"4hello", "2probe", "5", "", "b", "bAQID", "7", "\x00"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		pkt, err := DecodePacket(p)
		if err == nil && !pkt.Binary && (pkt.Type < PacketOpen || pkt.Type > PacketNoop) {
			t.Fatalf("accepted type %q", pkt.Type)
		}
	})
}
