package service_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/sqlstore"
)

// BenchmarkChats reads the chat list (a page of 200) of a user with 1,000
// direct conversations on SQLite, whose last messages the user confirmed
// as delivered or seen in two chats of three:
//
//	go test -run '^$' -bench Chats -benchtime 200x ./service
func BenchmarkChats(b *testing.B) {
	var db *sqlstore.DB
	svc := mustService(b, func(d *sqlstore.DB, _ *parley.Stores) { db = d }, nil)
	ctx := context.Background()
	me := mustRegister(b, svc, "reader")
	now := time.Now().UTC().Truncate(time.Millisecond)
	for i := 0; i < 1000; i++ {
		peer := &parley.User{ID: parley.NewID("usr"), Username: fmt.Sprintf("peer%d", i), PasswordHash: "h",
			Settings: parley.DefaultSettings(), CreatedAt: now, UpdatedAt: now}
		if err := db.CreateUser(ctx, peer, nil); err != nil {
			b.Fatal(err)
		}
		conv, err := db.DirectConversation(ctx, me.UserID, peer.ID, now)
		if err != nil {
			b.Fatal(err)
		}
		s := &parley.Send{Message: &parley.Message{ID: parley.NewID("msg"), ConversationID: conv.ID, SenderID: peer.ID,
			RecipientID: me.UserID, Content: "c", ContentHash: "h", Type: "text", SentAt: now.Add(time.Duration(i) * time.Millisecond)}}
		if err := db.SendMessages(ctx, []*parley.Send{s}); err != nil || s.Err != nil {
			b.Fatal(err, s.Err)
		}
		// As clients do, the reader confirmed most messages: a third is
		// delivered, a third seen, a third not confirmed yet.
		for _, kind := range []string{parley.StatusDelivered, parley.StatusSeen}[:i%3] {
			if _, err := db.AdvanceReceipt(ctx, conv.ID, me.UserID, kind, s.Message.Seq, now.Add(time.Second), false); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		chats, err := svc.Chats(ctx, me, 200)
		if err != nil || len(chats) != 200 {
			b.Fatalf("%d chats, %v", len(chats), err)
		}
	}
}
