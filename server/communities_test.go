package server_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/natstest"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/jobs"
)

type communityRes struct {
	CommunityID, Name, Description, CreatedBy, OwnerID, DefaultChannel, E2EEMode, CreatedAt string
	Role, Status, CommunityKey, EncryptedKey                                                string
	IsPrivate                                                                               bool
	MembersCount                                                                            int
	ChannelIDs                                                                              []string
}

type channelRes struct {
	ChannelID, CommunityID, Name, Type, E2EEMode string
	IsPrivate                                    bool
	MembersCount                                 int
}

type chanMsg struct {
	msgView
	ChannelID string
}

func createCommunity(t *testing.T, c *apitest.Client, name string, private bool) communityRes {
	t.Helper()
	body := map[string]any{"name": name, "description": "about " + name, "isPrivate": private}
	if private {
		body["encryptedAESKey"] = "wrapped-for-" + c.UserID
	} else {
		body["plaintextAESKey"] = "community-key-" + name
	}
	var r communityRes
	resp := c.Must(t, 201, "POST", "/api/communities/create", body)
	resp.Decode(t, &r)
	if resp.Message != "Community created successfully" {
		t.Fatalf("create message %q", resp.Message)
	}
	return r
}

func channelSend(t *testing.T, c *apitest.Client, channelID, content string) sendRes {
	t.Helper()
	var r sendRes
	c.Must(t, 201, "POST", "/api/channel-messages/send", map[string]any{"channelId": channelID, "content": content, "type": "text"}).Decode(t, &r)
	return r
}

func channelHistory(t *testing.T, c *apitest.Client, channelID, query string) []chanMsg {
	t.Helper()
	var out []chanMsg
	c.Must(t, 200, "GET", "/api/channel-messages/"+channelID+query, nil).Decode(t, &out)
	return out
}

func createChannel(t *testing.T, c *apitest.Client, communityID, name, typ string, private bool, allowed []string, keys map[string]string) channelRes {
	t.Helper()
	var r channelRes
	c.Must(t, 201, "POST", "/api/communities/channels/create", map[string]any{"communityId": communityID, "name": name, "type": typ,
		"isPrivate": private, "allowedMembers": allowed, "encryptedKeysFromClient": keys}).Decode(t, &r)
	return r
}

func TestCommunities(t *testing.T) {
	t.Parallel()
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := apitest.MustStart(t, backend, nil)
			testCommunities(t, srv.URL())
		})
	}
}

