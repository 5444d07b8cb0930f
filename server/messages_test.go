package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/jobs"
	"github.com/parley-chat/parley/server"
)

type sendRes struct {
	MessageID, ConversationID, Status, SentAt string
	Seq                                       int64
}

type msgView struct {
	MessageID, ConversationID, SenderID, RecipientID, Type, ReplyToID, Status string
	Content                                                                   *string
	ContentHash, SentAt                                                       string
	DeliveredAt, SeenAt, EditedAt                                             *string
	Seq                                                                       int64
	DeletedForEveryone                                                        bool
	Reactions                                                                 []struct{ UserID, Reaction string }
}

func send(t *testing.T, c *apitest.Client, to *apitest.Client, content string, extra map[string]any) sendRes {
	t.Helper()
	body := map[string]any{"recipientId": to.UserID, "encryptedContent": content, "type": "text"}
	for k, v := range extra {
		body[k] = v
	}
	var r sendRes
	c.Must(t, 201, "POST", "/api/messages/send", body).Decode(t, &r)
	return r
}

func history(t *testing.T, c *apitest.Client, peer *apitest.Client, query string) []msgView {
	t.Helper()
	var out []msgView
	c.Must(t, 200, "GET", "/api/messages/"+c.UserID+"/"+peer.UserID+query, nil).Decode(t, &out)
	return out
}

// TestDirectMessages drives API.md §3 and §4 end to end over REST and the
// plain WebSocket, on every backend.
func TestDirectMessages(t *testing.T) {
	t.Parallel()
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := apitest.MustStart(t, backend, func(c *server.Config) { c.ScheduleTick = 100 * time.Millisecond })
			testDirectMessages(t, srv)
		})
	}
}

