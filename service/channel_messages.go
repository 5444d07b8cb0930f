package service

import (
	"context"

	"github.com/parley-chat/parley"
)

// ChannelSendInput is the body of POST /api/channel-messages/send and the
// socket's send_channel_message.
type ChannelSendInput struct {
	ChannelID        string `json:"channelId"`
	SenderID         string `json:"senderId"` // optional; must be the caller
	Content          string `json:"content"`
	EncryptedContent string `json:"encryptedContent"` // accepted as a synonym of content
	Type             string `json:"type"`
	MediaID          string `json:"mediaId"`
	ReplyToID        string `json:"replyToId"`
	ClientMessageID  string `json:"clientMessageId"`
}

// ChannelSendResult is the answer to a channel send.
type ChannelSendResult struct {
	MessageID       string      `json:"messageId"`
	ChannelID       string      `json:"channelId"`
	ConversationID  string      `json:"conversationId"`
	Status          string      `json:"status"`
	SentAt          parley.Time `json:"sentAt"`
	Seq             int64       `json:"seq"`
	ClientMessageID string      `json:"clientMessageId,omitempty"`
	Duplicate       bool        `json:"duplicate,omitempty"`
}

// SendChannelMessage stores a channel message and delivers
// new_channel_message to every reader at the moment of the commit. Only
// admins post in announcement channels. Readers who blocked the sender
// still receive it, as in groups. The store checks who reads the channel
// and the announcement rule under the channel's lock.
// Errors: ENOTFOUND, EFORBIDDEN, EINVALID, ETOOLARGE, ECONFLICT, EUNAVAILABLE.
func (s *Service) SendChannelMessage(ctx context.Context, caller *parley.Identity, in ChannelSendInput) (*ChannelSendResult, error) {
	if err := checkSelf(caller, in.SenderID, "senderId"); err != nil {
		return nil, err
	}
	send, err := s.postToMembers(ctx, caller, parley.KindChannel, "channelId", in.ChannelID, memberPost{encrypted: in.EncryptedContent,
		content: in.Content, typ: in.Type, mediaID: in.MediaID, replyToID: in.ReplyToID, clientMessageID: in.ClientMessageID})
	if err != nil {
		return nil, err
	}
	m := send.Message
	return &ChannelSendResult{MessageID: m.ID, ChannelID: m.ConversationID, ConversationID: m.ConversationID, Status: parley.StatusSent,
		SentAt: parley.Time{Time: m.SentAt}, Seq: m.Seq, ClientMessageID: m.ClientMessageID, Duplicate: send.Duplicate}, nil
}

// ChannelHistory returns a channel's messages, newest first, to a reader:
// a member who joins reads the channel's whole history. Errors: ENOTFOUND.
func (s *Service) ChannelHistory(ctx context.Context, caller *parley.Identity, channelID string, q HistoryQuery) ([]*MessageView, error) {
	ch, _, _, err := s.channel(ctx, caller, channelID)
	if err != nil {
		return nil, err
	}
	return s.history(ctx, caller, ch.ID, q)
}

// PinInput is the body of POST /api/channel-messages/pin and unpin.
type PinInput struct {
	MessageID string `json:"messageId"`
	ChannelID string `json:"channelId"` // optional; must be the message's channel
}

// PinView is a pin, and the channel_message_pinned/unpinned event.
type PinView struct {
	ChannelID string       `json:"channelId"`
	MessageID string       `json:"messageId"`
	PinnedBy  string       `json:"pinnedBy"`
	PinnedAt  parley.Time  `json:"pinnedAt"`
	Pinned    bool         `json:"pinned"`
	Message   *MessageView `json:"message,omitempty"` // in GET .../pinned
}

// Pin pins (or with pin false unpins) a channel message (admins); readers
// get channel_message_pinned or channel_message_unpinned. Pinning twice
// changes nothing. Errors: ENOTFOUND, EFORBIDDEN, EINVALID.
func (s *Service) Pin(ctx context.Context, caller *parley.Identity, in PinInput, pin bool) (*PinView, error) {
	m, mem, err := s.visibleMessage(ctx, caller, in.MessageID)
	if err != nil {
		return nil, err
	}
	if !isChannel(m.ConversationID) || (in.ChannelID != "" && in.ChannelID != m.ConversationID) {
		return nil, parley.Errorf(parley.ENOTFOUND, "message not found")
	}
	if mem.Role != parley.RoleAdmin {
		return nil, parley.Errorf(parley.EFORBIDDEN, "only community admins can pin messages")
	}
	if m.DeletedForEveryone && pin {
		return nil, parley.Errorf(parley.EINVALID, "message was deleted")
	}
	now := s.now()
	v := &PinView{ChannelID: m.ConversationID, MessageID: m.ID, PinnedBy: caller.UserID, PinnedAt: parley.Time{Time: now}, Pinned: pin}
	name := parley.EventChannelUnpinned
	if pin {
		name = parley.EventChannelPinned
	}
	ch, err := s.encodeChange(m.ConversationID, m.Seq, name, m.ID, v, now)
	if err != nil {
		return nil, err
	}
	var changed bool
	if pin {
		changed, err = s.store.Communities.Pin(ctx, &parley.Pin{ChannelID: m.ConversationID, MessageID: m.ID, PinnedBy: caller.UserID,
			PinnedAt: now}, ch)
	} else {
		changed, err = s.store.Communities.Unpin(ctx, m.ConversationID, m.ID, ch)
	}
	if err != nil || !changed {
		return v, err
	}
	to, err := s.conversationUsers(ctx, m.ConversationID)
	if err != nil {
		return nil, err
	}
	s.publishChange(ctx, ch, to)
	return v, nil
}

// Pinned lists a channel's pinned messages, newest pin first, each with
// the message. Errors: ENOTFOUND.
func (s *Service) Pinned(ctx context.Context, caller *parley.Identity, channelID string) ([]*PinView, error) {
	ch, _, _, err := s.channel(ctx, caller, channelID)
	if err != nil {
		return nil, err
	}
	pins, err := s.store.Communities.Pins(ctx, ch.ID)
	if err != nil {
		return nil, err
	}
	out := make([]*PinView, 0, len(pins))
	v := s.newViewer()
	for _, p := range pins {
		m, err := s.store.Messages.MessageByID(ctx, p.MessageID)
		if parley.ErrorCode(err) == parley.ENOTFOUND {
			continue
		} else if err != nil {
			return nil, err
		}
		mv, err := v.view(ctx, m)
		if err != nil {
			return nil, err
		}
		out = append(out, &PinView{ChannelID: p.ChannelID, MessageID: p.MessageID, PinnedBy: p.PinnedBy,
			PinnedAt: parley.Time{Time: p.PinnedAt}, Pinned: true, Message: mv})
	}
	return out, nil
}