func testCommunities(t *testing.T, base string) {
	ann, bob, eve := apitest.Register(t, base, "ann"), apitest.Register(t, base, "bob"), apitest.Register(t, base, "eve")
	bobWS := apitest.DialWS(t, base, bob.Token)

	pub := createCommunity(t, ann, "Gardeners", false)
	if pub.CreatedBy != ann.UserID || pub.E2EEMode != "trusted" || pub.IsPrivate || pub.DefaultChannel == "" || pub.CreatedAt == "" ||
		pub.Role != "owner" || len(pub.ChannelIDs) != 1 || pub.ChannelIDs[0] != pub.DefaultChannel {
		t.Fatalf("created: %+v", pub)
	}
	general := pub.DefaultChannel
	var chans []channelRes
	ann.Must(t, 200, "GET", "/api/communities/"+pub.CommunityID+"/channels", nil).Decode(t, &chans)
	if len(chans) != 1 || chans[0].Name != "general" || chans[0].Type != "text" {
		t.Fatalf("default channel: %+v", chans)
	}

	before := channelSend(t, ann, general, "before-bob")

	t.Run("JoinPublicSeesHistory", func(t *testing.T) {
		// A stranger sees a public community, without its key or channels.
		var seen communityRes
		bob.Must(t, 200, "GET", "/api/communities/"+pub.CommunityID, nil).Decode(t, &seen)
		if seen.CommunityKey != "" || len(seen.ChannelIDs) != 0 {
			t.Fatalf("a stranger got %+v", seen)
		}
		bob.Must(t, 404, "GET", "/api/channel-messages/"+general, nil)
		var j struct{ Status, Role string }
		r := bob.Must(t, 200, "POST", "/api/communities/join", map[string]any{"communityId": pub.CommunityID})
		r.Decode(t, &j)
		if j.Status != "member" || j.Role != "member" {
			t.Fatalf("join: %+v", j)
		}
		bob.Must(t, 409, "POST", "/api/communities/join", map[string]any{"communityId": pub.CommunityID})
		bob.Must(t, 200, "GET", "/api/communities/"+pub.CommunityID, nil).Decode(t, &seen)
		if seen.CommunityKey != "community-key-Gardeners" || len(seen.ChannelIDs) != 1 || seen.MembersCount != 2 {
			t.Fatalf("member view: %+v", seen)
		}
		h := channelHistory(t, bob, general, "")
		if len(h) != 1 || h[0].MessageID != before.MessageID || *h[0].Content != "before-bob" || h[0].ChannelID != general {
			t.Fatalf("history after joining: %+v", h)
		}
		var key struct {
			E2EEMode     string
			Key          string
			EncryptedKey *string
		}
		bob.Must(t, 200, "GET", "/api/channels/"+general+"/key", nil).Decode(t, &key)
		if key.E2EEMode != "trusted" || key.Key != "community-key-Gardeners" {
			t.Fatalf("key of a trusted channel: %+v", key)
		}
		eve.Must(t, 200, "POST", "/api/communities/join", map[string]any{"communityId": pub.CommunityID})
	})

	t.Run("MessagesAndEvents", func(t *testing.T) {
		annWS := apitest.DialWS(t, base, ann.Token)
		m := channelSend(t, ann, general, "hello-channel")
		ev := bobWS.WaitEvent(t, "new_channel_message", m.MessageID)
		var got chanMsg
		if err := json.Unmarshal(ev, &got); err != nil || got.ChannelID != general || *got.Content != "hello-channel" || got.Seq != m.Seq {
			t.Fatalf("event %s (%v)", ev, err)
		}
		if m.Seq != before.Seq+1 {
			t.Fatalf("seq %d after %d", m.Seq, before.Seq)
		}
		// Over the socket, acknowledged like REST, with idempotency.
		ack := annWS.Call(t, "send_channel_message", map[string]any{"channelId": general, "content": "via-socket", "type": "text",
			"clientMessageId": "c-1"}, 1)
		var a struct {
			Success bool
			Data    struct {
				MessageID, ChannelID string
				Seq                  int64
			}
		}
		if err := json.Unmarshal(ack, &a); err != nil || !a.Success || a.Data.ChannelID != general || a.Data.Seq != m.Seq+1 {
			t.Fatalf("ack %s", ack)
		}
		bobWS.WaitEvent(t, "new_channel_message", a.Data.MessageID)
		var again struct {
			MessageID string
			Duplicate bool
		}
		ann.Must(t, 201, "POST", "/api/channel-messages/send", map[string]any{"channelId": general, "content": "via-socket",
			"clientMessageId": "c-1"}).Decode(t, &again)
		if again.MessageID != a.Data.MessageID || !again.Duplicate {
			t.Fatalf("repeat: %+v", again)
		}
		// Newest first, with limit and beforeSeq.
		h := channelHistory(t, bob, general, "?limit=2")
		if len(h) != 2 || h[0].MessageID != a.Data.MessageID || h[1].MessageID != m.MessageID {
			t.Fatalf("page: %+v", h)
		}
		h = channelHistory(t, bob, general, fmt.Sprintf("?beforeSeq=%d", m.Seq))
		if len(h) != 1 || h[0].MessageID != before.MessageID {
			t.Fatalf("beforeSeq page: %+v", h)
		}
		// Reply, react, edit, delete go through the message routes.
		var reply sendRes
		bob.Must(t, 201, "POST", "/api/channel-messages/send", map[string]any{"channelId": general, "content": "re", "replyToId": m.MessageID}).Decode(t, &reply)
		bob.Must(t, 400, "POST", "/api/channel-messages/send", map[string]any{"channelId": general, "content": "re", "replyToId": "msg_nope"})
		bob.Must(t, 200, "POST", "/api/messages/react", map[string]any{"messageId": m.MessageID, "reaction": "👍"})
		annWS.WaitEvent(t, "message_reaction", general)
		bob.Must(t, 200, "POST", "/api/messages/edit", map[string]any{"messageId": reply.MessageID, "encryptedContent": "re-edited"})
		annWS.WaitEvent(t, "message_edited", "re-edited")
		eve.Must(t, 403, "POST", "/api/messages/delete", map[string]any{"messageId": reply.MessageID, "deleteForEveryone": true})
		ann.Must(t, 200, "POST", "/api/messages/delete", map[string]any{"messageId": reply.MessageID, "deleteForEveryone": true})
		bobWS.WaitEvent(t, "message_deleted", reply.MessageID)
		// Channels are in the chat list, with unread counts, and in sync.
		var chats []struct {
			ConversationID, Type string
			UnreadCount          int64
			Channel              *struct{ ChannelID, CommunityID, CommunityName, Name string }
		}
		eve.Must(t, 200, "GET", "/api/chats", nil).Decode(t, &chats)
		found := false
		for _, c := range chats {
			if c.ConversationID == general {
				found = true
				if c.Type != "channel" || c.Channel == nil || c.Channel.CommunityName != "Gardeners" || c.UnreadCount != 2 {
					t.Fatalf("chat row: %+v %+v", c, c.Channel)
				}
			}
		}
		if !found {
			t.Fatalf("no channel in chats: %+v", chats)
		}
		// Muting the channel shows in the chat row, until unmuted.
		muted := func() bool {
			var rows []struct {
				ConversationID string
				Muted          bool
			}
			eve.Must(t, 200, "GET", "/api/chats", nil).Decode(t, &rows)
			for _, r := range rows {
				if r.ConversationID == general {
					return r.Muted
				}
			}
			t.Fatal("no channel row")
			return false
		}
		eve.Must(t, 200, "POST", "/api/chats/mute", map[string]any{"conversationId": general, "duration": 3600})
		if !muted() {
			t.Fatal("a muted channel is not muted in chats")
		}
		eve.Must(t, 200, "POST", "/api/chats/unmute", map[string]any{"conversationId": general})
		if muted() {
			t.Fatal("an unmuted channel is still muted")
		}
		eve.Must(t, 200, "POST", "/api/chats/mute", map[string]any{"conversationId": general})
		if !muted() {
			t.Fatal("a channel muted until unmuted is not muted")
		}
		eve.Must(t, 200, "POST", "/api/chats/unmute", map[string]any{"conversationId": general})
		eve.Must(t, 404, "POST", "/api/chats/mute", map[string]any{"conversationId": "chan_nope"})
		eve.Must(t, 400, "POST", "/api/chats/mute", map[string]any{"conversationId": general, "duration": -1})
		var sync struct {
			Items []struct {
				Event string
				Data  json.RawMessage
			}
		}
		bob.Must(t, 200, "GET", "/api/sync?cursor=0&limit=200", nil).Decode(t, &sync)
		n := 0
		for _, it := range sync.Items {
			if it.Event == "new_channel_message" && strings.Contains(string(it.Data), general) {
				n++
			}
		}
		if n < 3 {
			t.Fatalf("sync has %d channel messages: %+v", n, sync.Items)
		}
		// Blocking does not stop a channel post reaching the blocker.
		bob.Must(t, 200, "POST", "/api/users/block", map[string]any{"blockedUserId": ann.UserID})
		blocked := channelSend(t, ann, general, "despite-block")
		bobWS.WaitEvent(t, "new_channel_message", blocked.MessageID)
		bob.Must(t, 200, "POST", "/api/users/unblock", map[string]any{"blockedUserId": ann.UserID})
	})

	t.Run("AnnouncementAndPins", func(t *testing.T) {
		news := createChannel(t, ann, pub.CommunityID, "news", "announcement", false, nil, nil)
		if news.MembersCount != 3 {
			t.Fatalf("announcement readers: %+v", news)
		}
		bobWS.WaitEvent(t, "channel_created", news.ChannelID)
		r := bob.Must(t, 403, "POST", "/api/channel-messages/send", map[string]any{"channelId": news.ChannelID, "content": "x"})
		if r.Error.Message != "only admins can post in announcement channels" {
			t.Fatalf("message %q", r.Error.Message)
		}
		post := channelSend(t, ann, news.ChannelID, "news-1")
		bob.Must(t, 403, "POST", "/api/channel-messages/pin", map[string]any{"messageId": post.MessageID})
		eve.Must(t, 404, "POST", "/api/channel-messages/pin", map[string]any{"messageId": "msg_unknown"})
		ann.Must(t, 200, "POST", "/api/channel-messages/pin", map[string]any{"messageId": post.MessageID})
		bobWS.WaitEvent(t, "channel_message_pinned", post.MessageID)
		var pins []struct {
			MessageID, PinnedBy string
			Message             chanMsg
		}
		bob.Must(t, 200, "GET", "/api/channel-messages/"+news.ChannelID+"/pinned", nil).Decode(t, &pins)
		if len(pins) != 1 || pins[0].MessageID != post.MessageID || pins[0].PinnedBy != ann.UserID || *pins[0].Message.Content != "news-1" {
			t.Fatalf("pins: %+v", pins)
		}
		// Promote bob: now he may post and pin.
		ann.Must(t, 200, "POST", "/api/communities/members/role", map[string]any{"communityId": pub.CommunityID, "memberId": bob.UserID, "role": "admin"})
		channelSend(t, bob, news.ChannelID, "news-by-bob")
		bob.Must(t, 200, "POST", "/api/channel-messages/unpin", map[string]any{"messageId": post.MessageID})
		bobWS.WaitEvent(t, "channel_message_unpinned", post.MessageID)
		bob.Must(t, 200, "GET", "/api/channel-messages/"+news.ChannelID+"/pinned", nil).Decode(t, &pins)
		if len(pins) != 0 {
			t.Fatalf("after unpin: %+v", pins)
		}
		ann.Must(t, 200, "POST", "/api/communities/members/role", map[string]any{"communityId": pub.CommunityID, "memberId": bob.UserID, "role": "member"})
		bob.Must(t, 403, "POST", "/api/channel-messages/send", map[string]any{"channelId": news.ChannelID, "content": "x"})
	})

	t.Run("PrivateChannel", func(t *testing.T) {
		annWS := apitest.DialWS(t, base, ann.Token)
		secret := createChannel(t, ann, pub.CommunityID, "secret", "text", true, []string{bob.UserID},
			map[string]string{ann.UserID: "k-ann", bob.UserID: "k-bob"})
		if !secret.IsPrivate || secret.MembersCount != 2 || secret.E2EEMode != "true" {
			t.Fatalf("private channel: %+v", secret)
		}
		m := channelSend(t, bob, secret.ChannelID, "psst")
		eve.Must(t, 404, "GET", "/api/channel-messages/"+secret.ChannelID, nil)
		eve.Must(t, 404, "GET", "/api/channels/"+secret.ChannelID+"/key", nil)
		eve.Must(t, 404, "POST", "/api/channel-messages/send", map[string]any{"channelId": secret.ChannelID, "content": "x"})
		eve.Must(t, 404, "POST", "/api/messages/react", map[string]any{"messageId": m.MessageID, "reaction": "x"})
		var list []channelRes
		eve.Must(t, 200, "GET", "/api/communities/"+pub.CommunityID+"/channels", nil).Decode(t, &list)
		for _, c := range list {
			if c.ChannelID == secret.ChannelID {
				t.Fatal("eve lists the private channel")
			}
		}
		var key struct{ EncryptedKey *string }
		bob.Must(t, 200, "GET", "/api/channels/"+secret.ChannelID+"/key", nil).Decode(t, &key)
		if key.EncryptedKey == nil || *key.EncryptedKey != "k-bob" {
			t.Fatalf("bob's key: %+v", key)
		}
		// Keys for someone who cannot read the channel are refused.
		ann.Must(t, 400, "POST", "/api/channels/keys", map[string]any{"channelId": secret.ChannelID, "keys": map[string]string{eve.UserID: "k"}})
		// Adding eve: admins are asked for her key, then hand it over.
		ann.Must(t, 200, "POST", "/api/channels/members/add", map[string]any{"channelId": secret.ChannelID, "memberIds": []string{eve.UserID}})
		annWS.WaitEvent(t, "channel_key_needed", eve.UserID)
		eve.Must(t, 200, "GET", "/api/channels/"+secret.ChannelID+"/key", nil).Decode(t, &key)
		if key.EncryptedKey != nil {
			t.Fatalf("eve has a key before anyone gave it: %+v", key)
		}
		ann.Must(t, 200, "POST", "/api/channels/keys", map[string]any{"channelId": secret.ChannelID, "keys": map[string]string{eve.UserID: "k-eve"}})
		eve.Must(t, 200, "GET", "/api/channels/"+secret.ChannelID+"/key", nil).Decode(t, &key)
		if key.EncryptedKey == nil || *key.EncryptedKey != "k-eve" {
			t.Fatalf("eve's key: %+v", key)
		}
		if h := channelHistory(t, eve, secret.ChannelID, ""); len(h) != 1 {
			t.Fatalf("eve's history: %+v", h)
		}
		// Removing bob: admins are told to rotate; bob sees nothing.
		ann.Must(t, 200, "POST", "/api/channels/members/remove", map[string]any{"channelId": secret.ChannelID, "memberId": bob.UserID})
		annWS.WaitEvent(t, "channel_rekey_needed", bob.UserID)
		bob.Must(t, 404, "GET", "/api/channel-messages/"+secret.ChannelID, nil)
		bob.Must(t, 403, "POST", "/api/channels/members/add", map[string]any{"channelId": general, "memberIds": []string{eve.UserID}})
		ann.Must(t, 400, "POST", "/api/channels/members/add", map[string]any{"channelId": general, "memberIds": []string{eve.UserID}})
		ann.Must(t, 200, "POST", "/api/channels/update", map[string]any{"channelId": secret.ChannelID, "name": "secret-2"})
		annWS.WaitEvent(t, "channel_updated", "secret-2")
		eve.Must(t, 403, "POST", "/api/channels/update", map[string]any{"channelId": secret.ChannelID, "name": "x"})
		eveWS := apitest.DialWS(t, base, eve.Token)
		ann.Must(t, 200, "POST", "/api/channels/delete", map[string]any{"channelId": secret.ChannelID})
		eveWS.WaitEvent(t, "channel_deleted", secret.ChannelID)
		eve.Must(t, 404, "GET", "/api/channel-messages/"+secret.ChannelID, nil)
		ann.Must(t, 200, "POST", "/api/communities/update", map[string]any{"communityId": pub.CommunityID, "description": "new words"})
		eveWS.WaitEvent(t, "community_updated", "new words")
		ann.Must(t, 200, "POST", "/api/communities/members/remove", map[string]any{"communityId": pub.CommunityID, "memberId": eve.UserID})
		eveWS.WaitEvent(t, "community_member_removed", pub.CommunityID)
		eve.Must(t, 404, "GET", "/api/channel-messages/"+general, nil)
		eve.Must(t, 200, "POST", "/api/communities/join", map[string]any{"communityId": pub.CommunityID})
	})

	t.Run("PrivateCommunity", func(t *testing.T) {
		carol, dave, fred := apitest.Register(t, base, "carol"), apitest.Register(t, base, "dave"), apitest.Register(t, base, "fred")
		carolWS, daveWS := apitest.DialWS(t, base, carol.Token), apitest.DialWS(t, base, dave.Token)
		priv := createCommunity(t, carol, "Secret Society", true)
		if priv.E2EEMode != "true" || priv.EncryptedKey != "wrapped-for-"+carol.UserID || priv.CommunityKey != "" {
			t.Fatalf("private community: %+v", priv)
		}
		carol.Must(t, 400, "POST", "/api/communities/create", map[string]any{"name": "x", "isPrivate": true, "plaintextAESKey": "k"})
		dave.Must(t, 404, "GET", "/api/communities/"+priv.CommunityID, nil)
		var j struct{ Status string }
		dave.Must(t, 200, "POST", "/api/communities/join", map[string]any{"communityId": priv.CommunityID}).Decode(t, &j)
		if j.Status != "pending" {
			t.Fatalf("join: %+v", j)
		}
		carolWS.WaitEvent(t, "community_join_request", dave.UserID)
		dave.Must(t, 404, "GET", "/api/channel-messages/"+priv.DefaultChannel, nil)
		dave.Must(t, 404, "GET", "/api/communities/"+priv.CommunityID+"/channels", nil)
		dave.Must(t, 404, "POST", "/api/channel-messages/send", map[string]any{"channelId": priv.DefaultChannel, "content": "x"})
		var reqs []struct{ UserID, Username string }
		carol.Must(t, 200, "GET", "/api/communities/"+priv.CommunityID+"/requests", nil).Decode(t, &reqs)
		if len(reqs) != 1 || reqs[0].UserID != dave.UserID || reqs[0].Username != dave.Username {
			t.Fatalf("requests: %+v", reqs)
		}
		dave.Must(t, 404, "GET", "/api/communities/"+priv.CommunityID+"/requests", nil)
		fred.Must(t, 200, "POST", "/api/communities/join", map[string]any{"communityId": priv.CommunityID})
		carol.Must(t, 200, "POST", "/api/communities/requests/reject", map[string]any{"communityId": priv.CommunityID, "userId": fred.UserID})
		carol.Must(t, 404, "POST", "/api/communities/requests/approve", map[string]any{"communityId": priv.CommunityID, "userId": fred.UserID})

		carol.Must(t, 200, "POST", "/api/communities/requests/approve", map[string]any{"communityId": priv.CommunityID, "userId": dave.UserID})
		daveWS.WaitEvent(t, "community_join_approved", priv.CommunityID)
		carolWS.WaitEvent(t, "channel_key_needed", dave.UserID)
		var key struct{ EncryptedKey *string }
		dave.Must(t, 200, "GET", "/api/channels/"+priv.DefaultChannel+"/key", nil).Decode(t, &key)
		if key.EncryptedKey != nil {
			t.Fatalf("key before it was given: %+v", key)
		}
		carol.Must(t, 200, "POST", "/api/channels/keys", map[string]any{"channelId": priv.DefaultChannel, "keys": map[string]string{dave.UserID: "w-dave"}})
		dave.Must(t, 200, "GET", "/api/channels/"+priv.DefaultChannel+"/key", nil).Decode(t, &key)
		if key.EncryptedKey == nil || *key.EncryptedKey != "w-dave" {
			t.Fatalf("dave's key: %+v", key)
		}
		m := channelSend(t, carol, priv.DefaultChannel, "members-only")
		daveWS.WaitEvent(t, "new_channel_message", m.MessageID)
		// Sync carries the request answers too.
		var sync struct{ Items []struct{ Event string } }
		dave.Must(t, 200, "GET", "/api/sync?cursor=0&limit=200", nil).Decode(t, &sync)
		if !hasEvent(sync.Items, "community_join_approved") {
			t.Fatalf("dave's sync: %+v", sync.Items)
		}
		fred.Must(t, 200, "GET", "/api/sync?cursor=0&limit=200", nil).Decode(t, &sync)
		if !hasEvent(sync.Items, "community_join_rejected") {
			t.Fatalf("fred's sync: %+v", sync.Items)
		}
		// Leaving: the owner leaves, the longest-standing member inherits.
		var left struct{ OwnerID, Promoted string }
		carol.Must(t, 200, "POST", "/api/communities/leave", map[string]any{"communityId": priv.CommunityID}).Decode(t, &left)
		if left.OwnerID != dave.UserID || left.Promoted != dave.UserID {
			t.Fatalf("after the owner left: %+v", left)
		}
		carol.Must(t, 404, "GET", "/api/channel-messages/"+priv.DefaultChannel, nil)
		var c communityRes
		dave.Must(t, 200, "GET", "/api/communities/"+priv.CommunityID, nil).Decode(t, &c)
		if c.OwnerID != dave.UserID || c.Role != "owner" || c.MembersCount != 1 {
			t.Fatalf("after the owner left: %+v", c)
		}
		channelSend(t, dave, priv.DefaultChannel, "mine now")
		// Deleting: members are told, everything is gone.
		carol.Must(t, 404, "POST", "/api/communities/delete", map[string]any{"communityId": priv.CommunityID})
		dave.Must(t, 200, "POST", "/api/communities/delete", map[string]any{"communityId": priv.CommunityID})
		daveWS.WaitEvent(t, "community_deleted", priv.CommunityID)
		dave.Must(t, 404, "GET", "/api/communities/"+priv.CommunityID, nil)
		dave.Must(t, 404, "GET", "/api/channel-messages/"+priv.DefaultChannel, nil)
	})

	t.Run("SearchAndMine", func(t *testing.T) {
		var found []communityRes
		eve.Must(t, 200, "GET", "/api/communities/search?q=garden", nil).Decode(t, &found)
		if len(found) != 1 || found[0].CommunityID != pub.CommunityID || found[0].CommunityKey != "" {
			t.Fatalf("search: %+v", found)
		}
		createCommunity(t, eve, "Gardening Secrets", true)
		eve.Must(t, 200, "GET", "/api/communities/search?q=GARDEN", nil).Decode(t, &found)
		if len(found) != 1 {
			t.Fatalf("a private community is searchable: %+v", found)
		}
		var mine []communityRes
		eve.Must(t, 200, "GET", "/api/communities/user/"+eve.UserID, nil).Decode(t, &mine)
		if len(mine) != 2 {
			t.Fatalf("eve's communities: %+v", mine)
		}
		eve.Must(t, 403, "GET", "/api/communities/user/"+ann.UserID, nil)
	})
}