func testDirectMessages(t *testing.T, srv *server.Server) {
	base := srv.URL()
	ann, bob, eve := apitest.Register(t, base, "ann"), apitest.Register(t, base, "bob"), apitest.Register(t, base, "eve")
	annWS, annWS2, bobWS := apitest.DialWS(t, base, ann.Token), apitest.DialWS(t, base, ann.Token), apitest.DialWS(t, base, bob.Token)

	var first sendRes
	t.Run("Send", func(t *testing.T) {
		first = send(t, ann, bob, `{"message":"c1","key":"k","iv":"i"}`, map[string]any{"clientMessageId": "c-1"})
		if first.Status != "sent" || first.Seq != 1 || !strings.HasPrefix(first.MessageID, "msg_") {
			t.Fatalf("send = %+v", first)
		}
		data := bobWS.WaitEvent(t, "new_message", first.MessageID)
		var m msgView
		json.Unmarshal(data, &m)
		sum := sha256.Sum256([]byte(`{"message":"c1","key":"k","iv":"i"}`))
		if m.Content == nil || *m.Content != `{"message":"c1","key":"k","iv":"i"}` || m.SenderID != ann.UserID || m.Seq != 1 ||
			m.ContentHash != hex.EncodeToString(sum[:]) {
			t.Fatalf("new_message = %s", data)
		}
		annWS2.WaitEvent(t, "new_message", first.MessageID) // the sender's other sockets too
		t.Run("Idempotent", func(t *testing.T) {
			again := send(t, ann, bob, "different", map[string]any{"clientMessageId": "c-1"})
			if again.MessageID != first.MessageID || again.Seq != 1 {
				t.Fatalf("retry = %+v, first = %+v", again, first)
			}
			if n := len(history(t, bob, ann, "")); n != 1 {
				t.Fatalf("history has %d messages after a retry", n)
			}
		})
		t.Run("Socket", func(t *testing.T) {
			ack := annWS.Call(t, "send_message", map[string]any{"recipientId": bob.UserID, "encryptedContent": "over-socket", "type": "text"}, 1)
			var env struct {
				Success bool
				Data    sendRes
			}
			json.Unmarshal(ack, &env)
			if !env.Success || env.Data.Seq != 2 {
				t.Fatalf("ack = %s", ack)
			}
			bobWS.WaitEvent(t, "new_message", env.Data.MessageID)
			ack = annWS.Call(t, "send_message", map[string]any{"recipientId": "usr_nope", "encryptedContent": "x"}, 2)
			if !strings.Contains(string(ack), `"not_found"`) {
				t.Fatalf("ack = %s", ack)
			}
		})
	})

	t.Run("BadInput", func(t *testing.T) {
		before := len(history(t, ann, bob, "?limit=200"))
		cases := []struct {
			name   string
			status int
			body   map[string]any
		}{
			{"ErrUnknownRecipient", 404, map[string]any{"recipientId": "usr_nope", "encryptedContent": "x"}},
			{"ErrEmptyContent", 400, map[string]any{"recipientId": bob.UserID, "encryptedContent": ""}},
			{"ErrTooLarge", 413, map[string]any{"recipientId": bob.UserID, "encryptedContent": strings.Repeat("x", 64<<10+1)}},
			{"ErrType", 400, map[string]any{"recipientId": bob.UserID, "encryptedContent": "x", "type": "sticker"}},
			{"ErrMedia", 400, map[string]any{"recipientId": bob.UserID, "encryptedContent": "x", "mediaId": "file_x"}},
			{"ErrSelf", 400, map[string]any{"recipientId": ann.UserID, "encryptedContent": "x"}},
			{"ErrSpoofedSender", 403, map[string]any{"senderId": bob.UserID, "recipientId": bob.UserID, "encryptedContent": "x"}},
			{"ErrClientMessageID", 400, map[string]any{"recipientId": bob.UserID, "encryptedContent": "x", "clientMessageId": strings.Repeat("c", 65)}},
			{"ErrWrongType", 400, map[string]any{"recipientId": bob.UserID, "encryptedContent": 5}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := ann.Must(t, tc.status, "POST", "/api/messages/send", tc.body)
				if r.Error.Message == "" {
					t.Fatal("error without a message")
				}
			})
		}
		t.Run("ErrReplyOtherConversation", func(t *testing.T) {
			other := send(t, ann, eve, "to eve", nil)
			ann.Must(t, 400, "POST", "/api/messages/reply", map[string]any{"recipientId": bob.UserID, "encryptedContent": "x", "replyToId": other.MessageID})
		})
		if after := len(history(t, ann, bob, "?limit=200")); after != before {
			t.Fatalf("bad input stored messages: %d → %d", before, after)
		}
		ann.Must(t, 403, "GET", "/api/messages/"+bob.UserID+"/"+ann.UserID, nil)
		ann.Must(t, 404, "GET", "/api/messages/"+ann.UserID+"/usr_nope", nil)
		ann.Must(t, 400, "GET", "/api/messages/"+ann.UserID+"/"+bob.UserID+"?limit=0", nil)
	})

	t.Run("History", func(t *testing.T) {
		for i := 0; i < 5; i++ {
			send(t, bob, ann, fmt.Sprintf("h%d", i), nil)
		}
		all := history(t, ann, bob, "")
		for i := 1; i < len(all); i++ {
			if all[i-1].Seq <= all[i].Seq {
				t.Fatalf("not newest first: %d then %d", all[i-1].Seq, all[i].Seq)
			}
		}
		page := history(t, ann, bob, "?limit=2")
		if len(page) != 2 || page[0].Seq != all[0].Seq {
			t.Fatalf("page = %+v", page)
		}
		next := history(t, ann, bob, fmt.Sprintf("?limit=2&beforeSeq=%d", page[1].Seq))
		if len(next) != 2 || next[0].Seq != page[1].Seq-1 {
			t.Fatalf("next page = %+v", next)
		}
		old := history(t, ann, bob, "?before="+all[len(all)-1].SentAt)
		for _, m := range old {
			if m.SentAt >= all[len(all)-1].SentAt {
				t.Fatalf("before not applied: %+v", m)
			}
		}
		// Another user cannot read a message of the conversation.
		eve.Must(t, 404, "GET", "/api/status/"+first.MessageID, nil)
	})

	t.Run("Receipts", func(t *testing.T) {
		m1 := send(t, ann, bob, "r1", nil)
		m2 := send(t, ann, bob, "r2", nil)
		ann.Must(t, 403, "POST", "/api/status", map[string]any{"messageId": m2.MessageID, "status": "seen"}) // the sender
		eve.Must(t, 404, "POST", "/api/status", map[string]any{"messageId": m2.MessageID, "status": "seen"})
		bob.Must(t, 400, "POST", "/api/status", map[string]any{"messageId": m2.MessageID, "status": "read"})
		bob.Must(t, 403, "POST", "/api/status", map[string]any{"messageId": m2.MessageID, "status": "seen", "userId": ann.UserID})
		var st struct{ Status, DeliveredAt, SeenAt string }
		bob.Must(t, 200, "POST", "/api/status", map[string]any{"messageId": m2.MessageID, "status": "delivered"}).Decode(t, &st)
		if st.Status != "delivered" {
			t.Fatalf("status = %+v", st)
		}
		annWS.WaitEvent(t, "message_status_update", `"status":"delivered"`)
		// Cursor semantics: marking m2 marked m1 too.
		ann.Must(t, 200, "GET", "/api/status/"+m1.MessageID, nil).Decode(t, &st)
		if st.Status != "delivered" || st.DeliveredAt == "" {
			t.Fatalf("earlier message = %+v", st)
		}
		// A message via the socket's message_status.
		ack := bobWS.Call(t, "message_status", map[string]any{"messageId": m1.MessageID, "status": "seen"}, 10)
		if !strings.Contains(string(ack), `"status":"seen"`) {
			t.Fatalf("ack = %s", ack)
		}
		annWS.WaitEvent(t, "message_status_update", `"status":"seen"`)
		// Forward only: delivered after seen changes nothing.
		bob.Must(t, 200, "POST", "/api/status", map[string]any{"messageId": m1.MessageID, "status": "delivered"}).Decode(t, &st)
		if st.Status != "seen" {
			t.Fatalf("moved backwards: %+v", st)
		}
		ann.Must(t, 200, "GET", "/api/status/"+m1.MessageID, nil).Decode(t, &st)
		if st.Status != "seen" || st.SeenAt == "" || st.DeliveredAt == "" {
			t.Fatalf("m1 = %+v", st)
		}
		st = struct{ Status, DeliveredAt, SeenAt string }{}
		ann.Must(t, 200, "GET", "/api/status/"+m2.MessageID, nil).Decode(t, &st)
		if st.Status != "delivered" || st.SeenAt != "" {
			t.Fatalf("m2 = %+v (only m1 was seen)", st)
		}
		t.Run("ReadReceiptsOff", func(t *testing.T) {
			bob.Must(t, 200, "PUT", "/api/users/me/settings", map[string]any{"readReceipts": false})
			defer bob.Must(t, 200, "PUT", "/api/users/me/settings", map[string]any{"readReceipts": true})
			m3 := send(t, ann, bob, "r3", nil)
			bob.Must(t, 200, "POST", "/api/status", map[string]any{"messageId": m3.MessageID, "status": "seen"})
			st = struct{ Status, DeliveredAt, SeenAt string }{}
			ann.Must(t, 200, "GET", "/api/status/"+m3.MessageID, nil).Decode(t, &st)
			if st.Status != "delivered" || st.SeenAt != "" {
				t.Fatalf("seen leaked with read receipts off: %+v", st)
			}
			// A barrier, not a sleep: a message Bob sends after the mark
			// reaches Ann after any event the mark made.
			marker := send(t, bob, ann, "marker", nil)
			annWS.WaitEvent(t, "new_message", marker.MessageID)
			for _, d := range annWS.Events("message_status_update") {
				if strings.Contains(string(d), m3.MessageID) && strings.Contains(string(d), `"seen"`) {
					t.Fatalf("seen event sent with read receipts off: %s", d)
				}
			}
		})
	})

	t.Run("Typing", func(t *testing.T) {
		ann.Must(t, 200, "POST", "/api/messages/typing", map[string]any{"recipientId": bob.UserID})
		bobWS.WaitEvent(t, "typing_indicator", `"isTyping":true`)
		ack := bobWS.Call(t, "typing", map[string]any{"recipientId": ann.UserID, "isTyping": false}, 20)
		if !strings.Contains(string(ack), `"success":true`) {
			t.Fatalf("ack = %s", ack)
		}
		annWS.WaitEvent(t, "typing_indicator", `"isTyping":false`)
		// The rate limit is TestTypingRateLimit's, on a clock that stands still.
	})

	t.Run("ReactEditDelete", func(t *testing.T) {
		m := send(t, ann, bob, "original", nil)
		var rr struct{ MessageID, Reaction string }
		bob.Must(t, 200, "POST", "/api/messages/react", map[string]any{"messageId": m.MessageID, "reaction": "👍"}).Decode(t, &rr)
		annWS.WaitEvent(t, "message_reaction", "👍")
		bob.Must(t, 200, "POST", "/api/messages/react", map[string]any{"messageId": m.MessageID, "reaction": "❤️"}) // one per user
		eve.Must(t, 404, "POST", "/api/messages/react", map[string]any{"messageId": m.MessageID, "reaction": "x"})
		bob.Must(t, 400, "POST", "/api/messages/react", map[string]any{"messageId": m.MessageID, "reaction": strings.Repeat("x", 33)})
		h := history(t, ann, bob, "?limit=1")
		if len(h[0].Reactions) != 1 || h[0].Reactions[0].Reaction != "❤️" || h[0].Reactions[0].UserID != bob.UserID {
			t.Fatalf("reactions = %+v", h[0].Reactions)
		}
		bob.Must(t, 200, "POST", "/api/messages/react", map[string]any{"messageId": m.MessageID, "reaction": ""})
		if h = history(t, ann, bob, "?limit=1"); len(h[0].Reactions) != 0 {
			t.Fatalf("reaction not removed: %+v", h[0].Reactions)
		}

		var reply sendRes
		bob.Must(t, 201, "POST", "/api/messages/reply", map[string]any{"recipientId": ann.UserID, "encryptedContent": "re", "replyToId": m.MessageID}).Decode(t, &reply)
		if h = history(t, ann, bob, "?limit=1"); h[0].ReplyToID != m.MessageID {
			t.Fatalf("reply = %+v", h[0])
		}

		bob.Must(t, 403, "POST", "/api/messages/edit", map[string]any{"messageId": m.MessageID, "encryptedContent": "hijack"})
		ann.Must(t, 200, "POST", "/api/messages/edit", map[string]any{"messageId": m.MessageID, "encryptedContent": "edited"})
		bobWS.WaitEvent(t, "message_edited", `"content":"edited"`)
		h = history(t, bob, ann, "?limit=2")
		if *h[1].Content != "edited" || h[1].EditedAt == nil {
			t.Fatalf("edited = %+v", h[1])
		}

		bob.Must(t, 403, "POST", "/api/messages/delete", map[string]any{"messageId": m.MessageID, "deleteForEveryone": true})
		bob.Must(t, 200, "POST", "/api/messages/delete", map[string]any{"messageId": reply.MessageID, "deleteForEveryone": false})
		if h = history(t, bob, ann, "?limit=1"); h[0].MessageID == reply.MessageID {
			t.Fatal("deleted-for-me message still in the caller's history")
		}
		if h = history(t, ann, bob, "?limit=1"); h[0].MessageID != reply.MessageID {
			t.Fatal("delete for me hid the message for the other side")
		}
		ann.Must(t, 200, "POST", "/api/messages/delete", map[string]any{"messageId": m.MessageID, "deleteForEveryone": true})
		bobWS.WaitEvent(t, "message_deleted", m.MessageID)
		for _, c := range []*apitest.Client{ann, bob} {
			peer := bob
			if c == bob {
				peer = ann
			}
			for _, x := range history(t, c, peer, "?limit=5") {
				if x.MessageID == m.MessageID && (!x.DeletedForEveryone || x.Content != nil) {
					t.Fatalf("not a tombstone: %+v", x)
				}
			}
		}
		ann.Must(t, 400, "POST", "/api/messages/edit", map[string]any{"messageId": m.MessageID, "encryptedContent": "again"})
	})

	t.Run("Block", func(t *testing.T) {
		eve.Must(t, 200, "POST", "/api/users/block", map[string]any{"blockedUserId": ann.UserID})
		r := ann.Must(t, 403, "POST", "/api/messages/send", map[string]any{"recipientId": eve.UserID, "encryptedContent": "x"})
		if r.Error.Code != "blocked" {
			t.Fatalf("code = %s", r.Error.Code)
		}
		eve.Must(t, 403, "POST", "/api/messages/send", map[string]any{"recipientId": ann.UserID, "encryptedContent": "x"})
		if r := ann.Must(t, 403, "POST", "/api/messages/schedule", map[string]any{"recipientId": eve.UserID, "encryptedContent": "x",
			"scheduledAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}); r.Error.Code != "blocked" {
			t.Fatalf("schedule across a block: code = %s", r.Error.Code)
		}
		ann.Must(t, 403, "POST", "/api/messages/typing", map[string]any{"recipientId": eve.UserID})
		eve.Must(t, 200, "POST", "/api/users/unblock", map[string]any{"blockedUserId": ann.UserID})
	})

	t.Run("Schedule", func(t *testing.T) {
		past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
		ann.Must(t, 400, "POST", "/api/messages/schedule", map[string]any{"recipientId": bob.UserID, "encryptedContent": "x", "scheduledAt": past})
		ann.Must(t, 400, "POST", "/api/messages/schedule", map[string]any{"recipientId": bob.UserID, "encryptedContent": "x",
			"scheduledAt": time.Now().Add(400 * 24 * time.Hour).UTC().Format(time.RFC3339)})
		ann.Must(t, 400, "POST", "/api/messages/schedule", map[string]any{"recipientId": bob.UserID, "encryptedContent": "x", "scheduledAt": "tomorrow"})
		var later, soon struct{ MessageID, Status, ScheduledAt string }
		ann.Must(t, 201, "POST", "/api/messages/schedule", map[string]any{"recipientId": bob.UserID, "encryptedContent": "later",
			"scheduledAt": time.Now().Add(time.Hour).UnixMilli()}).Decode(t, &later)
		ann.Must(t, 201, "POST", "/api/messages/schedule", map[string]any{"recipientId": bob.UserID, "encryptedContent": "soon",
			"scheduledAt": time.Now().Add(700 * time.Millisecond).UTC().Format(time.RFC3339Nano)}).Decode(t, &soon)
		if later.Status != "scheduled" {
			t.Fatalf("schedule = %+v", later)
		}
		var pending []struct{ MessageID string }
		ann.Must(t, 200, "GET", "/api/messages/scheduled", nil).Decode(t, &pending)
		if len(pending) != 2 || pending[0].MessageID != soon.MessageID {
			t.Fatalf("pending = %+v", pending)
		}
		bob.Must(t, 404, "POST", "/api/messages/scheduled/cancel", map[string]any{"messageId": later.MessageID})
		ann.Must(t, 200, "POST", "/api/messages/scheduled/cancel", map[string]any{"messageId": later.MessageID})
		ann.Must(t, 404, "POST", "/api/messages/scheduled/cancel", map[string]any{"messageId": later.MessageID})
		data := bobWS.WaitEvent(t, "new_message", soon.MessageID)
		if !strings.Contains(string(data), `"content":"soon"`) {
			t.Fatalf("scheduled delivery = %s", data)
		}
		ann.Must(t, 200, "GET", "/api/messages/scheduled", nil).Decode(t, &pending)
		if len(pending) != 0 {
			t.Fatalf("still pending: %+v", pending)
		}
		n := 0
		for _, m := range history(t, bob, ann, "?limit=200") {
			if m.MessageID == soon.MessageID {
				n++
			}
			if m.MessageID == later.MessageID {
				t.Fatal("cancelled message was sent")
			}
		}
		if n != 1 {
			t.Fatalf("scheduled message appears %d times", n)
		}
	})

	t.Run("Chats", func(t *testing.T) {
		// Users of its own, so that it runs alone: Ann has chats with
		// Bob, then Dave, then Carol writes to her.
		ann, bob := apitest.Register(t, base, apitest.Unique("ann")), apitest.Register(t, base, apitest.Unique("bob"))
		dave, carol := apitest.Register(t, base, apitest.Unique("dave")), apitest.Register(t, base, apitest.Unique("carol"))
		send(t, ann, bob, "hi bob", nil)
		send(t, dave, ann, "hi ann", nil)
		send(t, carol, ann, "hi ann", nil)
		send(t, carol, ann, "are you there", nil)
		var chats []struct {
			ConversationID, Type string
			Peer                 struct{ UserID, Username string }
			LastMessage          msgView
			UnreadCount          int64
			Muted                bool
		}
		ann.Must(t, 200, "GET", "/api/chats", nil).Decode(t, &chats)
		if len(chats) != 3 || chats[0].Peer.UserID != carol.UserID || chats[0].UnreadCount != 2 || chats[0].Type != "direct" ||
			*chats[0].LastMessage.Content != "are you there" {
			t.Fatalf("chats = %+v", chats)
		}
		ann.Must(t, 200, "POST", "/api/users/mute", map[string]any{"mutedUserId": carol.UserID})
		send(t, ann, bob, "bump", nil)
		ann.Must(t, 200, "GET", "/api/chats", nil).Decode(t, &chats)
		if chats[0].Peer.UserID != bob.UserID || !chats[1].Muted {
			t.Fatalf("chats after bump = %+v", chats)
		}
		ann.Must(t, 200, "GET", "/api/chats?limit=1", nil).Decode(t, &chats)
		if len(chats) != 1 {
			t.Fatalf("limit ignored: %d", len(chats))
		}
	})
}

