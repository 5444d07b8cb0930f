package service

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/parley-chat/parley"
)

// SyncItem is one thing that happened in one of the caller's conversations.
type SyncItem struct {
	Cursor string          `json:"cursor"`
	Event  string          `json:"event"` // the real-time event name, e.g. new_message
	Data   json.RawMessage `json:"data"`
}

// SyncResult is a page of the caller's sync log.
type SyncResult struct {
	Items      []SyncItem `json:"items"`
	NextCursor string     `json:"nextCursor"`
	HasMore    bool       `json:"hasMore"`
}

// Sync limits.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// Sync returns everything addressed to the caller after cursor, oldest
// first: messages, edits, deletions, reactions, receipts, and membership
// and group changes. Without a cursor it starts just before the oldest
// message not yet delivered to the caller, so the first page holds every
// undelivered message. A client that connects its socket first and then
// syncs misses nothing (it may see an event twice and drops it by
// messageId). Errors: EINVALID.
func (s *Service) Sync(ctx context.Context, caller *parley.Identity, cursor string, limit int) (*SyncResult, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	limit = min(limit, MaxPageSize)
	var after int64
	if cursor != "" {
		n, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || n < 0 {
			return nil, parley.Errorf(parley.EINVALID, "cursor is not one this server gave out")
		}
		after = n
	} else {
		first, err := s.store.Changes.FirstUndeliveredChange(ctx, caller.UserID)
		if err != nil {
			return nil, err
		}
		if first == 0 {
			head, err := s.store.Changes.HeadChange(ctx)
			if err != nil {
				return nil, err
			}
			return &SyncResult{Items: []SyncItem{}, NextCursor: strconv.FormatInt(head, 10)}, nil
		}
		after = first - 1
	}
	changes, msgs, err := s.store.Changes.Changes(ctx, caller.UserID, after, limit+1)
	if err != nil {
		return nil, err
	}
	res := &SyncResult{Items: []SyncItem{}, NextCursor: strconv.FormatInt(after, 10)}
	if len(changes) > limit {
		changes, res.HasMore = changes[:limit], true
	}
	v := s.newViewer()
	for _, m := range msgs {
		v.cover(m)
	}
	for _, c := range changes {
		res.NextCursor = strconv.FormatInt(c.ID, 10)
		data := json.RawMessage(c.Payload)
		if c.Event == parley.EventNewMessage || c.Event == parley.EventNewGroupMessage || c.Event == parley.EventNewChannelMessage {
			m := msgs[c.MessageID]
			if m == nil {
				continue // hidden for this user
			}
			view, err := v.view(ctx, m)
			if err != nil {
				return nil, err
			}
			if data, err = json.Marshal(view); err != nil {
				return nil, err
			}
		}
		res.Items = append(res.Items, SyncItem{Cursor: res.NextCursor, Event: c.Event, Data: data})
	}
	return res, nil
}

// ChatPeer is the other side of a direct chat in the chat list.
type ChatPeer struct {
	UserID   string      `json:"userId"`
	Username string      `json:"username"`
	Name     string      `json:"name"`
	Avatar   string      `json:"avatar"`
	Online   bool        `json:"online"`
	LastSeen parley.Time `json:"lastSeen"`
}

// ChatGroup is the group of a group chat in the chat list.
type ChatGroup struct {
	GroupID      string `json:"groupId"`
	Name         string `json:"name"`
	Avatar       string `json:"avatar"`
	MembersCount int    `json:"membersCount"`
	Role         string `json:"role"`
}

// ChatChannel is the channel of a channel row.
type ChatChannel struct {
	ChannelID     string `json:"channelId"`
	CommunityID   string `json:"communityId"`
	CommunityName string `json:"communityName"`
	Name          string `json:"name"`
	Type          string `json:"type"`
	IsPrivate     bool   `json:"isPrivate"`
	Role          string `json:"role"`
}

// ChatView is one row of GET /api/chats.
type ChatView struct {
	ConversationID string       `json:"conversationId"`
	Type           string       `json:"type"`
	Peer           *ChatPeer    `json:"peer,omitempty"`
	Group          *ChatGroup   `json:"group,omitempty"`
	Channel        *ChatChannel `json:"channel,omitempty"`
	LastMessage    *MessageView `json:"lastMessage"`
	UnreadCount    int64        `json:"unreadCount"`
	Muted          bool         `json:"muted"`
	LastActivityAt parley.Time  `json:"lastActivityAt"`
}

