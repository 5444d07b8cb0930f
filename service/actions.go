package service

import (
	"context"
	"unicode/utf8"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/ratelimit"
)

// ReplyInput is the body of POST /api/messages/reply.
type ReplyInput = SendInput

// Reply sends a message that answers replyToId, which must be a message of
// the same conversation. Errors: as SendMessage.
func (s *Service) Reply(ctx context.Context, caller *parley.Identity, in SendInput) (*SendResult, error) {
	if err := checkSelf(caller, in.SenderID, "senderId"); err != nil {
		return nil, err
	}
	if err := required("replyToId", in.ReplyToID); err != nil {
		return nil, err
	}
	return s.SendMessage(ctx, caller, in)
}

// ReactInput is the body of POST /api/messages/react.
type ReactInput struct {
	MessageID string `json:"messageId"`
	Reaction  string `json:"reaction"`
	UserID    string `json:"userId"`
}

// ReactResult is the answer to a reaction.
type ReactResult struct {
	MessageID string `json:"messageId"`
	GroupID   string `json:"groupId,omitempty"` // group messages only
	Reaction  string `json:"reaction"`
}

type reactionEvent struct {
	MessageID      string      `json:"messageId"`
	ConversationID string      `json:"conversationId"`
	GroupID        string      `json:"groupId,omitempty"`
	ChannelID      string      `json:"channelId,omitempty"`
	UserID         string      `json:"userId"`
	Reaction       string      `json:"reaction"`
	At             parley.Time `json:"at"`
}

// React sets the caller's one reaction to a message; an empty reaction
// removes it. message_reaction goes to both sides. Errors: ENOTFOUND,
// EINVALID, EFORBIDDEN, EBLOCKED.
func (s *Service) React(ctx context.Context, caller *parley.Identity, in ReactInput) (*ReactResult, error) {
	return s.react(ctx, caller, in, s.visibleMessage)
}

// messageLookup finds a message the caller may act on, with their membership.
type messageLookup func(ctx context.Context, caller *parley.Identity, messageID string) (*parley.Message, *parley.Member, error)

func (s *Service) react(ctx context.Context, caller *parley.Identity, in ReactInput, lookup messageLookup) (*ReactResult, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	if len(in.Reaction) > parley.MaxReactionLen || !utf8.ValidString(in.Reaction) {
		return nil, parley.Errorf(parley.EINVALID, "reaction must be valid UTF-8 of at most %d bytes", parley.MaxReactionLen)
	}
	m, _, err := lookup(ctx, caller, in.MessageID)
	if err != nil {
		return nil, err
	}
	if m.DeletedForEveryone {
		return nil, parley.Errorf(parley.EINVALID, "message was deleted")
	}
	if err := s.notBlocked(ctx, m, caller.UserID); err != nil {
		return nil, err
	}
	now := s.now()
	ev := reactionEvent{MessageID: m.ID, ConversationID: m.ConversationID, UserID: caller.UserID, Reaction: in.Reaction, At: parley.Time{Time: now}}
	name := parley.EventMessageReaction
	if isGroup(m.ConversationID) {
		ev.GroupID, name = m.ConversationID, parley.EventGroupMessageReaction
	} else if isChannel(m.ConversationID) {
		ev.ChannelID = m.ConversationID
	}
	ch, err := s.encodeChange(m.ConversationID, m.Seq, name, m.ID, ev, now)
	if err != nil {
		return nil, err
	}
	if err := s.store.Messages.SetReaction(ctx, m.ID, caller.UserID, in.Reaction, now, ch); err != nil {
		return nil, err
	}
	to, err := s.messageAudience(ctx, m)
	if err != nil {
		return nil, err
	}
	s.publishChange(ctx, ch, to)
	return &ReactResult{MessageID: m.ID, GroupID: ev.GroupID, Reaction: in.Reaction}, nil
}

// notBlocked refuses actions between the two sides of a blocked direct chat.
func (s *Service) notBlocked(ctx context.Context, m *parley.Message, actor string) error {
	other := m.RecipientID
	if other == actor {
		other = m.SenderID
	}
	if other == "" || other == actor {
		return nil
	}
	blocked, err := s.store.Social.BlockedEither(ctx, actor, other)
	if err != nil {
		return err
	}
	if blocked {
		return parley.Errorf(parley.EBLOCKED, "you cannot interact with this user")
	}
	return nil
}

