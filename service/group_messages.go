package service

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/parley-chat/parley"
)

// GroupSendInput is the body of POST /api/group-messages/send and the
// socket's send_group_message.
type GroupSendInput struct {
	GroupID          string `json:"groupId"`
	SenderID         string `json:"senderId"` // optional; must be the caller
	EncryptedContent string `json:"encryptedContent"`
	Content          string `json:"content"` // accepted as a synonym of encryptedContent
	Type             string `json:"type"`
	MediaID          string `json:"mediaId"`
	ReplyToID        string `json:"replyToId"`
	ClientMessageID  string `json:"clientMessageId"`
}

// GroupSendResult is the answer to a group send.
type GroupSendResult struct {
	MessageID       string      `json:"messageId"`
	GroupID         string      `json:"groupId"`
	ConversationID  string      `json:"conversationId"`
	Status          string      `json:"status"`
	SentAt          parley.Time `json:"sentAt"`
	Seq             int64       `json:"seq"`
	ClientMessageID string      `json:"clientMessageId,omitempty"`
	Duplicate       bool        `json:"duplicate,omitempty"`
}

// SendGroupMessage stores a group message and delivers new_group_message
// to every member at the moment of the commit (the sender's other devices
// included). Members who blocked the sender still receive it. The store
// checks membership and onlyAdminsCanSend under the group's lock, so a
// message never reaches a member removed before it committed.
// Errors: ENOTFOUND (no such group for the caller), EFORBIDDEN, EINVALID,
// ETOOLARGE, EUNAVAILABLE.
func (s *Service) SendGroupMessage(ctx context.Context, caller *parley.Identity, in GroupSendInput) (*GroupSendResult, error) {
	if err := checkSelf(caller, in.SenderID, "senderId"); err != nil {
		return nil, err
	}
	send, err := s.postToMembers(ctx, caller, parley.KindGroup, "groupId", in.GroupID, memberPost{encrypted: in.EncryptedContent,
		content: in.Content, typ: in.Type, mediaID: in.MediaID, replyToID: in.ReplyToID, clientMessageID: in.ClientMessageID})
	if err != nil {
		return nil, err
	}
	m := send.Message
	return &GroupSendResult{MessageID: m.ID, GroupID: m.ConversationID, ConversationID: m.ConversationID, Status: parley.StatusSent,
		SentAt: parley.Time{Time: m.SentAt}, Seq: m.Seq, ClientMessageID: m.ClientMessageID, Duplicate: send.Duplicate}, nil
}

// GroupHistory returns the group's messages the caller may see (those
// sent while they are a member), newest first. Errors: ENOTFOUND.
func (s *Service) GroupHistory(ctx context.Context, caller *parley.Identity, groupID string, q HistoryQuery) ([]*MessageView, error) {
	g, _, err := s.groupMember(ctx, caller, groupID)
	if parley.ErrorCode(err) == parley.ENOTFOUND && isGroup(groupID) {
		// A former member reads what was sent while they were a member;
		// the store answers ENOTFOUND to anyone else.
		return s.history(ctx, caller, groupID, q)
	}
	if err != nil {
		return nil, err
	}
	return s.history(ctx, caller, g.ID, q)
}

// inGroup looks up group messages only (of groupID, when given).
func (s *Service) inGroup(groupID string) messageLookup {
	return func(ctx context.Context, caller *parley.Identity, messageID string) (*parley.Message, *parley.Member, error) {
		return s.groupMessage(ctx, caller, messageID, groupID)
	}
}

// groupMessage returns a group message the caller may see, or ENOTFOUND;
// groupID, when given, must be the message's group.
func (s *Service) groupMessage(ctx context.Context, caller *parley.Identity, messageID, groupID string) (*parley.Message, *parley.Member, error) {
	m, mem, err := s.visibleMessage(ctx, caller, messageID)
	if err != nil {
		return nil, nil, err
	}
	if !isGroup(m.ConversationID) || (groupID != "" && groupID != m.ConversationID) {
		return nil, nil, parley.Errorf(parley.ENOTFOUND, "message not found")
	}
	return m, mem, nil
}

// GroupReactInput is the body of POST /api/group-messages/react.
type GroupReactInput struct {
	GroupID string `json:"groupId"` // optional; must be the message's group
	ReactInput
}

