package engineio_test

import (
	"strings"
	"testing"

	"github.com/parley-chat/parley/engineio"
)

// A new_message as the hub sends it: the Socket.IO event inside an
// Engine.IO message, about 700 bytes.
var eventFrame = []byte(`42["new_message",{"messageId":"msg_aaaaaaaaaaaaaaaaaaaaaaaaaa","conversationId":"conv_bbbbbbbbbbbbbbbbbbbbbbbbbb",` +
	`"seq":42,"senderId":"usr_cccccccccccccccccccccccccc","recipientId":"usr_dddddddddddddddddddddddddd","content":"{\"message\":\"` +
	strings.Repeat("A", 344) + `\",\"key\":\"k\",\"iv\":\"iv\"}","contentHash":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",` +
	`"type":"text","status":"sent","sentAt":"2026-01-02T03:04:05.678Z","deliveredAt":"","seenAt":"","editedAt":"","reactions":[],"deletedForEveryone":false}]`)

func BenchmarkDecodePacket(b *testing.B) {
	b.SetBytes(int64(len(eventFrame)))
	for b.Loop() {
		p, err := engineio.DecodePacket(eventFrame)
		if err != nil || p.Type != engineio.PacketMessage {
			b.Fatal(p, err)
		}
	}
}

func BenchmarkTextMessage(b *testing.B) {
	payload := eventFrame[1:]
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if f := engineio.TextMessage(payload); len(f.Data) != len(eventFrame) {
			b.Fatal(len(f.Data))
		}
	}
}

// BenchmarkDecodePayload decodes a long-polling POST of ten events.
func BenchmarkDecodePayload(b *testing.B) {
	body := []byte(strings.Repeat(string(eventFrame)+"\x1e", 9) + string(eventFrame))
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		ps, err := engineio.DecodePayload(body)
		if err != nil || len(ps) != 10 {
			b.Fatal(len(ps), err)
		}
	}
}
