package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/server"
)

type groupView struct {
	GroupID, Name, Description, CreatedBy, OwnerID, Role string
	MembersCount                                         int
	Settings                                             struct{ OnlyAdminsCanSend, OnlyAdminsCanAddMembers bool }
	Members                                              []struct {
		UserID, Role, JoinedAt string
		IsOwner                bool
	}
}

func (g groupView) role(userID string) string {
	for _, m := range g.Members {
		if m.UserID == userID {
			return m.Role
		}
	}
	return ""
}

type groupSendRes struct {
	MessageID, GroupID, SentAt string
	Seq                        int64
}

func groupSend(t *testing.T, c *apitest.Client, groupID, content string) groupSendRes {
	t.Helper()
	var r groupSendRes
	c.Must(t, 201, "POST", "/api/group-messages/send", map[string]any{"groupId": groupID, "encryptedContent": content, "type": "text"}).Decode(t, &r)
	return r
}

func groupHistory(t *testing.T, c *apitest.Client, groupID string) []msgView {
	t.Helper()
	var out []msgView
	c.Must(t, 200, "GET", "/api/group-messages/"+groupID+"?limit=200", nil).Decode(t, &out)
	return out
}

func getGroup(t *testing.T, c *apitest.Client, groupID string) groupView {
	t.Helper()
	var g groupView
	c.Must(t, 200, "GET", "/api/groups/"+groupID, nil).Decode(t, &g)
	return g
}

// syncAll pages through /api/sync from cursor and returns the events.
func syncAll(t *testing.T, c *apitest.Client, cursor string) (items []struct {
	Event string
	Data  json.RawMessage
}, next string) {
	t.Helper()
	for {
		var page struct {
			Items []struct {
				Event string
				Data  json.RawMessage
			}
			NextCursor string
			HasMore    bool
		}
		c.Must(t, 200, "GET", "/api/sync?limit=200&cursor="+cursor, nil).Decode(t, &page)
		items = append(items, page.Items...)
		cursor = page.NextCursor
		if !page.HasMore {
			return items, cursor
		}
	}
}

// TestGroups drives API.md §5 end to end over REST and the plain
// WebSocket, on every backend.
func TestGroups(t *testing.T) {
	t.Parallel()
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := apitest.MustStart(t, backend, nil)
			testGroups(t, srv)
		})
	}
}

// What a subtest of testGroups asks setup for.
const (
	usersOnly = iota // five users with their sockets
	withGroup        // and the group Trip: Ann (admin) with Bob and Cat, Cat then blocking Ann
	withFirst        // and Ann's first message in it
)