// TestOfflineSync sends N messages to a user who is offline and checks that
// sync returns all N in order, paged with a cursor, and then the live tail.
func TestOfflineSync(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := apitest.MustStart(t, backend, nil)
			ann, bob := apitest.Register(t, srv.URL(), "ann"), apitest.Register(t, srv.URL(), "bob")
			const n = 37
			var ids []string
			for i := 0; i < n; i++ {
				ids = append(ids, send(t, ann, bob, fmt.Sprintf("m%d", i), nil).MessageID)
			}
			var got []string
			cursor, pages := "", 0
			for {
				var page struct {
					Items []struct {
						Cursor, Event string
						Data          msgView
					}
					NextCursor string
					HasMore    bool
				}
				q := "/api/sync?limit=10"
				if cursor != "" {
					q += "&cursor=" + cursor
				}
				bob.Must(t, 200, "GET", q, nil).Decode(t, &page)
				pages++
				for _, it := range page.Items {
					if it.Event == "new_message" {
						got = append(got, it.Data.MessageID)
					}
				}
				cursor = page.NextCursor
				if !page.HasMore {
					break
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(ids) || pages != 4 {
				t.Fatalf("sync got %d messages in %d pages, want %d in order", len(got), pages, n)
			}
			// Connect, then sync from the cursor: nothing is missed.
			ws := apitest.DialWS(t, srv.URL(), bob.Token)
			late := send(t, ann, bob, "late", nil)
			ws.WaitEvent(t, "new_message", late.MessageID)
			var tail struct {
				Items []struct{ Event string }
			}
			bob.Must(t, 200, "GET", "/api/sync?cursor="+cursor, nil).Decode(t, &tail)
			if len(tail.Items) != 1 {
				t.Fatalf("tail = %+v", tail)
			}
			// Once marked delivered, a sync without cursor has nothing.
			bob.Must(t, 200, "POST", "/api/status", map[string]any{"messageId": late.MessageID, "status": "delivered"})
			var empty struct{ Items []any }
			bob.Must(t, 200, "GET", "/api/sync", nil).Decode(t, &empty)
			if len(empty.Items) != 0 {
				t.Fatalf("after delivered: %d items", len(empty.Items))
			}
			bob.Must(t, 400, "GET", "/api/sync?cursor=abc", nil)
		})
	}
}

