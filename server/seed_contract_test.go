package server_test

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
)

// hasFields fails unless the JSON object raw holds every named field.
func hasFields(t *testing.T, what string, raw json.RawMessage, fields ...string) map[string]json.RawMessage {
	t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatalf("%s: %s is not an object: %v", what, raw, err)
	}
	var missing []string
	for _, f := range fields {
		if _, ok := obj[f]; !ok {
			missing = append(missing, f)
		}
	}
	if missing != nil {
		sort.Strings(missing)
		t.Errorf("%s: missing seed fields %v in %s", what, missing, raw)
	}
	return obj
}

// exactly fails unless the JSON object raw has exactly the given fields,
// each with the given JSON value: the seed's answer, nothing more.
func exactly(t *testing.T, what string, raw json.RawMessage, want map[string]string) {
	t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatalf("%s: %s is not an object: %v", what, raw, err)
	}
	for k, v := range want {
		if got, ok := obj[k]; !ok || string(got) != v {
			t.Errorf("%s: field %s is %s, want %s (in %s)", what, k, got, v, raw)
		}
	}
	for k := range obj {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: field %s is not in the seed's answer %v", what, k, sortedNames(want))
		}
	}
}

func sortedNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// jsonString is s as a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// messages returns the raw message objects of a history answer.
func messages(t *testing.T, r *apitest.Response) []json.RawMessage {
	t.Helper()
	var out []json.RawMessage
	r.Decode(t, &out)
	return out
}

// wantMessage fails unless r's top-level message is the seed's text.
func wantMessage(t *testing.T, what string, r *apitest.Response, msg string) {
	t.Helper()
	if r.Message != msg {
		t.Errorf("%s: message %q, want the seed's %q", what, r.Message, msg)
	}
}

