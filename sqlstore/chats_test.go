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
