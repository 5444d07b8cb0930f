package socketio_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/parley-chat/parley/socketio"
)

// sendMessage is a client's send_message with an ack id, as the Socket.IO
// packet inside the Engine.IO message (about 500 bytes).
var sendMessage = []byte(`217["send_message",{"recipientId":"usr_dddddddddddddddddddddddddd","encryptedContent":"{\"message\":\"` +
	strings.Repeat("A", 344) + `\",\"key\":\"k\",\"iv\":\"iv\"}","type":"text","clientMessageId":"c-123456"}]`)

func BenchmarkDecodePacket(b *testing.B) {
	b.SetBytes(int64(len(sendMessage)))
	for b.Loop() {
		p, err := socketio.DecodePacket(sendMessage)
		if err != nil || p.Type != socketio.Event || p.ID != 17 {
			b.Fatal(p, err)
		}
	}
}

// BenchmarkPrepareEvent encodes one event for every socket of a fan-out
// (the hub does it once per event and transport), its data checked
// (json.RawMessage) and not (Encoded, what the hub gives).
func BenchmarkPrepareEvent(b *testing.B) {
	data := json.RawMessage(sendMessage[4 : len(sendMessage)-1]) // the object argument
	data = data[strings.IndexByte(string(data), '{'):]
	if !json.Valid(data) {
		b.Fatalf("bad test data %s", data)
	}
	for _, arg := range []struct {
		name string
		v    any
	}{{"RawMessage", data}, {"Encoded", socketio.Encoded(data)}} {
		b.Run(arg.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				p, err := socketio.PrepareEvent("/", "new_message", arg.v)
				if err != nil || len(p.Frames()) != 1 {
					b.Fatal(err)
				}
			}
		})
	}
}