// TestSeedContract checks the field names and message strings that seed
// 003 (and seed 001's spellings) give clients, on every backend.
func TestSeedContract(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := apitest.MustStart(t, backend, nil)
			base := srv.URL()
			ann, bob, cid := apitest.Register(t, base, apitest.Unique("ann")), apitest.Register(t, base, apitest.Unique("bob")), apitest.Register(t, base, apitest.Unique("cid"))
			annWS, bobWS := apitest.DialWS(t, base, ann.Token), apitest.DialWS(t, base, bob.Token)

			// Direct: typing, send, status, delete.
			ann.Must(t, 200, "POST", "/api/messages/typing", map[string]any{"recipientId": bob.UserID})
			hasFields(t, "typing_indicator", bobWS.WaitEvent(t, "typing_indicator", ann.UserID), "senderId", "isTyping", "timestamp")
			m := send(t, ann, bob, "c1", nil)
			ev := hasFields(t, "new_message", bobWS.WaitEvent(t, "new_message", m.MessageID), "mediaId", "replyToId", "contentHash")
			if string(ev["mediaId"]) != `""` || string(ev["replyToId"]) != `""` {
				t.Errorf("new_message: mediaId %s replyToId %s, want \"\"", ev["mediaId"], ev["replyToId"])
			}
			bob.Must(t, 200, "POST", "/api/status", map[string]any{"messageId": m.MessageID, "status": "seen"})
			hasFields(t, "message_status_update", annWS.WaitEvent(t, "message_status_update", m.MessageID), "messageId", "status", "timestamp")
			r := ann.Must(t, 200, "POST", "/api/messages/delete", map[string]any{"messageId": m.MessageID, "deleteForEveryone": true})
			wantMessage(t, "delete", r, "Message deleted successfully")
			h := history(t, bob, ann, "")
			if len(h) != 1 || !h[0].DeletedForEveryone || h[0].ContentHash != emptySHA256 {
				t.Errorf("tombstone %+v: want contentHash %s (SHA-256 of no content)", h, emptySHA256)
			}
			m2 := send(t, ann, bob, "c2", nil)
			dm := messages(t, bob.Must(t, 200, "GET", "/api/messages/"+bob.UserID+"/"+ann.UserID, nil))
			if len(dm) != 2 {
				t.Fatalf("direct history: %d messages, want 2", len(dm))
			}
			// Newest first: m2, then the tombstone.
			if obj := hasFields(t, "message object", dm[0], "messageId", "senderId", "recipientId", "content", "contentHash", "type", "mediaId", "replyToId", "status", "sentAt"); string(obj["messageId"]) != jsonString(m2.MessageID) ||
				string(obj["mediaId"]) != `""` || string(obj["replyToId"]) != `""` {
				t.Errorf("message object %s: want messageId %s with mediaId and replyToId \"\"", dm[0], m2.MessageID)
			}
			if obj := hasFields(t, "tombstone", dm[1], "content", "contentHash", "mediaId", "replyToId"); string(obj["content"]) != "null" || string(obj["contentHash"]) != jsonString(emptySHA256) {
				t.Errorf("tombstone %s: want content null and contentHash %s", dm[1], emptySHA256)
			}

			// Blocks and mutes.
			wantMessage(t, "block", ann.Must(t, 200, "POST", "/api/users/block", map[string]any{"blockedUserId": cid.UserID}), "User blocked successfully")
			wantMessage(t, "unblock", ann.Must(t, 200, "POST", "/api/users/unblock", map[string]any{"blockedUserId": cid.UserID}), "User unblocked successfully")
			wantMessage(t, "mute", ann.Must(t, 200, "POST", "/api/users/mute", map[string]any{"mutedUserId": cid.UserID}), "User muted successfully")

			// Groups, created with seed 001's spellings.
			var g struct{ GroupID, Name string }
			ann.Must(t, 201, "POST", "/api/groups/create", map[string]any{"group_name": "seed", "participants": []string{bob.UserID}}).Decode(t, &g)
			if g.Name != "seed" {
				t.Errorf("group_name: name %q, want seed", g.Name)
			}
			if gv := getGroup(t, ann, g.GroupID); gv.role(bob.UserID) != "member" {
				t.Errorf("participants: bob is %q, want member", gv.role(bob.UserID))
			}
			r = ann.Must(t, 200, "POST", "/api/groups/members/add", map[string]any{"groupId": g.GroupID, "user_id": cid.UserID})
			wantMessage(t, "add", r, "Added 1 new members to the group")
			r = ann.Must(t, 200, "POST", "/api/groups/members/role", map[string]any{"groupId": g.GroupID, "memberId": bob.UserID, "newRole": "admin"})
			wantMessage(t, "role", r, "Member role updated")
			if obj := hasFields(t, "role", r.Data, "groupId", "memberId", "newRole"); string(obj["newRole"]) != `"admin"` {
				t.Errorf("role: newRole %s, want admin", obj["newRole"])
			}
			r = ann.Must(t, 200, "POST", "/api/groups/settings", map[string]any{"groupId": g.GroupID, "settings": map[string]any{"onlyAdminsCanSend": false}})
			wantMessage(t, "settings", r, "Group settings updated")

			gm := groupSend(t, ann, g.GroupID, "g1")
			hasFields(t, "new_group_message", bobWS.WaitEvent(t, "new_group_message", gm.MessageID), "mediaId", "replyToId")
			gmID, gID := jsonString(gm.MessageID), jsonString(g.GroupID)
			r = bob.Must(t, 200, "POST", "/api/group-messages/react", map[string]any{"messageId": gm.MessageID, "reaction": "+1"})
			exactly(t, "group react", r.Data, map[string]string{"messageId": gmID, "groupId": gID, "reaction": `"+1"`})
			r = bob.Must(t, 200, "POST", "/api/group-messages/react", map[string]any{"messageId": gm.MessageID, "reaction": ""})
			exactly(t, "group react removed", r.Data, map[string]string{"messageId": gmID, "groupId": gID, "reaction": `""`})
			r = bob.Must(t, 200, "POST", "/api/group-messages/status", map[string]any{"messageId": gm.MessageID, "status": "seen"})
			var st struct{ UpdatedAt string }
			r.Decode(t, &st)
			if _, err := time.Parse(time.RFC3339Nano, st.UpdatedAt); err != nil {
				t.Errorf("group status: updatedAt %q is not ISO 8601: %v", st.UpdatedAt, err)
			}
			exactly(t, "group status", r.Data, map[string]string{"messageId": gmID, "groupId": gID, "status": `"seen"`, "updatedAt": jsonString(st.UpdatedAt)})
			hasFields(t, "group_message_status_update", annWS.WaitEvent(t, "group_message_status_update", gm.MessageID),
				"messageId", "groupId", "userId", "status", "timestamp")
			bob.Must(t, 200, "POST", "/api/messages/typing", map[string]any{"groupId": g.GroupID})
			hasFields(t, "group typing_indicator", annWS.WaitEvent(t, "typing_indicator", g.GroupID), "senderId", "isTyping", "timestamp")
			r = ann.Must(t, 200, "POST", "/api/group-messages/delete", map[string]any{"messageId": gm.MessageID, "deleteForEveryone": true})
			wantMessage(t, "group delete", r, "Message deleted successfully")
			exactly(t, "group delete", r.Data, map[string]string{"messageId": gmID, "groupId": gID, "deleteForEveryone": "true"})
			gh := messages(t, bob.Must(t, 200, "GET", "/api/group-messages/"+g.GroupID, nil))
			if len(gh) != 1 {
				t.Fatalf("group history: %d messages, want 1", len(gh))
			}
			if obj := hasFields(t, "group tombstone", gh[0], "messageId", "groupId", "content", "contentHash", "mediaId", "replyToId"); string(obj["content"]) != "null" ||
				string(obj["contentHash"]) != jsonString(emptySHA256) || string(obj["mediaId"]) != `""` || string(obj["replyToId"]) != `""` {
				t.Errorf("group tombstone %s: want content null, contentHash %s, mediaId and replyToId \"\"", gh[0], emptySHA256)
			}
			r = ann.Must(t, 200, "POST", "/api/groups/members/remove", map[string]any{"groupId": g.GroupID, "user_id": cid.UserID})
			wantMessage(t, "remove", r, "Member removed from the group")
			if gv := getGroup(t, ann, g.GroupID); gv.role(cid.UserID) != "" {
				t.Errorf("user_id on remove: cid is still %q", gv.role(cid.UserID))
			}
			wantMessage(t, "group delete", ann.Must(t, 200, "POST", "/api/groups/delete", map[string]any{"groupId": g.GroupID}), "Group deleted successfully")

			// Profile: profile_pic is avatar.
			var p struct{ Avatar string }
			ann.Must(t, 200, "PUT", "/api/users/me/profile", map[string]any{"profile_pic": "https://example.test/a.png"}).Decode(t, &p)
			if p.Avatar != "https://example.test/a.png" {
				t.Errorf("profile_pic: avatar %q", p.Avatar)
			}
		})
	}
}