// GroupReact sets the caller's reaction to a group message;
// group_message_reaction goes to the members. Errors: as React.
func (s *Service) GroupReact(ctx context.Context, caller *parley.Identity, in GroupReactInput) (*GroupReactResult, error) {
	r, err := s.react(ctx, caller, in.ReactInput, s.inGroup(in.GroupID))
	if err != nil {
		return nil, err
	}
	return &GroupReactResult{MessageID: r.MessageID, GroupID: r.GroupID, Reaction: r.Reaction}, nil
}

// GroupReactResult answers a group reaction, in the seed's shape: groupId
// is always there.
type GroupReactResult struct {
	MessageID string `json:"messageId"`
	GroupID   string `json:"groupId"`
	Reaction  string `json:"reaction"`
}

// GroupDeleteResult answers a group message deletion, in the seed's shape.
type GroupDeleteResult struct {
	MessageID         string `json:"messageId"`
	GroupID           string `json:"groupId"`
	DeleteForEveryone bool   `json:"deleteForEveryone"`
}

// GroupStatusResult answers a group receipt mark, in the seed's shape.
type GroupStatusResult struct {
	MessageID string      `json:"messageId"`
	GroupID   string      `json:"groupId"`
	Status    string      `json:"status"`
	UpdatedAt parley.Time `json:"updatedAt"`
}

// GroupDeleteInput is the body of POST /api/group-messages/delete.
type GroupDeleteInput struct {
	GroupID string `json:"groupId"` // optional; must be the message's group
	DeleteInput
}

// GroupDeleteMessage deletes a group message for everyone (its sender, or
// a group admin, within 48 hours) or for the caller only;
// group_message_deleted goes to those affected. Errors: as DeleteMessage.
func (s *Service) GroupDeleteMessage(ctx context.Context, caller *parley.Identity, in GroupDeleteInput) (*GroupDeleteResult, error) {
	r, err := s.deleteMessage(ctx, caller, in.DeleteInput, s.inGroup(in.GroupID))
	if err != nil {
		return nil, err
	}
	return &GroupDeleteResult{MessageID: r.MessageID, GroupID: r.GroupID, DeleteForEveryone: r.DeleteForEveryone}, nil
}

// GroupStatusInput is the body of POST /api/group-messages/status.
type GroupStatusInput struct {
	GroupID string `json:"groupId"` // optional; must be the message's group
	StatusInput
}

// GroupMarkStatus records that the caller received or read a group message
// and every earlier one of the group. Errors: as MarkStatus.
func (s *Service) GroupMarkStatus(ctx context.Context, caller *parley.Identity, in GroupStatusInput) (*GroupStatusResult, error) {
	r, err := s.markStatus(ctx, caller, in.StatusInput, s.inGroup(in.GroupID))
	if err != nil {
		return nil, err
	}
	return &GroupStatusResult{MessageID: r.MessageID, GroupID: r.GroupID, Status: r.Status, UpdatedAt: r.UpdatedAt}, nil
}

// groupStatusUpdate is group_message_status_update: member userId's
// cursor reached upToSeq, so every message up to it is delivered (or seen)
// for them.
type groupStatusUpdate struct {
	MessageID      string      `json:"messageId"`
	GroupID        string      `json:"groupId"`
	ConversationID string      `json:"conversationId"`
	Status         string      `json:"status"`
	UpToSeq        int64       `json:"upToSeq"`
	UserID         string      `json:"userId"`
	UpdatedAt      parley.Time `json:"updatedAt"`
	Timestamp      parley.Time `json:"timestamp"` // the seed's name for updatedAt
}

