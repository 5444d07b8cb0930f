package server_test

import (
	"strings"
	"testing"

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
			ann.Must(201, "POST", "/api/groups/create", map[string]any{"name": "G", "members": []string{cat.UserID}}).Decode(t, &g)

			first := send(t, ann, bob, "one", map[string]any{"clientMessageId": "k1"})
			again := send(t, ann, bob, "one", map[string]any{"clientMessageId": "k1"})
			if again.MessageID != first.MessageID {
				t.Fatalf("retry in the same conversation made a new message: %s then %s", first.MessageID, again.MessageID)
			}
			ann.Must(409, "POST", "/api/messages/send", map[string]any{"recipientId": cat.UserID, "encryptedContent": "two", "type": "text", "clientMessageId": "k1"})
			ann.Must(409, "POST", "/api/group-messages/send", map[string]any{"groupId": g.GroupID, "encryptedContent": "three", "type": "text", "clientMessageId": "k1"})
			// The other way round: a group key reused for a direct message.
			ann.Must(201, "POST", "/api/group-messages/send", map[string]any{"groupId": g.GroupID, "encryptedContent": "four", "type": "text", "clientMessageId": "k2"})
			ann.Must(409, "POST", "/api/messages/send", map[string]any{"recipientId": bob.UserID, "encryptedContent": "five", "type": "text", "clientMessageId": "k2"})
			// A stranger's key of a direct message opens no group to her.
			send(t, eve, bob, "hi", map[string]any{"clientMessageId": "k3"})
			eve.Must(404, "POST", "/api/group-messages/send", map[string]any{"groupId": g.GroupID, "encryptedContent": "in", "type": "text", "clientMessageId": "k3"})
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
				ann.Must(201, "POST", "/api/groups/create", map[string]any{"name": "G", "members": []string{bob.UserID}}).Decode(t, &g)
				addStatus := make(chan int, 1)
				go func() {
					addStatus <- ann.Do("POST", "/api/groups/members/add", map[string]any{"groupId": g.GroupID, "members": []string{cat.UserID}}).Status
				}()
				ann.Must(200, "POST", "/api/groups/delete", map[string]any{"groupId": g.GroupID})
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
