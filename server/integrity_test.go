package server_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
)

// Regression tests of issue #12's data defects, on every backend.

// TestClientMessageIDAcrossConversations (defect 6): a clientMessageId
// makes a retry in the same conversation safe; reused for another
// conversation it is 409 conflict, and it never answers with, or reveals,
// a message of a conversation the caller may not see.
func TestClientMessageIDAcrossConversations(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := apitest.MustStart(t, backend, nil)
			ann := apitest.Register(t, srv.URL(), apitest.Unique("ann"))
			bob := apitest.Register(t, srv.URL(), apitest.Unique("bob"))
			cat := apitest.Register(t, srv.URL(), apitest.Unique("cat"))
			eve := apitest.Register(t, srv.URL(), apitest.Unique("eve"))
			var g struct{ GroupID string }
			ann.Must(t, 201, "POST", "/api/groups/create", map[string]any{"name": "G", "members": []string{cat.UserID}}).Decode(t, &g)

			first := send(t, ann, bob, "one", map[string]any{"clientMessageId": "k1"})
			again := send(t, ann, bob, "one", map[string]any{"clientMessageId": "k1"})
			if again.MessageID != first.MessageID {
				t.Fatalf("retry in the same conversation made a new message: %s then %s", first.MessageID, again.MessageID)
			}
			ann.Must(t, 409, "POST", "/api/messages/send", map[string]any{"recipientId": cat.UserID, "encryptedContent": "two", "type": "text", "clientMessageId": "k1"})
			ann.Must(t, 409, "POST", "/api/group-messages/send", map[string]any{"groupId": g.GroupID, "encryptedContent": "three", "type": "text", "clientMessageId": "k1"})
			// The other way round: a group key reused for a direct message.
			ann.Must(t, 201, "POST", "/api/group-messages/send", map[string]any{"groupId": g.GroupID, "encryptedContent": "four", "type": "text", "clientMessageId": "k2"})
			ann.Must(t, 409, "POST", "/api/messages/send", map[string]any{"recipientId": bob.UserID, "encryptedContent": "five", "type": "text", "clientMessageId": "k2"})
			// A stranger's key of a direct message opens no group to her.
			send(t, eve, bob, "hi", map[string]any{"clientMessageId": "k3"})
			eve.Must(t, 404, "POST", "/api/group-messages/send", map[string]any{"groupId": g.GroupID, "encryptedContent": "in", "type": "text", "clientMessageId": "k3"})
			if h := groupHistory(t, ann, g.GroupID); len(h) != 1 {
				t.Fatalf("group history has %d messages, want 1", len(h))
			}
			if h := history(t, cat, ann, ""); len(h) != 0 {
				t.Fatalf("cat got %d direct messages from ann, want 0", len(h))
			}
		})
	}
}

// TestDeleteGroupRace (defect 13): a member added at the same moment as the
// group is deleted is either refused or told: nobody added ends up in a
// group that silently vanished.
func TestDeleteGroupRace(t *testing.T) {
	t.Parallel()
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := apitest.MustStart(t, backend, nil)
			ann := apitest.Register(t, srv.URL(), apitest.Unique("ann"))
			bob := apitest.Register(t, srv.URL(), apitest.Unique("bob"))
			const tries = 40
			added := 0
			for i := 0; i < tries; i++ {
				cat := apitest.Register(t, srv.URL(), apitest.Unique("cat"))
				var g struct{ GroupID string }
				ann.Must(t, 201, "POST", "/api/groups/create", map[string]any{"name": "G", "members": []string{bob.UserID}}).Decode(t, &g)
				addStatus := make(chan int, 1)
				go func() {
					addStatus <- ann.Do(t, "POST", "/api/groups/members/add", map[string]any{"groupId": g.GroupID, "members": []string{cat.UserID}}).Status
				}()
				ann.Must(t, 200, "POST", "/api/groups/delete", map[string]any{"groupId": g.GroupID})
				switch st := <-addStatus; st {
				case 200:
					added++
					items, _ := syncAll(t, cat, "0")
					told := false
					for _, it := range items {
						told = told || (it.Event == "group_deleted" && strings.Contains(string(it.Data), g.GroupID))
					}
					if !told {
						t.Fatalf("try %d: cat was added to %s but never told it was deleted (%d sync items)", i, g.GroupID, len(items))
					}
				case 404:
				default:
					t.Fatalf("try %d: add during delete answered %d", i, st)
				}
			}
			t.Logf("%d of %d additions won the race", added, tries)
		})
	}
}