// emptySHA256 is the contentHash of a tombstone: the SHA-256 of no content.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// TestUnknownFieldsRefused checks that a misspelt field is a 400 naming
// it, not a silent success, and that both spellings at once are refused.
func TestUnknownFieldsRefused(t *testing.T) {
	srv := apitest.MustStart(t, "sqlite", nil)
	ann, bob := apitest.Register(t, srv.URL(), apitest.Unique("ann")), apitest.Register(t, srv.URL(), apitest.Unique("bob"))
	for _, tc := range []struct {
		name, method, path string
		body               map[string]any
		want               string
	}{
		{"Typo", "POST", "/api/messages/send", map[string]any{"recipientId": bob.UserID, "encryptedContent": "x", "type": "text", "replyTold": "m"}, "replyTold"},
		{"Profile", "PUT", "/api/users/me/profile", map[string]any{"nmae": "Ann"}, "nmae"},
		{"BothSpellings", "POST", "/api/groups/create", map[string]any{"name": "a", "group_name": "b", "members": []string{bob.UserID}}, "group_name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ann.Do(t, tc.method, tc.path, tc.body)
			if r.Status != 400 || r.Error.Code != "invalid_argument" || !strings.Contains(r.Error.Message, tc.want) {
				t.Fatalf("status %d %s %q, want 400 invalid_argument naming %s", r.Status, r.Error.Code, r.Error.Message, tc.want)
			}
		})
	}
	// Socket events decode by the same rules as REST bodies.
	ws := apitest.DialWS(t, srv.URL(), ann.Token)
	ack := ws.Call(t, "send_message", map[string]any{"recipientId": bob.UserID, "encryptedContent": "x", "type": "text", "replyTold": "m"}, 1)
	if !strings.Contains(string(ack), `"invalid_argument"`) || !strings.Contains(string(ack), "replyTold") {
		t.Fatalf("send_message with a misspelt field: ack %s, want invalid_argument naming replyTold", ack)
	}
	if h := history(t, ann, bob, ""); len(h) != 0 {
		t.Fatalf("a refused send stored %d messages", len(h))
	}
}