// Chats returns the caller's conversations, most recent activity first,
// with the last message and unread count. It asks the store a fixed number
// of questions for any page: the page, then the groups, peers, blocks,
// mutes, contacts and presence of all its rows at once.
func (s *Service) Chats(ctx context.Context, caller *parley.Identity, limit int) ([]*ChatView, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	chats, err := s.store.Conversations.Chats(ctx, caller.UserID, min(limit, MaxPageSize))
	if err != nil {
		return nil, err
	}
	var groupIDs, peerIDs, channelIDs []string
	for _, c := range chats {
		if c.Conversation.Kind == parley.KindChannel {
			channelIDs = append(channelIDs, c.Conversation.ID)
		} else if c.Conversation.Kind == parley.KindGroup {
			groupIDs = append(groupIDs, c.Conversation.ID)
		} else if c.Conversation.Kind == parley.KindDirect && c.PeerID != "" {
			peerIDs = append(peerIDs, c.PeerID)
		}
	}
	now := s.now()
	groups := map[string]*parley.Group{}
	users := map[string]*parley.User{}
	var blocked, muted, contactOf, online map[string]bool
	if len(groupIDs) > 0 {
		gs, err := s.store.Groups.GroupsByIDs(ctx, groupIDs)
		if err != nil {
			return nil, err
		}
		for _, g := range gs {
			groups[g.ID] = g
		}
	}
	channels, err := s.chatChannels(ctx, channelIDs)
	if err != nil {
		return nil, err
	}
	if len(peerIDs) > 0 {
		us, err := s.store.Users.UsersByIDs(ctx, peerIDs)
		if err != nil {
			return nil, err
		}
		var byContacts []string // whose last seen only their contacts see
		for _, u := range us {
			users[u.ID] = u
			if u.Settings.LastSeenVisibility == parley.VisibilityContacts {
				byContacts = append(byContacts, u.ID)
			}
		}
		if blocked, err = s.store.Social.BlockedAmong(ctx, caller.UserID, peerIDs); err != nil {
			return nil, err
		}
		if muted, err = s.store.Social.MutedAmong(ctx, caller.UserID, peerIDs, now); err != nil {
			return nil, err
		}
		if contactOf, err = s.store.Social.ContactOfAmong(ctx, caller.UserID, byContacts); err != nil {
			return nil, err
		}
		if online, err = s.presence.onlineAmong(ctx, peerIDs); err != nil {
			return nil, err
		}
	}
	// The viewer starts with what the page already read: the members of
	// each direct chat and the read-receipt settings of the peers, so
	// that viewing the last messages reads nothing per row for them.
	v := s.newViewer()
	for _, c := range chats {
		if len(c.Members) > 0 {
			ms := make(map[string]*parley.Member, len(c.Members))
			for _, m := range c.Members {
				ms[m.UserID] = m
			}
			v.members[c.Conversation.ID] = ms
		}
	}
	for _, u := range users {
		v.receipt[u.ID] = u.Settings.ReadReceipts
	}
	for _, c := range chats {
		if m := c.LastMessage; m != nil && m.RecipientID != "" {
			v.dated(m, parley.StatusDelivered, c.LastDeliveredAt)
			v.dated(m, parley.StatusSeen, c.LastSeenAt)
		}
	}
	out := make([]*ChatView, 0, len(chats))
	for _, c := range chats {
		cv := &ChatView{ConversationID: c.Conversation.ID, Type: c.Conversation.Kind, UnreadCount: c.Unread,
			LastActivityAt: parley.Time{Time: c.Conversation.LastMessageAt}, Muted: c.MutedUntil.After(now)}
		if c.LastMessage != nil {
			if cv.LastMessage, err = v.view(ctx, c.LastMessage); err != nil {
				return nil, err
			}
		}
		if c.Conversation.Kind == parley.KindGroup {
			g := groups[c.Conversation.ID]
			if g == nil {
				return nil, parley.Errorf(parley.ENOTFOUND, "group not found")
			}
			cv.Group = &ChatGroup{GroupID: g.ID, Name: g.Name, Avatar: g.Avatar, MembersCount: g.MembersCount, Role: c.Member.Role}
			if cv.LastActivityAt.IsZero() {
				cv.LastActivityAt = parley.Time{Time: c.Conversation.CreatedAt}
			}
		}
		if c.Conversation.Kind == parley.KindChannel {
			ch := channels[c.Conversation.ID]
			if ch == nil {
				return nil, parley.Errorf(parley.ENOTFOUND, "channel not found")
			}
			ch.Role = c.Member.Role
			cv.Channel = ch
			if cv.LastActivityAt.IsZero() {
				cv.LastActivityAt = parley.Time{Time: c.Conversation.CreatedAt}
			}
		}
		if c.Conversation.Kind == parley.KindDirect && c.PeerID != "" {
			u := users[c.PeerID]
			if u == nil {
				return nil, parley.Errorf(parley.ENOTFOUND, "user not found")
			}
			// What presenceOf says, from the sets: nothing across a block;
			// last seen as the peer's setting allows.
			cv.Peer = &ChatPeer{UserID: u.ID, Username: u.Username, Name: u.Name, Avatar: u.Avatar}
			if !blocked[u.ID] {
				cv.Peer.Online = online[u.ID]
				vis := u.Settings.LastSeenVisibility
				if vis == parley.VisibilityEveryone || (vis == parley.VisibilityContacts && contactOf[u.ID]) {
					cv.Peer.LastSeen = parley.Time{Time: u.LastSeenAt}
				}
			}
			cv.Muted = muted[u.ID]
		}
		out = append(out, cv)
	}
	return out, nil
}

