package service

import "strconv"

// A chat list of 200 rows spent about a fifth of its server CPU in
// encoding/json (reflection over every row, its peer and its last
// message). AppendChatViews writes the same bytes by hand;
// FuzzChatViewJSON holds it to encoding/json.

// AppendChatViews appends the JSON array of views to b, byte for byte
// what encoding/json.Marshal makes of them (null for a nil slice or
// element).
func AppendChatViews(b []byte, views []*ChatView) []byte { return appendJSONArray(b, views) }

// AppendJSON appends v as JSON to b, byte for byte what
// encoding/json.Marshal makes of it (null for a nil v).
func (v *ChatView) AppendJSON(b []byte) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"conversationId":`...)
	b = appendJSONString(b, v.ConversationID)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, v.Type)
	if p := v.Peer; p != nil {
		b = append(b, `,"peer":{"userId":`...)
		b = appendJSONString(b, p.UserID)
		b = append(b, `,"username":`...)
		b = appendJSONString(b, p.Username)
		b = append(b, `,"name":`...)
		b = appendJSONString(b, p.Name)
		b = append(b, `,"avatar":`...)
		b = appendJSONString(b, p.Avatar)
		b = append(b, `,"online":`...)
		b = strconv.AppendBool(b, p.Online)
		b = append(b, `,"lastSeen":`...)
		b = appendJSONTime(b, p.LastSeen)
		b = append(b, '}')
	}
	if g := v.Group; g != nil {
		b = append(b, `,"group":{"groupId":`...)
		b = appendJSONString(b, g.GroupID)
		b = append(b, `,"name":`...)
		b = appendJSONString(b, g.Name)
		b = append(b, `,"avatar":`...)
		b = appendJSONString(b, g.Avatar)
		b = append(b, `,"membersCount":`...)
		b = strconv.AppendInt(b, int64(g.MembersCount), 10)
		b = append(b, `,"role":`...)
		b = appendJSONString(b, g.Role)
		b = append(b, '}')
	}
	if c := v.Channel; c != nil {
		b = append(b, `,"channel":{"channelId":`...)
		b = appendJSONString(b, c.ChannelID)
		b = append(b, `,"communityId":`...)
		b = appendJSONString(b, c.CommunityID)
		b = append(b, `,"communityName":`...)
		b = appendJSONString(b, c.CommunityName)
		b = append(b, `,"name":`...)
		b = appendJSONString(b, c.Name)
		b = append(b, `,"type":`...)
		b = appendJSONString(b, c.Type)
		b = append(b, `,"isPrivate":`...)
		b = strconv.AppendBool(b, c.IsPrivate)
		b = append(b, `,"role":`...)
		b = appendJSONString(b, c.Role)
		b = append(b, '}')
	}
	b = append(b, `,"lastMessage":`...)
	b = v.LastMessage.AppendJSON(b)
	b = append(b, `,"unreadCount":`...)
	b = strconv.AppendInt(b, v.UnreadCount, 10)
	b = append(b, `,"muted":`...)
	b = strconv.AppendBool(b, v.Muted)
	b = append(b, `,"lastActivityAt":`...)
	b = appendJSONTime(b, v.LastActivityAt)
	return append(b, '}')
}