func testGroups(t *testing.T, srv *server.Server) {
	base := srv.URL()
	var (
		ann, bob, cat, dan, eve           *apitest.Client
		annWS, bobWS, catWS, danWS, eveWS *apitest.WS
		bobCursor                         string
		g                                 groupView
		m1                                groupSendRes
	)
	// setup gives each subtest a world of its own (new users, sockets
	// closed when it ends), so that any subtest runs alone.
	setup := func(t *testing.T, upTo int) {
		t.Helper()
		ann, bob, cat, dan, eve = apitest.Register(t, base, apitest.Unique("ann")), apitest.Register(t, base, apitest.Unique("bob")),
			apitest.Register(t, base, apitest.Unique("cat")), apitest.Register(t, base, apitest.Unique("dan")),
			apitest.Register(t, base, apitest.Unique("eve"))
		annWS, bobWS, catWS, danWS, eveWS = apitest.DialWS(t, base, ann.Token), apitest.DialWS(t, base, bob.Token),
			apitest.DialWS(t, base, cat.Token), apitest.DialWS(t, base, dan.Token), apitest.DialWS(t, base, eve.Token)
		var page struct{ NextCursor string }
		bob.Must(t, 200, "GET", "/api/sync", nil).Decode(t, &page)
		bobCursor = page.NextCursor
		if upTo >= withGroup {
			ann.Must(t, 201, "POST", "/api/groups/create", map[string]any{"name": "Trip", "description": "Lisbon",
				"members": []string{bob.UserID, cat.UserID}}).Decode(t, &g)
			for _, ws := range []*apitest.WS{annWS, bobWS, catWS} {
				ws.WaitEvent(t, "group_member_added", g.GroupID)
			}
			cat.Must(t, 200, "POST", "/api/users/block", map[string]any{"blockedUserId": ann.UserID})
		}
		if upTo >= withFirst {
			m1 = groupSend(t, ann, g.GroupID, "hello all")
			for _, ws := range []*apitest.WS{annWS, bobWS, catWS} {
				ws.WaitEvent(t, "new_group_message", m1.MessageID)
			}
		}
	}

	t.Run("Create", func(t *testing.T) {
		setup(t, usersOnly)
		ann.Must(t, 400, "POST", "/api/groups/create", map[string]any{"name": "  ", "members": []string{bob.UserID}})
		ann.Must(t, 400, "POST", "/api/groups/create", map[string]any{"name": "x", "members": []string{"usr_nope"}})
		ann.Must(t, 403, "POST", "/api/groups/create", map[string]any{"name": "x", "createdBy": bob.UserID})
		ann.Must(t, 400, "POST", "/api/groups/create", map[string]any{"name": strings.Repeat("n", 101)})
		// Nobody can be put in a group by someone they blocked.
		eve.Must(t, 200, "POST", "/api/users/block", map[string]any{"blockedUserId": ann.UserID})
		ann.Must(t, 403, "POST", "/api/groups/create", map[string]any{"name": "x", "members": []string{eve.UserID}})
		eve.Must(t, 200, "POST", "/api/users/unblock", map[string]any{"blockedUserId": ann.UserID})
		r := ann.Must(t, 201, "POST", "/api/groups/create", map[string]any{"name": "Trip", "description": "Lisbon",
			"members": []string{bob.UserID, cat.UserID, bob.UserID, ann.UserID}})
		r.Decode(t, &g)
		if !strings.HasPrefix(g.GroupID, "group_") || g.Name != "Trip" || g.Description != "Lisbon" || g.CreatedBy != ann.UserID ||
			g.MembersCount != 3 {
			t.Fatalf("create = %s", r.Data)
		}
		for _, ws := range []*apitest.WS{annWS, bobWS, catWS} {
			ws.WaitEvent(t, "group_member_added", g.GroupID)
		}
		g = getGroup(t, bob, g.GroupID)
		if len(g.Members) != 3 || g.role(ann.UserID) != "admin" || g.role(bob.UserID) != "member" || g.OwnerID != ann.UserID {
			t.Fatalf("group = %+v", g)
		}
		// Not a member: the group does not exist for them.
		dan.Must(t, 404, "GET", "/api/groups/"+g.GroupID, nil)
		dan.Must(t, 404, "GET", "/api/group-messages/"+g.GroupID, nil)
		dan.Must(t, 404, "GET", "/api/groups/group_nope", nil)
		// Cat blocks Ann once in the group: Cat still gets Ann's group
		// messages, but no typing across the block.
		cat.Must(t, 200, "POST", "/api/users/block", map[string]any{"blockedUserId": ann.UserID})
		var mine []groupView
		bob.Must(t, 200, "GET", "/api/groups/user/"+bob.UserID, nil).Decode(t, &mine)
		if len(mine) != 1 || mine[0].GroupID != g.GroupID {
			t.Fatalf("bob's groups = %+v", mine)
		}
		bob.Must(t, 403, "GET", "/api/groups/user/"+ann.UserID, nil)
	})

	t.Run("Send", func(t *testing.T) {
		setup(t, withGroup)
		m1 = groupSend(t, ann, g.GroupID, "hello all")
		if m1.GroupID != g.GroupID || m1.Seq != 1 {
			t.Fatalf("send = %+v", m1)
		}
		for _, ws := range []*apitest.WS{bobWS, catWS, annWS} { // cat blocked ann and still gets it
			data := ws.WaitEvent(t, "new_group_message", m1.MessageID)
			if !strings.Contains(string(data), `"content":"hello all"`) || !strings.Contains(string(data), g.GroupID) {
				t.Fatalf("new_group_message = %s", data)
			}
		}
		dan.Must(t, 404, "POST", "/api/group-messages/send", map[string]any{"groupId": g.GroupID, "encryptedContent": "x"})
		ann.Must(t, 400, "POST", "/api/group-messages/send", map[string]any{"groupId": g.GroupID, "encryptedContent": ""})
		ann.Must(t, 413, "POST", "/api/group-messages/send", map[string]any{"groupId": g.GroupID, "encryptedContent": strings.Repeat("x", 64<<10+1)})
		ann.Must(t, 403, "POST", "/api/group-messages/send", map[string]any{"groupId": g.GroupID, "encryptedContent": "x", "senderId": bob.UserID})
		// The socket's send_group_message, with its ack, and idempotency.
		ack := bobWS.Call(t, "send_group_message", map[string]any{"groupId": g.GroupID, "encryptedContent": "from bob", "clientMessageId": "b-1"}, 1)
		var env struct {
			Success bool
			Data    groupSendRes
		}
		json.Unmarshal(ack, &env)
		if !env.Success || env.Data.Seq != 2 {
			t.Fatalf("ack = %s", ack)
		}
		annWS.WaitEvent(t, "new_group_message", env.Data.MessageID)
		again := bobWS.Call(t, "send_group_message", map[string]any{"groupId": g.GroupID, "encryptedContent": "retry", "clientMessageId": "b-1"}, 2)
		if !strings.Contains(string(again), env.Data.MessageID) {
			t.Fatalf("retry ack = %s", again)
		}
		ack = danWS.Call(t, "send_group_message", map[string]any{"groupId": g.GroupID, "encryptedContent": "x"}, 3)
		if !strings.Contains(string(ack), `"not_found"`) {
			t.Fatalf("outsider ack = %s", ack)
		}
		if h := groupHistory(t, cat, g.GroupID); len(h) != 2 || h[0].Seq != 2 || h[1].MessageID != m1.MessageID {
			t.Fatalf("history = %+v", h)
		}
		// Replies name a message of the same group.
		direct := send(t, ann, bob, "direct", nil)
		ann.Must(t, 400, "POST", "/api/group-messages/send", map[string]any{"groupId": g.GroupID, "encryptedContent": "re", "replyToId": direct.MessageID})
		var reply groupSendRes
		cat.Must(t, 201, "POST", "/api/group-messages/send", map[string]any{"groupId": g.GroupID, "encryptedContent": "re", "replyToId": m1.MessageID}).Decode(t, &reply)
		ann.Must(t, 200, "POST", "/api/group-messages/delete", map[string]any{"messageId": reply.MessageID, "deleteForEveryone": true})
	})

	t.Run("Typing", func(t *testing.T) {
		setup(t, withGroup)
		bob.Must(t, 200, "POST", "/api/messages/typing", map[string]any{"groupId": g.GroupID})
		annWS.WaitEvent(t, "typing_indicator", bob.UserID)
		catWS.WaitEvent(t, "typing_indicator", bob.UserID)
		ann.Must(t, 200, "POST", "/api/messages/typing", map[string]any{"groupId": g.GroupID})
		bobWS.WaitEvent(t, "typing_indicator", `"senderId":"`+ann.UserID)
		dan.Must(t, 404, "POST", "/api/messages/typing", map[string]any{"groupId": g.GroupID})
		// A barrier, not a sleep: Bob types again after Ann; once Cat has
		// Bob's second indicator, Ann's would have arrived before it.
		fromBob := func() int {
			n := 0
			for _, e := range catWS.Events("typing_indicator") {
				if strings.Contains(string(e), `"senderId":"`+bob.UserID) {
					n++
				}
			}
			return n
		}
		before := fromBob()
		bob.Must(t, 200, "POST", "/api/messages/typing", map[string]any{"groupId": g.GroupID})
		catWS.WaitFor(t, func(f apitest.Frame) bool { return f.Event == "typing_indicator" && fromBob() > before })
		for _, e := range catWS.Events("typing_indicator") {
			if strings.Contains(string(e), `"senderId":"`+ann.UserID) {
				t.Fatalf("typing crossed a block: %s", e)
			}
		}
	})

	t.Run("Receipts", func(t *testing.T) {
		setup(t, withFirst)
		var st struct{ Status string }
		bob.Must(t, 200, "POST", "/api/group-messages/status", map[string]any{"messageId": m1.MessageID, "status": "seen"}).Decode(t, &st)
		if st.Status != "seen" {
			t.Fatalf("status = %+v", st)
		}
		annWS.WaitEvent(t, "group_message_status_update", `"userId":"`+bob.UserID)
		ann.Must(t, 403, "POST", "/api/group-messages/status", map[string]any{"messageId": m1.MessageID, "status": "seen"})
		dan.Must(t, 404, "POST", "/api/group-messages/status", map[string]any{"messageId": m1.MessageID, "status": "seen"})
		cat.Must(t, 400, "POST", "/api/group-messages/status", map[string]any{"messageId": m1.MessageID, "status": "read"})
		type info struct {
			Status          string
			Recipients      int
			Delivered, Seen []struct{ UserID, At string }
		}
		var ri info
		ann.Must(t, 200, "GET", "/api/group-messages/"+m1.MessageID+"/status", nil).Decode(t, &ri)
		if ri.Recipients != 2 || len(ri.Delivered) != 1 || ri.Delivered[0].UserID != bob.UserID || ri.Delivered[0].At == "" ||
			len(ri.Seen) != 1 || ri.Status != "sent" {
			t.Fatalf("receipts = %+v", ri)
		}
		bob.Must(t, 403, "GET", "/api/group-messages/"+m1.MessageID+"/status", nil)
		dan.Must(t, 404, "GET", "/api/group-messages/"+m1.MessageID+"/status", nil)
		// Cat turns read receipts off: her seen stays private.
		cat.Must(t, 200, "PUT", "/api/users/me/settings", map[string]any{"readReceipts": false, "lastSeenVisibility": "everyone", "pushPreviews": true})
		cat.Must(t, 200, "POST", "/api/group-messages/status", map[string]any{"messageId": m1.MessageID, "status": "seen"})
		ann.Must(t, 200, "GET", "/api/group-messages/"+m1.MessageID+"/status", nil).Decode(t, &ri)
		if len(ri.Delivered) != 2 || len(ri.Seen) != 1 || ri.Status != "delivered" {
			t.Fatalf("receipts after cat = %+v", ri)
		}
		for _, m := range groupHistory(t, ann, g.GroupID) {
			if m.MessageID == m1.MessageID && m.Status != "delivered" {
				t.Fatalf("history status = %q", m.Status)
			}
		}
		// Bob's status covers Ann's message before his own; Ann's later
		// message is marked through it too (cursor).
		m3 := groupSend(t, ann, g.GroupID, "third")
		cat.Must(t, 200, "POST", "/api/group-messages/status", map[string]any{"messageId": m3.MessageID, "status": "delivered"})
		ann.Must(t, 200, "GET", "/api/group-messages/"+m3.MessageID+"/status", nil).Decode(t, &ri)
		if len(ri.Delivered) != 1 || ri.Delivered[0].UserID != cat.UserID {
			t.Fatalf("m3 receipts = %+v", ri)
		}
	})

	t.Run("ReactAndDelete", func(t *testing.T) {
		setup(t, withFirst)
		cat.Must(t, 200, "POST", "/api/group-messages/react", map[string]any{"messageId": m1.MessageID, "reaction": "👍"})
		annWS.WaitEvent(t, "group_message_reaction", `"userId":"`+cat.UserID)
		bobWS.WaitEvent(t, "group_message_reaction", `"userId":"`+cat.UserID)
		dan.Must(t, 404, "POST", "/api/group-messages/react", map[string]any{"messageId": m1.MessageID, "reaction": "x"})
		// Bob may not delete Ann's message for everyone; Ann (admin) may delete Bob's.
		bobMsg := groupSend(t, bob, g.GroupID, "oops")
		cat.Must(t, 403, "POST", "/api/group-messages/delete", map[string]any{"messageId": m1.MessageID, "deleteForEveryone": true})
		ann.Must(t, 200, "POST", "/api/group-messages/delete", map[string]any{"messageId": bobMsg.MessageID, "deleteForEveryone": true})
		catWS.WaitEvent(t, "group_message_deleted", bobMsg.MessageID)
		for _, m := range groupHistory(t, cat, g.GroupID) {
			if m.MessageID == bobMsg.MessageID && (!m.DeletedForEveryone || m.Content != nil) {
				t.Fatalf("tombstone = %+v", m)
			}
		}
		// Delete for me hides it for the caller only.
		cat.Must(t, 200, "POST", "/api/group-messages/delete", map[string]any{"messageId": m1.MessageID})
		for _, m := range groupHistory(t, cat, g.GroupID) {
			if m.MessageID == m1.MessageID {
				t.Fatal("hidden message still in cat's history")
			}
		}
		if len(groupHistory(t, bob, g.GroupID)) != 2 { // m1 and the tombstone
			t.Fatal("delete for me hid the message for others")
		}
	})

	t.Run("Members", func(t *testing.T) {
		setup(t, withFirst)
		// Settings: admins only.
		bob.Must(t, 403, "POST", "/api/groups/settings", map[string]any{"groupId": g.GroupID, "settings": map[string]any{"onlyAdminsCanAddMembers": true}})
		ann.Must(t, 200, "POST", "/api/groups/settings", map[string]any{"groupId": g.GroupID, "settings": map[string]any{"onlyAdminsCanAddMembers": true}})
		bobWS.WaitEvent(t, "group_updated", "onlyAdminsCanAddMembers\":true")
		bob.Must(t, 403, "POST", "/api/groups/members/add", map[string]any{"groupId": g.GroupID, "members": []string{dan.UserID}})
		// Dan joins later and sees only what comes after.
		var add struct {
			NewMembers   []string
			MembersCount int
		}
		ann.Must(t, 200, "POST", "/api/groups/members/add", map[string]any{"groupId": g.GroupID, "members": []string{dan.UserID, bob.UserID}}).Decode(t, &add)
		if len(add.NewMembers) != 1 || add.NewMembers[0] != dan.UserID || add.MembersCount != 4 {
			t.Fatalf("add = %+v", add)
		}
		danWS.WaitEvent(t, "group_member_added", dan.UserID)
		bobWS.WaitEvent(t, "group_member_added", dan.UserID)
		if h := groupHistory(t, dan, g.GroupID); len(h) != 0 {
			t.Fatalf("dan sees %d messages from before he joined", len(h))
		}
		dan.Must(t, 404, "POST", "/api/group-messages/react", map[string]any{"messageId": m1.MessageID, "reaction": "x"})
		after := groupSend(t, bob, g.GroupID, "welcome dan")
		danWS.WaitEvent(t, "new_group_message", after.MessageID)
		if h := groupHistory(t, dan, g.GroupID); len(h) != 1 || h[0].MessageID != after.MessageID {
			t.Fatalf("dan's history = %+v", h)
		}
		// Roles: admins only; the owner stays admin and cannot be removed.
		bob.Must(t, 403, "POST", "/api/groups/members/role", map[string]any{"groupId": g.GroupID, "memberId": bob.UserID, "newRole": "admin"})
		ann.Must(t, 200, "POST", "/api/groups/members/role", map[string]any{"groupId": g.GroupID, "memberId": bob.UserID, "newRole": "admin"})
		catWS.WaitEvent(t, "group_updated", `"role":"admin"`)
		bob.Must(t, 403, "POST", "/api/groups/members/role", map[string]any{"groupId": g.GroupID, "memberId": ann.UserID, "newRole": "member"})
		bob.Must(t, 403, "POST", "/api/groups/members/remove", map[string]any{"groupId": g.GroupID, "memberId": ann.UserID})
		ann.Must(t, 400, "POST", "/api/groups/members/role", map[string]any{"groupId": g.GroupID, "memberId": bob.UserID, "newRole": "king"})
		cat.Must(t, 403, "POST", "/api/groups/members/remove", map[string]any{"groupId": g.GroupID, "memberId": dan.UserID})
		// Removing Dan: at once, nothing more reaches him.
		bob.Must(t, 200, "POST", "/api/groups/members/remove", map[string]any{"groupId": g.GroupID, "memberId": dan.UserID})
		danWS.WaitEvent(t, "group_member_removed", dan.UserID)
		annWS.WaitEvent(t, "group_member_removed", dan.UserID)
		gone := groupSend(t, ann, g.GroupID, "dan is gone")
		catWS.WaitEvent(t, "new_group_message", gone.MessageID)
		ann.Must(t, 200, "POST", "/api/messages/typing", map[string]any{"groupId": g.GroupID})
		bobWS.WaitEvent(t, "typing_indicator", `"senderId":"`+ann.UserID)
		// A barrier, not a sleep: a direct message to Dan sent after the
		// group message and the typing would reach him after them.
		marker := send(t, ann, dan, "marker", nil)
		danWS.WaitEvent(t, "new_message", marker.MessageID)
		for _, f := range danWS.Frames() {
			if strings.Contains(string(f.Data), gone.MessageID) || (f.Event == "typing_indicator") {
				t.Fatalf("removed member got %s %s", f.Event, f.Data)
			}
		}
		// A former member keeps the messages of his membership, no later one.
		for _, m := range groupHistory(t, dan, g.GroupID) {
			if m.MessageID == gone.MessageID {
				t.Fatal("removed member reads a message sent after his removal")
			}
		}
		dan.Must(t, 404, "GET", "/api/groups/"+g.GroupID, nil)
		dan.Must(t, 404, "POST", "/api/group-messages/send", map[string]any{"groupId": g.GroupID, "encryptedContent": "x"})
		// The removal reaches Dan by sync too, and nothing after it.
		items, _ := syncAll(t, dan, "0")
		var sawRemoved bool
		for _, it := range items {
			if it.Event == "group_member_removed" {
				sawRemoved = true
			}
			if strings.Contains(string(it.Data), gone.MessageID) {
				t.Fatalf("removed member synced %s", it.Data)
			}
		}
		if !sawRemoved {
			t.Fatalf("dan's sync has no removal: %+v", items)
		}
	})

	t.Run("Sync", func(t *testing.T) {
		setup(t, withFirst)
		// One of each group event after Bob's cursor.
		cat.Must(t, 200, "POST", "/api/group-messages/react", map[string]any{"messageId": m1.MessageID, "reaction": "👍"})
		oops := groupSend(t, ann, g.GroupID, "oops")
		ann.Must(t, 200, "POST", "/api/group-messages/delete", map[string]any{"messageId": oops.MessageID, "deleteForEveryone": true})
		ann.Must(t, 200, "POST", "/api/groups/settings", map[string]any{"groupId": g.GroupID, "settings": map[string]any{"onlyAdminsCanAddMembers": true}})
		ann.Must(t, 200, "POST", "/api/groups/members/add", map[string]any{"groupId": g.GroupID, "members": []string{dan.UserID}})
		ann.Must(t, 200, "POST", "/api/groups/members/remove", map[string]any{"groupId": g.GroupID, "memberId": dan.UserID})
		groupSend(t, ann, g.GroupID, "last")
		items, _ := syncAll(t, bob, bobCursor)
		seen := map[string]int{}
		for _, it := range items {
			seen[it.Event]++
		}
		for _, want := range []string{"group_member_added", "new_group_message", "group_message_reaction", "group_message_deleted",
			"group_updated", "group_member_removed"} {
			if seen[want] == 0 {
				t.Errorf("bob's sync has no %s: %v", want, seen)
			}
		}
		var chats []struct {
			ConversationID, Type string
			Group                *struct {
				GroupID, Name string
				MembersCount  int
			}
			LastMessage *msgView
		}
		bob.Must(t, 200, "GET", "/api/chats", nil).Decode(t, &chats)
		if len(chats) == 0 || chats[0].Type != "group" || chats[0].Group == nil || chats[0].Group.Name != "Trip" || chats[0].LastMessage == nil {
			t.Fatalf("chats = %+v", chats)
		}
	})

	t.Run("LastAdminLeaves", func(t *testing.T) {
		setup(t, usersOnly)
		// Eve's group: Eve (owner, admin), then Ann, then Bob join. When Eve
		// leaves, the longest-standing member becomes admin and owner.
		var g2 groupView
		eve.Must(t, 201, "POST", "/api/groups/create", map[string]any{"name": "Solo", "members": []string{ann.UserID}}).Decode(t, &g2)
		eve.Must(t, 200, "POST", "/api/groups/members/add", map[string]any{"groupId": g2.GroupID, "members": []string{bob.UserID}})
		var rm struct {
			Left              bool
			Promoted, OwnerID string
		}
		eve.Must(t, 200, "POST", "/api/groups/members/remove", map[string]any{"groupId": g2.GroupID, "memberId": eve.UserID}).Decode(t, &rm)
		if !rm.Left || rm.Promoted != ann.UserID || rm.OwnerID != ann.UserID {
			t.Fatalf("leave = %+v", rm)
		}
		annWS.WaitEvent(t, "group_member_removed", `"promoted":"`+ann.UserID)
		if g3 := getGroup(t, bob, g2.GroupID); g3.role(ann.UserID) != "admin" || g3.OwnerID != ann.UserID || len(g3.Members) != 2 {
			t.Fatalf("after leave = %+v", g3)
		}
		eve.Must(t, 404, "GET", "/api/groups/"+g2.GroupID, nil)
		eveWS.WaitEvent(t, "group_member_removed", eve.UserID)
		// Only admins may send once onlyAdminsCanSend is on.
		ann.Must(t, 200, "POST", "/api/groups/settings", map[string]any{"groupId": g2.GroupID, "settings": map[string]any{"onlyAdminsCanSend": true}})
		bob.Must(t, 403, "POST", "/api/group-messages/send", map[string]any{"groupId": g2.GroupID, "encryptedContent": "x"})
		groupSend(t, ann, g2.GroupID, "admins only")
		// Delete: admins only; every member is told, and it is gone.
		bob.Must(t, 403, "POST", "/api/groups/delete", map[string]any{"groupId": g2.GroupID})
		ann.Must(t, 200, "POST", "/api/groups/delete", map[string]any{"groupId": g2.GroupID})
		bobWS.WaitEvent(t, "group_deleted", g2.GroupID)
		bob.Must(t, 404, "GET", "/api/groups/"+g2.GroupID, nil)
		items, _ := syncAll(t, bob, bobCursor)
		var deleted bool
		for _, it := range items {
			deleted = deleted || (it.Event == "group_deleted" && strings.Contains(string(it.Data), g2.GroupID))
		}
		if !deleted {
			t.Fatal("group_deleted is not in bob's sync")
		}
	})

	t.Run("Limit", func(t *testing.T) {
		setup(t, withGroup)
		ids := make([]string, 1024)
		for i := range ids {
			ids[i] = fmt.Sprintf("usr_fake%d", i)
		}
		// 1,024 others plus the creator is one too many, whoever they are.
		if r := ann.Must(t, 400, "POST", "/api/groups/create", map[string]any{"name": "big", "members": ids}); !strings.Contains(r.Error.Message, "at most 1024") {
			t.Fatalf("over the limit: %s", r.Error.Message)
		}
		r := ann.Do(t, "POST", "/api/groups/update", map[string]any{"groupId": g.GroupID, "name": "Trip 2"})
		if r.Status != 200 {
			t.Fatalf("update = %d %s", r.Status, r.Error.Message)
		}
		cat.Must(t, 403, "POST", "/api/groups/update", map[string]any{"groupId": g.GroupID, "name": "mine"})
	})
}