// TestDeletedContentLeavesSync (defect 3): once a message is deleted for
// everyone its content (first and edited) is nowhere in anyone's sync log;
// after a delete for me, later changes of the message (an edit, a
// reaction) reach the one who deleted it neither by sync nor by socket.
func TestDeletedContentLeavesSync(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := apitest.MustStart(t, backend, nil)
			ann := apitest.Register(t, srv.URL(), apitest.Unique("ann"))
			bob := apitest.Register(t, srv.URL(), apitest.Unique("bob"))
			var g struct{ GroupID string }
			ann.Must(t, 201, "POST", "/api/groups/create", map[string]any{"name": "G", "members": []string{bob.UserID}}).Decode(t, &g)
			leaks := func(t *testing.T, c *apitest.Client, secrets ...string) {
				t.Helper()
				for _, cursor := range []string{"0", ""} {
					var page struct{ Items []json.RawMessage }
					c.Must(t, 200, "GET", "/api/sync?limit=200&cursor="+cursor, nil).Decode(t, &page)
					for _, it := range page.Items {
						for _, s := range secrets {
							if strings.Contains(string(it), s) {
								t.Fatalf("sync (cursor %q) still holds %q: %s", cursor, s, it)
							}
						}
					}
				}
			}
			t.Run("DeleteForEveryone", func(t *testing.T) {
				d := send(t, ann, bob, "direct-secret", nil)
				ann.Must(t, 200, "POST", "/api/messages/edit", map[string]any{"messageId": d.MessageID, "encryptedContent": "direct-edited-secret"})
				ann.Must(t, 200, "POST", "/api/messages/delete", map[string]any{"messageId": d.MessageID, "deleteForEveryone": true})
				gm := groupSend(t, ann, g.GroupID, "group-secret")
				ann.Must(t, 200, "POST", "/api/messages/edit", map[string]any{"messageId": gm.MessageID, "encryptedContent": "group-edited-secret"})
				ann.Must(t, 200, "POST", "/api/group-messages/delete", map[string]any{"messageId": gm.MessageID, "groupId": g.GroupID, "deleteForEveryone": true})
				for _, c := range []*apitest.Client{ann, bob} {
					leaks(t, c, "direct-secret", "direct-edited-secret", "group-secret", "group-edited-secret")
				}
			})
			t.Run("DeleteForMe", func(t *testing.T) {
				bws := apitest.DialWS(t, srv.URL(), bob.Token)
				d := send(t, ann, bob, "first", nil)
				bob.Must(t, 200, "POST", "/api/messages/delete", map[string]any{"messageId": d.MessageID, "deleteForEveryone": false})
				ann.Must(t, 200, "POST", "/api/messages/edit", map[string]any{"messageId": d.MessageID, "encryptedContent": "later-edit-secret"})
				ann.Must(t, 200, "POST", "/api/messages/react", map[string]any{"messageId": d.MessageID, "reaction": "👍"})
				// A barrier: bob's socket gets this message after the edit
				// and the reaction would have arrived.
				marker := send(t, ann, bob, "marker", nil)
				bws.WaitEvent(t, "new_message", marker.MessageID)
				for _, name := range []string{"message_edited", "message_reaction"} {
					if got := bws.Events(name); len(got) != 0 {
						t.Fatalf("bob's socket got %s of the message he deleted: %s", name, got[0])
					}
				}
				leaks(t, bob, "later-edit-secret", "👍")
				var page struct{ Items []struct{ Event string } }
				bob.Must(t, 200, "GET", "/api/sync?limit=200&cursor=0", nil).Decode(t, &page)
				deleted := false
				for _, it := range page.Items {
					deleted = deleted || it.Event == "message_deleted"
				}
				if !deleted {
					t.Fatal("bob's other devices never learn he deleted the message")
				}
			})
		})
	}
}