// markGroupStatus advances the caller's cursor in a group. The event goes
// to the caller's devices and to the senders of the messages it covers,
// who alone see per-member receipts (with seen withheld when the caller
// turned read receipts off).
func (s *Service) markGroupStatus(ctx context.Context, caller *parley.Identity, m *parley.Message, mem *parley.Member, status string) (*StatusResult, error) {
	if m.SenderID == caller.UserID {
		return nil, parley.Errorf(parley.EFORBIDDEN, "senders do not mark their own messages")
	}
	u, err := s.store.Users.UserByID(ctx, caller.UserID)
	if err != nil {
		return nil, err
	}
	from := max(mem.DeliveredSeq, mem.JoinedSeq)
	if status == parley.StatusSeen {
		from = max(mem.ReadSeq, mem.JoinedSeq)
	}
	now := s.now()
	to := []string{caller.UserID}
	if status != parley.StatusSeen || u.Settings.ReadReceipts {
		senders, err := s.store.Receipts.SendersBetween(ctx, m.ConversationID, from, m.Seq)
		if err != nil {
			return nil, err
		}
		for _, id := range senders {
			if id != caller.UserID {
				to = append(to, id)
			}
		}
	}
	payload, err := json.Marshal(groupStatusUpdate{MessageID: m.ID, GroupID: m.ConversationID, ConversationID: m.ConversationID,
		Status: status, UpToSeq: m.Seq, UserID: caller.UserID, UpdatedAt: parley.Time{Time: now}, Timestamp: parley.Time{Time: now}})
	if err != nil {
		return nil, err
	}
	changes := make([]*parley.Change, 0, len(to))
	for _, id := range to {
		changes = append(changes, &parley.Change{ConversationID: m.ConversationID, Seq: m.Seq, Event: parley.EventGroupMessageStatus,
			MessageID: m.ID, ToUser: id, Payload: payload, CreatedAt: now})
	}
	private := status == parley.StatusSeen && !u.Settings.ReadReceipts
	advanced, err := s.store.Receipts.AdvanceReceipt(ctx, m.ConversationID, caller.UserID, status, m.Seq, now, private, changes...)
	if err != nil {
		return nil, err
	}
	if advanced {
		s.publishRaw(ctx, parley.EventGroupMessageStatus, payload, to)
	}
	res := &StatusResult{MessageID: m.ID, GroupID: m.ConversationID, Status: status, UpdatedAt: parley.Time{Time: now}}
	if mem.ReadSeq >= m.Seq {
		res.Status = parley.StatusSeen
	}
	if !advanced {
		times, err := s.store.Receipts.ReceiptTimes(ctx, m.ConversationID, m.Seq)
		if err != nil {
			return nil, err
		}
		for _, t := range times {
			if t.UserID == caller.UserID && t.Kind == res.Status {
				res.UpdatedAt = parley.Time{Time: t.At}
			}
		}
	}
	return res, nil
}

// ReceiptEntry is one member's receipt of a group message.
type ReceiptEntry struct {
	UserID string      `json:"userId"`
	At     parley.Time `json:"at"`
}

// GroupReceipts is the answer of GET /api/group-messages/{messageId}/status.
type GroupReceipts struct {
	MessageID  string         `json:"messageId"`
	GroupID    string         `json:"groupId"`
	Seq        int64          `json:"seq"`
	SentAt     parley.Time    `json:"sentAt"`
	Status     string         `json:"status"`     // sent, delivered (to all) or seen (by all)
	Recipients int            `json:"recipients"` // members who were there when it was sent, sender excluded
	Delivered  []ReceiptEntry `json:"delivered"`
	Seen       []ReceiptEntry `json:"seen"`
}

// GroupMessageReceipts tells the sender of a group message who has it and
// who read it, with times, from the members' cursors. Members who turned
// read receipts off appear only under delivered. Errors: ENOTFOUND,
// EFORBIDDEN (not the sender).
func (s *Service) GroupMessageReceipts(ctx context.Context, caller *parley.Identity, messageID string) (*GroupReceipts, error) {
	m, _, err := s.groupMessage(ctx, caller, messageID, "")
	if err != nil {
		return nil, err
	}
	if m.SenderID != caller.UserID {
		return nil, parley.Errorf(parley.EFORBIDDEN, "only the sender can see who received a message")
	}
	members, err := s.store.Conversations.Members(ctx, m.ConversationID)
	if err != nil {
		return nil, err
	}
	times, err := s.store.Receipts.ReceiptTimes(ctx, m.ConversationID, m.Seq)
	if err != nil {
		return nil, err
	}
	at := map[string]parley.Time{}
	for _, t := range times {
		at[t.UserID+"|"+t.Kind] = parley.Time{Time: t.At}
	}
	v := s.newViewer()
	out := &GroupReceipts{MessageID: m.ID, GroupID: m.ConversationID, Seq: m.Seq, SentAt: parley.Time{Time: m.SentAt},
		Delivered: []ReceiptEntry{}, Seen: []ReceiptEntry{}}
	for _, mem := range members {
		if mem.UserID == m.SenderID || mem.JoinedSeq >= m.Seq {
			continue
		}
		out.Recipients++
		if mem.DeliveredSeq >= m.Seq {
			out.Delivered = append(out.Delivered, ReceiptEntry{UserID: mem.UserID, At: at[mem.UserID+"|"+parley.StatusDelivered]})
		}
		if mem.ShownReadSeq >= m.Seq && v.readReceipts(ctx, mem.UserID) {
			out.Seen = append(out.Seen, ReceiptEntry{UserID: mem.UserID, At: at[mem.UserID+"|"+parley.StatusSeen]})
		}
	}
	view := newView(m)
	if err := v.groupStatus(ctx, m, view); err != nil {
		return nil, err
	}
	out.Status = view.Status
	return out, nil
}