// TestScheduleSurvivesRestart schedules a message, stops the server before
// it is due, and starts a new server on the same database: the message is
// sent once, shortly after its time.
func TestScheduleSurvivesRestart(t *testing.T) {
	t.Parallel()
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dsn := testdb.DSN(t, backend)
			dir := t.TempDir()
			cfg := func(c *server.Config) { c.DB, c.DataDir, c.ScheduleTick = dsn, dir, 100*time.Millisecond }
			srv := apitest.MustStart(t, backend, cfg)
			ann, bob := apitest.Register(t, srv.URL(), "ann"), apitest.Register(t, srv.URL(), "bob")
			due := time.Now().Add(1500 * time.Millisecond)
			var sch struct{ MessageID string }
			ann.Must(t, 201, "POST", "/api/messages/schedule", map[string]any{"recipientId": bob.UserID, "encryptedContent": "from the past",
				"scheduledAt": due.UnixMilli()}).Decode(t, &sch)
			srv.Close()
			time.Sleep(time.Until(due) + 300*time.Millisecond) // due while no server runs

			srv2 := apitest.MustStart(t, backend, cfg)
			bob.Base, ann.Base = srv2.URL(), srv2.URL()
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				if h := history(t, bob, ann, ""); len(h) > 0 {
					if len(h) != 1 || h[0].MessageID != sch.MessageID {
						t.Fatalf("history = %+v", h)
					}
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Fatal("scheduled message not sent after restart")
		})
	}
}