// TestRemovedMemberKeepsWhatTheySaw (defect 4): a member removed from a
// group keeps history and sync access to what was sent while they were a
// member, and gets nothing sent after.
func TestRemovedMemberKeepsWhatTheySaw(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := apitest.MustStart(t, backend, nil)
			ann := apitest.Register(t, srv.URL(), apitest.Unique("ann"))
			bob := apitest.Register(t, srv.URL(), apitest.Unique("bob"))
			eve := apitest.Register(t, srv.URL(), apitest.Unique("eve"))
			var g struct{ GroupID string }
			ann.Must(t, 201, "POST", "/api/groups/create", map[string]any{"name": "G", "members": []string{bob.UserID}}).Decode(t, &g)
			_, cursor := syncAll(t, bob, "0")
			groupSend(t, ann, g.GroupID, "while-member")
			ann.Must(t, 200, "POST", "/api/groups/members/remove", map[string]any{"groupId": g.GroupID, "memberId": bob.UserID})
			groupSend(t, ann, g.GroupID, "after-removal")

			items, _ := syncAll(t, bob, cursor)
			var events []string
			got := ""
			for _, it := range items {
				events = append(events, it.Event)
				got += string(it.Data)
			}
			if !strings.Contains(got, "while-member") || !slices.Contains(events, "group_member_removed") {
				t.Fatalf("sync from the saved cursor: events %v; want the message sent while a member, then the removal", events)
			}
			if strings.Contains(got, "after-removal") {
				t.Fatalf("sync gave the removed member a message sent after: %v", events)
			}
			h := groupHistory(t, bob, g.GroupID)
			if len(h) != 1 || h[0].Content == nil || *h[0].Content != "while-member" {
				t.Fatalf("former member's history = %+v; want only the message sent while a member", h)
			}
			eve.Must(t, 404, "GET", "/api/group-messages/"+g.GroupID, nil)
			bob.Must(t, 404, "POST", "/api/group-messages/send", map[string]any{"groupId": g.GroupID, "encryptedContent": "x", "type": "text"})
			// Back in the group, they read from their new joining on.
			ann.Must(t, 200, "POST", "/api/groups/members/add", map[string]any{"groupId": g.GroupID, "members": []string{bob.UserID}})
			groupSend(t, ann, g.GroupID, "after-return")
			if h := groupHistory(t, bob, g.GroupID); len(h) != 1 || *h[0].Content != "after-return" {
				t.Fatalf("returned member's history = %d messages", len(h))
			}
		})
	}
}