// groupStatus sets a group message's status from the member cursors:
// delivered once every member who was there when it was sent has it, seen
// once every one of them read it (a member with read receipts off never
// counts as having read). Per-member times are in GroupMessageReceipts.
func (v *viewer) groupStatus(ctx context.Context, m *parley.Message, out *MessageView) error {
	if _, err := v.member(ctx, m.ConversationID, m.SenderID); err != nil {
		return err
	}
	if !v.loaded[m.ConversationID] {
		ids := make([]string, 0, len(v.members[m.ConversationID]))
		for id := range v.members[m.ConversationID] {
			ids = append(ids, id)
		}
		if err := v.loadReceipts(ctx, ids); err != nil {
			return err
		}
		v.loaded[m.ConversationID] = true
	}
	delivered, seen, others := true, true, 0
	for _, mem := range v.members[m.ConversationID] {
		if mem.UserID == m.SenderID || mem.JoinedSeq >= m.Seq {
			continue
		}
		others++
		if mem.DeliveredSeq < m.Seq {
			delivered, seen = false, false
			break
		}
		if mem.ShownReadSeq < m.Seq || !v.readReceipts(ctx, mem.UserID) {
			seen = false
		}
	}
	switch {
	case others == 0:
	case seen:
		out.Status = parley.StatusSeen
	case delivered:
		out.Status = parley.StatusDelivered
	}
	return nil
}

// groupTyping relays a typing indicator to the group's members, except
// those in a block with the caller.
func (s *Service) groupTyping(ctx context.Context, caller *parley.Identity, groupID string, typing bool) error {
	if !isGroup(groupID) || len(groupID) > 64 {
		return parley.Errorf(parley.ENOTFOUND, "group not found")
	}
	members, err := s.conversationUsers(ctx, groupID)
	if err != nil {
		return err
	}
	if !slices.Contains(members, caller.UserID) {
		return parley.Errorf(parley.ENOTFOUND, "group not found")
	}
	blocked, err := s.store.Social.BlockedEitherWay(ctx, caller.UserID)
	if err != nil {
		return err
	}
	skip := map[string]bool{caller.UserID: true}
	for _, id := range blocked {
		skip[id] = true
	}
	to := make([]string, 0, len(members))
	for _, id := range members {
		if !skip[id] {
			to = append(to, id)
		}
	}
	s.publish(ctx, parley.EventTyping, typingEvent{SenderID: caller.UserID, GroupID: groupID, IsTyping: typing, Timestamp: parley.Time{Time: s.now()}}, to)
	return nil
}

// memberPost is the body of a post to a group or channel.
type memberPost struct {
	encrypted, content, typ, mediaID, replyToID, clientMessageID string
}

// postToMembers validates and commits a post to a conversation of kind
// (a group or channel) named by field: the id must be of that kind, the
// media the caller's own, a reply to a message of the same conversation.
// Who may post and who receives is the kind's send policy, in the commit.
func (s *Service) postToMembers(ctx context.Context, caller *parley.Identity, kind, field, convID string, in memberPost) (*parley.Send, error) {
	if err := required(field, convID); err != nil {
		return nil, err
	}
	if parley.KindOf(convID) != kind || len(convID) > 64 {
		return nil, parley.Errorf(parley.ENOTFOUND, "%s not found", kind)
	}
	content, typ, err := validateBody(in.encrypted, in.content, in.typ, in.clientMessageID, in.mediaID)
	if err != nil {
		return nil, err
	}
	if err := s.checkMediaOwner(ctx, caller, in.mediaID); err != nil {
		return nil, err
	}
	if in.replyToID != "" {
		if orig, _, err := s.visibleMessage(ctx, caller, in.replyToID); err != nil || orig.ConversationID != convID {
			return nil, parley.Errorf(parley.EINVALID, "replyToId must name a message of this %s", kind)
		}
	}
	return s.post(ctx, &parley.Message{ID: parley.NewID("msg"), ConversationID: convID, SenderID: caller.UserID,
		ClientMessageID: in.clientMessageID, Content: content, ContentHash: contentHash(content), Type: typ, MediaID: in.mediaID,
		ReplyToID: in.replyToID, SentAt: s.now()})
}
