package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/localbus"
	"github.com/parley-chat/parley/service"
)

// TestNewMessageEventJSON: the new_message event of a direct message is
// the JSON encoding/json makes of its view, byte for byte, and carries the
// message as sent (content with characters JSON escapes included).
func TestNewMessageEventJSON(t *testing.T) {
	ctx := context.Background()
	bus := localbus.New()
	var mu sync.Mutex
	var events []*parley.Event
	t.Cleanup(bus.Subscribe(func(ev *parley.Event) {
		if ev.Name == "new_message" {
			mu.Lock()
			events = append(events, ev)
			mu.Unlock()
		}
	}))
	clock := time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	svc := mustServiceOn(t, bus, nil, func() time.Time { return clock })
	ann, bob := mustRegister(t, svc, "ann"), mustRegister(t, svc, "bob")
	content := "<b>\"quoted\" & \\ \u2028 é\x01</b>"
	r, err := svc.SendMessage(ctx, ann, service.SendInput{SenderID: ann.UserID, RecipientID: bob.UserID,
		EncryptedContent: content, Type: "text", ClientMessageID: "c-1"})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 {
		t.Fatalf("%d new_message events, want 1", len(events))
	}
	var v service.MessageView
	if err := json.Unmarshal(events[0].Data, &v); err != nil {
		t.Fatalf("event data %s: %v", events[0].Data, err)
	}
	if v.MessageID != r.MessageID || v.ConversationID != r.ConversationID || v.Seq != r.Seq || v.SenderID != ann.UserID ||
		v.RecipientID != bob.UserID || v.ClientMessageID != "c-1" || v.Content == nil || *v.Content != content ||
		v.Status != parley.StatusSent || !v.SentAt.Time.Equal(clock) || v.Reactions == nil {
		t.Fatalf("event data %s does not carry the message sent (%+v)", events[0].Data, r)
	}
	want, err := json.Marshal(&v)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(events[0].Data, want) {
		t.Fatalf("event data\n got %s\nwant %s", events[0].Data, want)
	}
}