func hasEvent(items []struct{ Event string }, name string) bool {
	for _, it := range items {
		if it.Event == name {
			return true
		}
	}
	return false
}

// TestCommunityRoles runs every action as the owner, an admin, a member, a
// pending member, a removed member and a stranger, and checks the answer:
// allowed, 403 (a member without the right) or 404 (no access at all).
func TestCommunityRoles(t *testing.T) {
	t.Parallel()
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := apitest.MustStart(t, backend, nil)
			base := srv.URL()
			owner := apitest.Register(t, base, "owner")
			as := map[string]*apitest.Client{"owner": owner}
			for _, name := range []string{"admin", "member", "pending", "removed", "stranger"} {
				as[name] = apitest.Register(t, base, name)
			}
			// One community per action, so that actions do not interfere.
			type world struct{ community, channel, private, message, news string }
			setup := func(t *testing.T) world {
				c := createCommunity(t, owner, apitest.Unique("c"), true)
				for _, name := range []string{"admin", "member", "pending", "removed"} {
					as[name].Must(t, 200, "POST", "/api/communities/join", map[string]any{"communityId": c.CommunityID})
					if name != "pending" {
						owner.Must(t, 200, "POST", "/api/communities/requests/approve", map[string]any{"communityId": c.CommunityID, "userId": as[name].UserID})
					}
				}
				owner.Must(t, 200, "POST", "/api/communities/members/role", map[string]any{"communityId": c.CommunityID, "memberId": as["admin"].UserID, "role": "admin"})
				owner.Must(t, 200, "POST", "/api/communities/members/remove", map[string]any{"communityId": c.CommunityID, "memberId": as["removed"].UserID})
				priv := createChannel(t, owner, c.CommunityID, "p", "text", true, nil, nil)
				news := createChannel(t, owner, c.CommunityID, "n", "announcement", false, nil, nil)
				m := channelSend(t, owner, c.DefaultChannel, "hi")
				return world{c.CommunityID, c.DefaultChannel, priv.ChannelID, m.MessageID, news.ChannelID}
			}
			type action struct {
				name string
				do   func(t *testing.T, c *apitest.Client, w world) int
				want map[string]int // by role; 0 means 200/201
			}
			get := func(path func(w world) string) func(*testing.T, *apitest.Client, world) int {
				return func(t *testing.T, c *apitest.Client, w world) int { return c.Do(t, "GET", path(w), nil).Status }
			}
			post := func(path string, body func(w world) map[string]any) func(*testing.T, *apitest.Client, world) int {
				return func(t *testing.T, c *apitest.Client, w world) int { return c.Do(t, "POST", path, body(w)).Status }
			}
			ok, forbidden, missing := 200, 403, 404
			admins := func(allowed int) map[string]int {
				return map[string]int{"owner": allowed, "admin": allowed, "member": forbidden, "pending": missing, "removed": missing, "stranger": missing}
			}
			members := map[string]int{"owner": ok, "admin": ok, "member": ok, "pending": missing, "removed": missing, "stranger": missing}
			actions := []action{
				{"details", get(func(w world) string { return "/api/communities/" + w.community }),
					map[string]int{"owner": ok, "admin": ok, "member": ok, "pending": ok, "removed": missing, "stranger": missing}},
				{"channels", get(func(w world) string { return "/api/communities/" + w.community + "/channels" }), members},
				{"members", get(func(w world) string { return "/api/communities/" + w.community + "/members" }), members},
				{"history", get(func(w world) string { return "/api/channel-messages/" + w.channel }), members},
				{"pinned", get(func(w world) string { return "/api/channel-messages/" + w.channel + "/pinned" }), members},
				{"key", get(func(w world) string { return "/api/channels/" + w.channel + "/key" }), members},
				{"send", post("/api/channel-messages/send", func(w world) map[string]any { return map[string]any{"channelId": w.channel, "content": "x"} }),
					map[string]int{"owner": 201, "admin": 201, "member": 201, "pending": missing, "removed": missing, "stranger": missing}},
				{"announce", post("/api/channel-messages/send", func(w world) map[string]any { return map[string]any{"channelId": w.news, "content": "x"} }),
					map[string]int{"owner": 201, "admin": 201, "member": forbidden, "pending": missing, "removed": missing, "stranger": missing}},
				{"private history", get(func(w world) string { return "/api/channel-messages/" + w.private }),
					map[string]int{"owner": ok, "admin": missing, "member": missing, "pending": missing, "removed": missing, "stranger": missing}},
				{"readers", get(func(w world) string { return "/api/channels/" + w.channel + "/members" }), members},
				{"private readers", get(func(w world) string { return "/api/channels/" + w.private + "/members" }),
					map[string]int{"owner": ok, "admin": missing, "member": missing, "pending": missing, "removed": missing, "stranger": missing}},
				{"requests", get(func(w world) string { return "/api/communities/" + w.community + "/requests" }), admins(ok)},
				{"create channel", post("/api/communities/channels/create", func(w world) map[string]any {
					return map[string]any{"communityId": w.community, "name": "x", "type": "text"}
				}), admins(201)},
				{"update", post("/api/communities/update", func(w world) map[string]any { return map[string]any{"communityId": w.community, "name": "y"} }), admins(ok)},
				{"pin", post("/api/channel-messages/pin", func(w world) map[string]any { return map[string]any{"messageId": w.message} }), admins(ok)},
				{"update channel", post("/api/channels/update", func(w world) map[string]any { return map[string]any{"channelId": w.channel, "name": "z"} }), admins(ok)},
				{"delete channel", post("/api/channels/delete", func(w world) map[string]any { return map[string]any{"channelId": w.news} }), admins(ok)},
				{"keys", post("/api/channels/keys", func(w world) map[string]any {
					return map[string]any{"channelId": w.channel, "keys": map[string]string{owner.UserID: "k"}}
				}), admins(ok)},
				{"remove member", post("/api/communities/members/remove", func(w world) map[string]any {
					return map[string]any{"communityId": w.community, "memberId": as["member"].UserID}
				}), map[string]int{"owner": ok, "admin": ok, "member": forbidden, "pending": missing, "removed": missing, "stranger": missing}},
				{"promote", post("/api/communities/members/role", func(w world) map[string]any {
					return map[string]any{"communityId": w.community, "memberId": as["member"].UserID, "role": "admin"}
				}), admins(ok)},
				{"delete", post("/api/communities/delete", func(w world) map[string]any { return map[string]any{"communityId": w.community} }),
					map[string]int{"owner": ok, "admin": forbidden, "member": forbidden, "pending": missing, "removed": missing, "stranger": missing}},
			}
			for _, a := range actions {
				t.Run(strings.ReplaceAll(a.name, " ", "_"), func(t *testing.T) {
					for _, role := range []string{"stranger", "removed", "pending", "member", "admin", "owner"} {
						w := setup(t)
						if got := a.do(t, as[role], w); got != a.want[role] {
							t.Errorf("%s as %s: %d, want %d", a.name, role, got, a.want[role])
						}
					}
				})
			}
		})
	}
}

