package service

import (
	"context"
	"encoding/json"
	"time"

	"github.com/parley-chat/parley"
)

// StatusInput is the body of POST /api/status and the socket's message_status.
type StatusInput struct {
	UserID    string `json:"userId"`
	MessageID string `json:"messageId"`
	Status    string `json:"status"`
}

// StatusResult is the answer to a receipt.
type StatusResult struct {
	MessageID string      `json:"messageId"`
	GroupID   string      `json:"groupId,omitempty"` // group messages only
	Status    string      `json:"status"`
	UpdatedAt parley.Time `json:"updatedAt"`
}

// statusUpdate is the message_status_update event: every message of
// senderId in the conversation up to upToSeq reached status.
type statusUpdate struct {
	MessageID      string      `json:"messageId"`
	ConversationID string      `json:"conversationId"`
	Status         string      `json:"status"`
	UpToSeq        int64       `json:"upToSeq"`
	UserID         string      `json:"userId"`
	SenderID       string      `json:"senderId"`
	UpdatedAt      parley.Time `json:"updatedAt"`
	Timestamp      parley.Time `json:"timestamp"` // the seed's name for updatedAt
}

// MarkStatus records that the caller received (delivered) or read (seen) a
// direct message, and with it every earlier message of that sender in the
// conversation: receipts are cursors and only move forward. The sender gets
// message_status_update, except seen when the caller turned read receipts
// off. Errors: EFORBIDDEN (not the recipient, or a spoofed userId),
// ENOTFOUND, EINVALID.
func (s *Service) MarkStatus(ctx context.Context, caller *parley.Identity, in StatusInput) (*StatusResult, error) {
	return s.markStatus(ctx, caller, in, s.visibleMessage)
}

func (s *Service) markStatus(ctx context.Context, caller *parley.Identity, in StatusInput, lookup messageLookup) (*StatusResult, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	if in.Status != parley.StatusDelivered && in.Status != parley.StatusSeen {
		return nil, parley.Errorf(parley.EINVALID, "status must be delivered or seen")
	}
	m, mem, err := lookup(ctx, caller, in.MessageID)
	if err != nil {
		return nil, err
	}
	if hasMembers(m.ConversationID) {
		return s.markGroupStatus(ctx, caller, m, mem, in.Status)
	}
	if m.RecipientID != caller.UserID {
		return nil, parley.Errorf(parley.EFORBIDDEN, "only the recipient may set a message's status")
	}
	now := s.now()
	u, err := s.store.Users.UserByID(ctx, caller.UserID)
	if err != nil {
		return nil, err
	}
	ev := statusUpdate{MessageID: m.ID, ConversationID: m.ConversationID, Status: in.Status, UpToSeq: m.Seq,
		UserID: caller.UserID, SenderID: m.SenderID, UpdatedAt: parley.Time{Time: now}, Timestamp: parley.Time{Time: now}}
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	ch := &parley.Change{ConversationID: m.ConversationID, Seq: m.Seq, Event: parley.EventMessageStatus, MessageID: m.ID,
		Payload: payload, CreatedAt: now}
	private := in.Status == parley.StatusSeen && !u.Settings.ReadReceipts
	if private {
		ch.OnlyUser = caller.UserID // the reader's own devices still learn it
	}
	advanced, err := s.store.Receipts.AdvanceReceipt(ctx, m.ConversationID, caller.UserID, in.Status, m.Seq, now, private, ch)
	if err != nil {
		return nil, err
	}
	if advanced {
		to := []string{caller.UserID}
		if !private {
			to = append(to, m.SenderID)
		}
		s.publishRaw(ctx, parley.EventMessageStatus, payload, to)
	}
	// Answer with the message's state now, which may be further along.
	status, at := parley.StatusDelivered, now
	if mem.ReadSeq >= m.Seq || in.Status == parley.StatusSeen {
		status = parley.StatusSeen
	}
	if !advanced {
		v, err := s.newViewer().view(ctx, m)
		if err == nil {
			if status == parley.StatusSeen && !v.SeenAt.IsZero() {
				at = v.SeenAt.Time
			} else if !v.DeliveredAt.IsZero() {
				at = v.DeliveredAt.Time
			}
		}
	}
	return &StatusResult{MessageID: m.ID, Status: status, UpdatedAt: parley.Time{Time: at}}, nil
}

// MessageStatus is the answer of GET /api/status/{messageId}.
type MessageStatus struct {
	MessageID   string      `json:"messageId"`
	Status      string      `json:"status"`
	SentAt      parley.Time `json:"sentAt"`
	DeliveredAt parley.Time `json:"deliveredAt"`
	SeenAt      parley.Time `json:"seenAt"`
}

// StatusOf returns a direct message's receipt state. Errors: ENOTFOUND.
func (s *Service) StatusOf(ctx context.Context, caller *parley.Identity, messageID string) (*MessageStatus, error) {
	m, _, err := s.visibleMessage(ctx, caller, messageID)
	if err != nil {
		return nil, err
	}
	v, err := s.newViewer().view(ctx, m)
	if err != nil {
		return nil, err
	}
	return &MessageStatus{MessageID: m.ID, Status: v.Status, SentAt: v.SentAt, DeliveredAt: v.DeliveredAt, SeenAt: v.SeenAt}, nil
}

// publishChange publishes a change recorded in the sync log to users, as
// the real-time event of the same name and payload: what a socket gets and
// what sync returns cannot differ.
func (s *Service) publishChange(ctx context.Context, ch *parley.Change, to []string) {
	s.publishRaw(ctx, ch.Event, ch.Payload, to)
}

// publishRaw hands already-encoded data to the bus.
func (s *Service) publishRaw(ctx context.Context, name string, data json.RawMessage, to []string) {
	if len(to) == 0 {
		return
	}
	if err := s.bus.Publish(ctx, &parley.Event{Name: name, Data: data, To: to}); err != nil {
		s.log.Warn("publish event", "event", name, "err", err)
	}
}

// encodeChange encodes an event once into the sync-log entry that the store
// writes in the same transaction as the change itself; callers publish the
// same payload afterwards.
func (s *Service) encodeChange(convID string, seq int64, name, messageID string, ev any, now time.Time) (*parley.Change, error) {
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	return &parley.Change{ConversationID: convID, Seq: seq, Event: name, MessageID: messageID, Payload: payload, CreatedAt: now}, nil
}