// chatChannels reads the channels of a page of chats with their communities.
func (s *Service) chatChannels(ctx context.Context, ids []string) (map[string]*ChatChannel, error) {
	out := map[string]*ChatChannel{}
	if len(ids) == 0 {
		return out, nil
	}
	list, err := s.store.Communities.ChannelsByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	var communityIDs []string
	for _, ch := range list {
		communityIDs = append(communityIDs, ch.CommunityID)
	}
	cs, err := s.store.Communities.CommunitiesByIDs(ctx, communityIDs)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, c := range cs {
		names[c.ID] = c.Name
	}
	for _, ch := range list {
		out[ch.ID] = &ChatChannel{ChannelID: ch.ID, CommunityID: ch.CommunityID, CommunityName: names[ch.CommunityID], Name: ch.Name,
			Type: ch.Type, IsPrivate: ch.IsPrivate}
	}
	return out, nil
}

// ChatMuteInput is the body of POST /api/chats/mute and unmute.
type ChatMuteInput struct {
	ConversationID string `json:"conversationId"` // a group's or channel's id
	Duration       *int64 `json:"duration"`       // seconds; nil: until unmuted
	UserID         string `json:"userId"`         // optional; must be the caller
}

// ChatMuteResult answers a chat mute: expiresIn echoes the duration (null:
// until unmuted, or unmuted).
type ChatMuteResult struct {
	ConversationID string `json:"conversationId"`
	Muted          bool   `json:"muted"`
	ExpiresIn      *int64 `json:"expiresIn"`
}

// MuteChat mutes (or with mute false unmutes) a group or channel for the
// caller: its row in /api/chats says muted, and pushes stop. A direct chat
// is muted by muting the other user (POST /api/users/mute).
// Errors: EINVALID, ENOTFOUND (not a member).
func (s *Service) MuteChat(ctx context.Context, caller *parley.Identity, in ChatMuteInput, mute bool) (*ChatMuteResult, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	if err := required("conversationId", in.ConversationID); err != nil {
		return nil, err
	}
	if len(in.ConversationID) > 64 || !hasMembers(in.ConversationID) {
		if parley.KindOf(in.ConversationID) == parley.KindDirect {
			return nil, parley.Errorf(parley.EINVALID, "mute a direct chat by muting the user (POST /api/users/mute)")
		}
		return nil, parley.Errorf(parley.ENOTFOUND, "conversation not found")
	}
	var until time.Time
	if mute {
		until = parley.MutedForever
		if in.Duration != nil {
			if *in.Duration <= 0 || *in.Duration > MaxMuteSeconds {
				return nil, parley.Errorf(parley.EINVALID, "duration must be between 1 and %d seconds", MaxMuteSeconds)
			}
			until = s.now().Add(time.Duration(*in.Duration) * time.Second)
		}
	}
	if err := s.store.Conversations.MuteConversation(ctx, in.ConversationID, caller.UserID, until); err != nil {
		return nil, err
	}
	res := &ChatMuteResult{ConversationID: in.ConversationID, Muted: mute}
	if mute {
		res.ExpiresIn = in.Duration
	}
	return res, nil
}