// TestCommunityMembersPage lists a community's approved members in join
// order, page by page, with their roles and names, and never a pending or
// removed one.
func TestCommunityMembersPage(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := apitest.MustStart(t, backend, nil)
			base := srv.URL()
			owner := apitest.Register(t, base, "owner")
			c := createCommunity(t, owner, apitest.Unique("c"), true)
			want := []string{owner.UserID}
			roles := map[string]string{owner.UserID: "owner"}
			names := map[string]string{owner.UserID: owner.Username}
			for i := 0; i < 5; i++ {
				u := apitest.Register(t, base, fmt.Sprintf("mem%d", i))
				u.Must(t, 200, "POST", "/api/communities/join", map[string]any{"communityId": c.CommunityID})
				if i == 2 { // stays pending
					continue
				}
				owner.Must(t, 200, "POST", "/api/communities/requests/approve", map[string]any{"communityId": c.CommunityID, "userId": u.UserID})
				if i == 3 { // approved, then removed
					owner.Must(t, 200, "POST", "/api/communities/members/remove", map[string]any{"communityId": c.CommunityID, "memberId": u.UserID})
					continue
				}
				want = append(want, u.UserID)
				roles[u.UserID], names[u.UserID] = "member", u.Username
				if i == 1 {
					owner.Must(t, 200, "POST", "/api/communities/members/role", map[string]any{"communityId": c.CommunityID, "memberId": u.UserID, "role": "admin"})
					roles[u.UserID] = "admin"
				}
			}
			type member struct{ UserID, Username, Role, JoinedAt string }
			var got []string
			after := ""
			for pages := 0; ; pages++ {
				if pages > len(want) {
					t.Fatalf("more pages than members: %v", got)
				}
				var page []member
				owner.Must(t, 200, "GET", "/api/communities/"+c.CommunityID+"/members?limit=2&after="+after, nil).Decode(t, &page)
				if len(page) > 2 {
					t.Fatalf("page of %d with limit=2", len(page))
				}
				if len(page) == 0 {
					break
				}
				for _, m := range page {
					if m.Role != roles[m.UserID] || m.Username != names[m.UserID] || m.JoinedAt == "" {
						t.Errorf("member %+v, want role %q username %q and a joinedAt", m, roles[m.UserID], names[m.UserID])
					}
					got = append(got, m.UserID)
				}
				after = page[len(page)-1].UserID
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("members %v, want %v (approved, in join order)", got, want)
			}
			if r := owner.Do(t, "GET", "/api/communities/"+c.CommunityID+"/members?limit=0", nil); r.Status != 400 || r.Error.Code != "invalid_argument" {
				t.Fatalf("limit=0: %d %s", r.Status, r.Error.Code)
			}
			var rest []member
			owner.Must(t, 200, "GET", "/api/communities/"+c.CommunityID+"/members?after=usr_notamember", nil).Decode(t, &rest)
			if len(rest) != 0 {
				t.Fatalf("after a non-member: %v", rest)
			}
			// A private channel's readers: its creator and those allowed,
			// page by page in id order; a member who is not one is refused.
			allowed := want[1:3]
			priv := createChannel(t, owner, c.CommunityID, "inner", "text", true, allowed, nil)
			wantReaders := append([]string{owner.UserID}, allowed...)
			slices.Sort(wantReaders)
			var readers []string
			after = ""
			for pages := 0; pages <= len(wantReaders); pages++ {
				var page []member
				owner.Must(t, 200, "GET", "/api/channels/"+priv.ChannelID+"/members?limit=2&after="+after, nil).Decode(t, &page)
				if len(page) == 0 {
					break
				}
				for _, m := range page {
					if m.Username != names[m.UserID] {
						t.Errorf("reader %+v, want username %q", m, names[m.UserID])
					}
					readers = append(readers, m.UserID)
				}
				after = page[len(page)-1].UserID
			}
			if strings.Join(readers, ",") != strings.Join(wantReaders, ",") {
				t.Fatalf("readers %v, want %v", readers, wantReaders)
			}
		})
	}
}