// DeleteInput is the body of POST /api/messages/delete.
type DeleteInput struct {
	MessageID         string `json:"messageId"`
	UserID            string `json:"userId"`
	DeleteForEveryone bool   `json:"deleteForEveryone"`
}

// DeleteResult is the answer to a delete.
type DeleteResult struct {
	MessageID         string `json:"messageId"`
	GroupID           string `json:"groupId,omitempty"` // group messages only
	DeleteForEveryone bool   `json:"deleteForEveryone"`
}

type deleteEvent struct {
	MessageID         string      `json:"messageId"`
	ConversationID    string      `json:"conversationId"`
	GroupID           string      `json:"groupId,omitempty"`
	ChannelID         string      `json:"channelId,omitempty"`
	DeleteForEveryone bool        `json:"deleteForEveryone"`
	DeletedBy         string      `json:"deletedBy"`
	At                parley.Time `json:"at"`
}

// DeleteMessage deletes for everyone (the sender, within 48 hours: the
// message becomes a tombstone for both sides) or for the caller only.
// message_deleted goes to everyone affected. Errors: ENOTFOUND, EFORBIDDEN.
func (s *Service) DeleteMessage(ctx context.Context, caller *parley.Identity, in DeleteInput) (*DeleteResult, error) {
	return s.deleteMessage(ctx, caller, in, s.visibleMessage)
}