// TestReadingHistoryMakesNoPeer checks that reading the (empty) history
// with a stranger neither creates a chat nor subscribes the reader to the
// stranger's presence, while one exchanged message does.
func TestReadingHistoryMakesNoPeer(t *testing.T) {
	srv := apitest.MustStart(t, "sqlite", nil)
	eve, zed := apitest.Register(t, srv.URL(), "eve"), apitest.Register(t, srv.URL(), "zed")
	if h := history(t, eve, zed, ""); len(h) != 0 {
		t.Fatalf("history = %+v", h)
	}
	var chats []any
	eve.Must(t, 200, "GET", "/api/chats", nil).Decode(t, &chats)
	if len(chats) != 0 {
		t.Fatalf("reading created a chat: %+v", chats)
	}
	eveWS := apitest.DialWS(t, srv.URL(), eve.Token)
	zedWS := apitest.DialWS(t, srv.URL(), zed.Token)
	time.Sleep(300 * time.Millisecond)
	if got := eveWS.Events("presence_update"); len(got) != 0 {
		t.Fatalf("presence leaked to a non-peer: %s", got)
	}
	send(t, zed, eve, "hello", nil)
	zedWS.Close() // now a peer: going offline reaches eve after the grace period
	eveWS.WaitEvent(t, "presence_update", zed.UserID)
}

// TestTypingRateLimit: typing indicators are limited per sender (a burst of
// 10, then 5 a second), on the server's clock, which stands still here so
// that a slow machine cannot refill the bucket between requests.
func TestTypingRateLimit(t *testing.T) {
	clock := jobs.NewFake(time.Now())
	srv := apitest.MustStart(t, "sqlite", func(c *server.Config) { c.Clock = clock })
	ann, bob := apitest.Register(t, srv.URL(), "ann"), apitest.Register(t, srv.URL(), "bob")
	typing := func() int {
		return ann.Do(t, "POST", "/api/messages/typing", map[string]any{"recipientId": bob.UserID}).Status
	}
	for i := 0; i < 10; i++ {
		if st := typing(); st != 200 {
			t.Fatalf("typing %d of the burst: %d", i+1, st)
		}
	}
	if st := typing(); st != 429 {
		t.Fatalf("typing past the burst: %d, want 429", st)
	}
	clock.Advance(time.Second)
	if st := typing(); st != 200 {
		t.Fatalf("typing a second later: %d, want 200", st)
	}
}