// TestCommunityTwoNodes posts on one node and reads on another, through
// PostgreSQL and NATS: new_channel_message reaches readers on every node.
func TestCommunityTwoNodes(t *testing.T) {
	dsn := testdb.DSN(t, "postgres")
	ns := natstest.Start(t)
	clock := jobs.NewFake(time.Now())
	a, b := startNode(t, "node-a", dsn, ns.URL(), clock), startNode(t, "node-b", dsn, ns.URL(), clock)
	ann := apitest.Register(t, a.URL(), "ann")
	bob := apitest.Register(t, b.URL(), "bob")
	c := createCommunity(t, ann, "Across", false)
	bob.Must(t, 200, "POST", "/api/communities/join", map[string]any{"communityId": c.CommunityID})
	bobWS := apitest.DialWS(t, b.URL(), bob.Token)
	m := channelSend(t, ann, c.DefaultChannel, "from-a")
	bobWS.WaitEvent(t, "new_channel_message", m.MessageID)
	ann.Must(t, 200, "POST", "/api/channel-messages/pin", map[string]any{"messageId": m.MessageID})
	bobWS.WaitEvent(t, "channel_message_pinned", m.MessageID)
	if h := channelHistory(t, bob, c.DefaultChannel, ""); len(h) != 1 || h[0].MessageID != m.MessageID {
		t.Fatalf("history on node b: %+v", h)
	}
}
