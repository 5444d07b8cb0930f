package sqlstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/sqlstore"
)

// TestChatsPage: one page of 150 chats (more than one id chunk) carries, per
// chat, the peer, the last message the user may see (not one they hid) and
// the unread count.
func TestChatsPage(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		now := time.Now().UTC().Truncate(time.Millisecond)
		me := mustUser(t, db, "me")
		const n = 150
		peers := map[string]int{}
		for i := 0; i < n; i++ {
			peer := mustUser(t, db, fmt.Sprintf("peer%d", i))
			conv, err := db.DirectConversation(ctx, me.ID, peer.ID, now)
			must(t, err)
			peers[peer.ID] = i
			var batch []*parley.Send
			for k := 0; k <= i%3; k++ { // 1 to 3 messages from the peer
				batch = append(batch, &parley.Send{Message: &parley.Message{ID: fmt.Sprintf("msg_%d_%d", i, k), ConversationID: conv.ID,
					SenderID: peer.ID, RecipientID: me.ID, Content: fmt.Sprintf("c%d-%d", i, k), ContentHash: "h", Type: "text",
					SentAt: now.Add(time.Duration(i) * time.Second)}})
			}
			must(t, db.SendMessages(ctx, batch))
		}
		// Hiding the last message of peer 5 shows the one before it.
		must(t, db.HideMessage(ctx, "msg_5_2", me.ID, nil))
		chats, err := db.Chats(ctx, me.ID, 200)
		must(t, err)
		if len(chats) != n {
			t.Fatalf("%d chats, want %d", len(chats), n)
		}
		for _, ch := range chats {
			i, ok := peers[ch.PeerID]
			if !ok {
				t.Fatalf("chat %s with unknown peer %q", ch.Conversation.ID, ch.PeerID)
			}
			want := fmt.Sprintf("msg_%d_%d", i, i%3)
			if i == 5 {
				want = "msg_5_1"
			}
			if ch.LastMessage == nil || ch.LastMessage.ID != want {
				t.Fatalf("peer %d: last message %+v, want %s", i, ch.LastMessage, want)
			}
			if ch.Unread != int64(i%3+1) {
				t.Fatalf("peer %d: unread %d, want %d", i, ch.Unread, i%3+1)
			}
		}
	})
}

// TestChatsOrder: the page is the most recently active chats, newest
// first (a group without messages by its creation), at most limit of
// them, and never an empty direct chat, even one newer than all others
// and when the limit reaches past the visible chats.
func TestChatsOrder(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		now := time.Now().UTC().Truncate(time.Millisecond)
		me := mustUser(t, db, "me")
		var want []string // conversation ids, newest activity first
		for i := 0; i < 4; i++ {
			peer := mustUser(t, db, fmt.Sprintf("peer%d", i))
			conv, err := db.DirectConversation(ctx, me.ID, peer.ID, now)
			must(t, err)
			must(t, db.SendMessages(ctx, []*parley.Send{{Message: &parley.Message{ID: fmt.Sprintf("msg_%d", i), ConversationID: conv.ID,
				SenderID: peer.ID, RecipientID: me.ID, Content: "c", ContentHash: "h", Type: "text",
				SentAt: now.Add(time.Duration(i) * 10 * time.Second)}}}))
			want = append([]string{conv.ID}, want...)
			if i == 1 { // a group without messages, active at its creation (15 s)
				g := &parley.Group{ID: parley.NewConversationID(parley.KindGroup), Name: "G", CreatedBy: peer.ID, OwnerID: peer.ID}
				must(t, db.CreateGroup(ctx, g, []string{me.ID}, now.Add(15*time.Second)))
				want = append([]string{g.ID}, want...)
			}
		}
		for i := 0; i < 3; i++ { // empty direct chats, newer than everything
			peer := mustUser(t, db, fmt.Sprintf("silent%d", i))
			_, err := db.DirectConversation(ctx, me.ID, peer.ID, now.Add(time.Hour))
			must(t, err)
		}
		for _, limit := range []int{2, 5, 7, 50} {
			chats, err := db.Chats(ctx, me.ID, limit)
			must(t, err)
			var got []string
			for _, ch := range chats {
				got = append(got, ch.Conversation.ID)
			}
			if w := want[:min(limit, len(want))]; fmt.Sprint(got) != fmt.Sprint(w) {
				t.Fatalf("limit %d: chats %v, want %v", limit, got, w)
			}
		}
	})
}