// TestSeenWhileReceiptsOffStaysHidden (defect 5): a message marked seen
// while read receipts were off is never shown as seen because of that mark,
// not even after the reader turns receipts on again; a later seen mark
// made with receipts on shows as usual.
func TestSeenWhileReceiptsOffStaysHidden(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := apitest.MustStart(t, backend, nil)
			ann := apitest.Register(t, srv.URL(), apitest.Unique("ann"))
			bob := apitest.Register(t, srv.URL(), apitest.Unique("bob"))
			cat := apitest.Register(t, srv.URL(), apitest.Unique("cat"))
			var g struct{ GroupID string }
			ann.Must(t, 201, "POST", "/api/groups/create", map[string]any{"name": "G", "members": []string{bob.UserID, cat.UserID}}).Decode(t, &g)
			status := func(messageID string) string {
				var st struct{ Status string }
				ann.Must(t, 200, "GET", "/api/status/"+messageID, nil).Decode(t, &st)
				return st.Status
			}
			groupSeen := func(messageID string) int {
				var r struct{ Seen []struct{ UserID string } }
				ann.Must(t, 200, "GET", "/api/group-messages/"+messageID+"/status", nil).Decode(t, &r)
				return len(r.Seen)
			}
			d := send(t, ann, bob, "direct", nil)
			gm := groupSend(t, ann, g.GroupID, "group")
			bob.Must(t, 200, "PUT", "/api/users/me/settings", map[string]any{"readReceipts": false})
			bob.Must(t, 200, "POST", "/api/status", map[string]any{"messageId": d.MessageID, "status": "seen"})
			bob.Must(t, 200, "POST", "/api/group-messages/status", map[string]any{"messageId": gm.MessageID, "groupId": g.GroupID, "status": "seen"})
			bob.Must(t, 200, "PUT", "/api/users/me/settings", map[string]any{"readReceipts": true})
			if got := status(d.MessageID); got != "delivered" {
				t.Fatalf("direct message read with receipts off shows %q after receipts came back on", got)
			}
			if n := groupSeen(gm.MessageID); n != 0 {
				t.Fatalf("group receipts show %d readers; the read was made with receipts off", n)
			}
			// Marked again with receipts on: now it shows.
			bob.Must(t, 200, "POST", "/api/status", map[string]any{"messageId": d.MessageID, "status": "seen"})
			if got := status(d.MessageID); got != "seen" {
				t.Fatalf("direct message marked seen with receipts on shows %q", got)
			}
			bob.Must(t, 200, "POST", "/api/group-messages/status", map[string]any{"messageId": gm.MessageID, "groupId": g.GroupID, "status": "seen"})
			if n := groupSeen(gm.MessageID); n != 1 {
				t.Fatalf("group receipts show %d readers after a seen mark with receipts on, want 1", n)
			}
		})
	}
}

// TestEmailTaken (defect 8): registering with an address another account
// has, in any case, is 409 email_taken; the reset goes to the one owner.
func TestEmailTaken(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := apitest.MustStart(t, backend, nil)
			ann := apitest.Register(t, srv.URL(), apitest.Unique("ann")) // ann…@example.test
			c := apitest.NewClient(srv.URL())
			res := c.Do(t, "POST", "/api/users/register", map[string]any{"username": apitest.Unique("eve"), "password": "password-eve-1",
				"deviceId": "d1", "publicKey": "pk", "email": strings.ToUpper(ann.Username) + "@Example.TEST"})
			if res.Status != 409 || res.Error.Code != "email_taken" {
				t.Fatalf("register with a taken address: %d %s", res.Status, res.Error.Code)
			}
		})
	}
}

// TestChatPeerPresence: the chat list shows a peer's presence as GET
// /api/users/{id}/presence does: online, and last seen only where the
// peer's setting allows, nothing across a block.
func TestChatPeerPresence(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := apitest.MustStart(t, backend, nil)
			ann := apitest.Register(t, srv.URL(), apitest.Unique("ann"))
			bob := apitest.Register(t, srv.URL(), apitest.Unique("bob"))
			send(t, bob, ann, "hi", nil)
			peer := func() (online bool, lastSeen *string) {
				var chats []struct {
					Peer struct {
						Online   bool
						LastSeen *string
					}
				}
				ann.Must(t, 200, "GET", "/api/chats", nil).Decode(t, &chats)
				if len(chats) != 1 {
					t.Fatalf("%d chats", len(chats))
				}
				return chats[0].Peer.Online, chats[0].Peer.LastSeen
			}
			bob.Must(t, 200, "PUT", "/api/users/me/settings", map[string]any{"lastSeenVisibility": "contacts"})
			if _, seen := peer(); seen != nil {
				t.Fatalf("last seen shown to a non-contact: %s", *seen)
			}
			bob.Must(t, 201, "POST", "/api/contacts", map[string]string{"contactId": ann.UserID})
			ws := apitest.DialWS(t, srv.URL(), bob.Token)
			_ = ws
			deadline := time.Now().Add(20 * time.Second)
			for {
				if online, _ := peer(); online {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("peer with a socket never shown online")
				}
				time.Sleep(20 * time.Millisecond)
			}
			bob.Must(t, 200, "POST", "/api/users/block", map[string]any{"blockedUserId": ann.UserID})
			if online, seen := peer(); online || seen != nil {
				t.Fatalf("presence across a block: online %v, last seen %v", online, seen)
			}
		})
	}
}