func (s *Service) deleteMessage(ctx context.Context, caller *parley.Identity, in DeleteInput, lookup messageLookup) (*DeleteResult, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	m, mem, err := lookup(ctx, caller, in.MessageID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	ev := deleteEvent{MessageID: m.ID, ConversationID: m.ConversationID, DeleteForEveryone: in.DeleteForEveryone, DeletedBy: caller.UserID,
		At: parley.Time{Time: now}}
	name := parley.EventMessageDeleted
	group := hasMembers(m.ConversationID) // admins delete for everyone
	if isGroup(m.ConversationID) {
		ev.GroupID, name = m.ConversationID, parley.EventGroupMessageDeleted
	} else if group {
		ev.ChannelID = m.ConversationID
	}
	ch, err := s.encodeChange(m.ConversationID, m.Seq, name, m.ID, ev, now)
	if err != nil {
		return nil, err
	}
	to := []string{caller.UserID}
	if in.DeleteForEveryone {
		if m.SenderID != caller.UserID && !(group && mem.Role == parley.RoleAdmin) {
			if group {
				return nil, parley.Errorf(parley.EFORBIDDEN, "only the sender or an admin may delete a message for everyone")
			}
			return nil, parley.Errorf(parley.EFORBIDDEN, "only the sender may delete a message for everyone")
		}
		if now.Sub(m.SentAt) > parley.DeleteForEveryoneLimit {
			return nil, parley.Errorf(parley.EFORBIDDEN, "messages can be deleted for everyone only within 48 hours")
		}
		if !m.DeletedForEveryone {
			if err := s.store.Messages.DeleteForEveryone(ctx, m.ID, ch); err != nil {
				return nil, err
			}
		}
		if to, err = s.messageAudience(ctx, m); err != nil {
			return nil, err
		}
	} else {
		ch.OnlyUser = caller.UserID
		if err := s.store.Messages.HideMessage(ctx, m.ID, caller.UserID, ch); err != nil {
			return nil, err
		}
	}
	s.publishChange(ctx, ch, to)
	return &DeleteResult{MessageID: m.ID, GroupID: ev.GroupID, DeleteForEveryone: in.DeleteForEveryone}, nil
}

// EditInput is the body of POST /api/messages/edit.
type EditInput struct {
	MessageID        string `json:"messageId"`
	EncryptedContent string `json:"encryptedContent"`
	Content          string `json:"content"`
	UserID           string `json:"userId"`
}

// EditResult is the answer to an edit.
type EditResult struct {
	MessageID string      `json:"messageId"`
	EditedAt  parley.Time `json:"editedAt"`
}

// EditMessage replaces a message's content: the sender only, within 15
// minutes, not after a delete for everyone. message_edited (the full
// message) goes to both sides. Errors: ENOTFOUND, EFORBIDDEN, EINVALID, ETOOLARGE.
func (s *Service) EditMessage(ctx context.Context, caller *parley.Identity, in EditInput) (*EditResult, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	content := in.EncryptedContent
	if content == "" {
		content = in.Content
	}
	m, _, err := s.visibleMessage(ctx, caller, in.MessageID)
	if err != nil {
		return nil, err
	}
	if _, err := validateContent(content, m.Type); err != nil {
		return nil, err
	}
	if m.SenderID != caller.UserID {
		return nil, parley.Errorf(parley.EFORBIDDEN, "only the sender may edit a message")
	}
	if m.DeletedForEveryone {
		return nil, parley.Errorf(parley.EINVALID, "message was deleted")
	}
	now := s.now()
	if now.Sub(m.SentAt) > parley.EditWindow {
		return nil, parley.Errorf(parley.EFORBIDDEN, "messages can be edited only within 15 minutes")
	}
	m.Content, m.ContentHash, m.EditedAt = content, contentHash(content), now
	view, err := s.newViewer().view(ctx, m)
	if err != nil {
		return nil, err
	}
	ch, err := s.encodeChange(m.ConversationID, m.Seq, parley.EventMessageEdited, m.ID, view, now)
	if err != nil {
		return nil, err
	}
	if err := s.store.Messages.EditMessage(ctx, m.ID, content, m.ContentHash, now, ch); err != nil {
		return nil, err
	}
	to, err := s.messageAudience(ctx, m)
	if err != nil {
		return nil, err
	}
	s.publishChange(ctx, ch, to)
	return &EditResult{MessageID: m.ID, EditedAt: parley.Time{Time: now}}, nil
}

// TypingInput is the body of POST /api/messages/typing and the socket's typing.
// Either recipientId (a direct chat) or groupId is given.
type TypingInput struct {
	SenderID    string `json:"senderId"`
	RecipientID string `json:"recipientId"`
	GroupID     string `json:"groupId"`
	IsTyping    *bool  `json:"isTyping"`
}

type typingEvent struct {
	SenderID    string      `json:"senderId"`
	RecipientID string      `json:"recipientId,omitempty"`
	GroupID     string      `json:"groupId,omitempty"`
	IsTyping    bool        `json:"isTyping"`
	Timestamp   parley.Time `json:"timestamp"`
}

// Typing relays a typing indicator to the recipient (or the group's
// members). It is not stored, is rate-limited per sender, and never
// crosses a block. Errors: EFORBIDDEN,
// EINVALID, ENOTFOUND, EBLOCKED, ERATELIMITED.
func (s *Service) Typing(ctx context.Context, caller *parley.Identity, in TypingInput) error {
	if err := checkSelf(caller, in.SenderID, "senderId"); err != nil {
		return err
	}
	if in.GroupID != "" {
		if in.RecipientID != "" {
			return parley.Errorf(parley.EINVALID, "give recipientId or groupId, not both")
		}
		if ok, _ := s.typing.Take(caller.UserID, s.cfg.Now()); !ok {
			return parley.Errorf(parley.ERATELIMITED, "too many typing indicators")
		}
		return s.groupTyping(ctx, caller, in.GroupID, in.IsTyping == nil || *in.IsTyping)
	}
	if err := required("recipientId", in.RecipientID); err != nil {
		return err
	}
	if in.RecipientID == caller.UserID {
		return parley.Errorf(parley.EINVALID, "recipientId must not be yourself")
	}
	if ok, _ := s.typing.Take(caller.UserID, s.cfg.Now()); !ok {
		return parley.Errorf(parley.ERATELIMITED, "too many typing indicators")
	}
	if _, err := s.store.Users.UserByID(ctx, in.RecipientID); err != nil {
		return err
	}
	if blocked, err := s.store.Social.BlockedEither(ctx, caller.UserID, in.RecipientID); err != nil {
		return err
	} else if blocked {
		return parley.Errorf(parley.EBLOCKED, "you cannot message this user")
	}
	typing := in.IsTyping == nil || *in.IsTyping
	s.publish(ctx, parley.EventTyping, typingEvent{SenderID: caller.UserID, RecipientID: in.RecipientID, IsTyping: typing, Timestamp: parley.Time{Time: s.now()}}, []string{in.RecipientID})
	return nil
}

// newTypingLimiter allows each user 5 typing indicators a second, in
// bursts of 10.
func newTypingLimiter() *ratelimit.Keyed { return ratelimit.New(5, 10) }
