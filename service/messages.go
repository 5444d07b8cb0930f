package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/parley-chat/parley"
)

// MessageView is a message as clients see it (API.md §3).
type MessageView struct {
	MessageID          string            `json:"messageId"`
	ConversationID     string            `json:"conversationId"`
	Seq                int64             `json:"seq"`
	SenderID           string            `json:"senderId"`
	RecipientID        string            `json:"recipientId,omitempty"`
	GroupID            string            `json:"groupId,omitempty"`
	ChannelID          string            `json:"channelId,omitempty"`
	ClientMessageID    string            `json:"clientMessageId,omitempty"`
	Content            *string           `json:"content"`
	ContentHash        string            `json:"contentHash"` // of the empty string on a tombstone
	Type               string            `json:"type"`
	MediaID            string            `json:"mediaId"`   // "" when none
	ReplyToID          string            `json:"replyToId"` // "" when none
	ReplyToStatusID    string            `json:"replyToStatusId,omitempty"`
	Status             string            `json:"status"`
	SentAt             parley.Time       `json:"sentAt"`
	DeliveredAt        parley.Time       `json:"deliveredAt"`
	SeenAt             parley.Time       `json:"seenAt"`
	EditedAt           parley.Time       `json:"editedAt"`
	Reactions          []parley.Reaction `json:"reactions"`
	DeletedForEveryone bool              `json:"deletedForEveryone"`
}

// SendInput is the body of POST /api/messages/send (and reply, schedule,
// and the socket's send_message).
type SendInput struct {
	SenderID         string `json:"senderId"`
	RecipientID      string `json:"recipientId"`
	EncryptedContent string `json:"encryptedContent"`
	Content          string `json:"content"` // accepted as a synonym of encryptedContent
	Type             string `json:"type"`
	MediaID          string `json:"mediaId"`
	ReplyToID        string `json:"replyToId"`
	// ReplyToStatusID makes the message a reply to a status of the
	// recipient that the sender may see (immediate sends only).
	ReplyToStatusID string `json:"replyToStatusId"`
	ClientMessageID string `json:"clientMessageId"`
}

// SendResult is the answer to a send.
type SendResult struct {
	MessageID       string      `json:"messageId"`
	ConversationID  string      `json:"conversationId"`
	Status          string      `json:"status"`
	SentAt          parley.Time `json:"sentAt"`
	Seq             int64       `json:"seq"`
	ClientMessageID string      `json:"clientMessageId,omitempty"`
	Duplicate       bool        `json:"duplicate,omitempty"`
}

func contentHash(c string) string {
	sum := sha256.Sum256([]byte(c))
	return hex.EncodeToString(sum[:])
}

// validateContent checks the opaque content and the message type.
func validateContent(content, typ string) (string, error) {
	if content == "" {
		return "", parley.Errorf(parley.EINVALID, "encryptedContent is required")
	}
	if len(content) > parley.MaxContentBytes {
		return "", parley.Errorf(parley.ETOOLARGE, "encryptedContent must be at most %d bytes", parley.MaxContentBytes)
	}
	if typ == "" {
		typ = "text"
	}
	if !slices.Contains(parley.MessageTypes, typ) {
		return "", parley.Errorf(parley.EINVALID, "type must be one of %s", strings.Join(parley.MessageTypes, ", "))
	}
	return typ, nil
}

// validateBody checks the fields every send shares: the content
// (encryptedContent, or its synonym content), its type, the
// clientMessageId and the mediaId. It returns the content and the type.
func validateBody(encrypted, plain, typ, clientMessageID, mediaID string) (string, string, error) {
	content := encrypted
	if content == "" {
		content = plain
	}
	typ, err := validateContent(content, typ)
	if err != nil {
		return "", "", err
	}
	if len(clientMessageID) > parley.MaxClientMessageIDLen {
		return "", "", parley.Errorf(parley.EINVALID, "clientMessageId must be at most %d characters", parley.MaxClientMessageIDLen)
	}
	if err := validateMediaID(mediaID); err != nil {
		return "", "", err
	}
	return content, typ, nil
}

// validateMediaID checks the form of a send's mediaId; checkMediaOwner
// and the commit check that it names a file of the sender.
func validateMediaID(id string) error {
	return maxLen("mediaId", id, 128)
}

// prepareDirect checks a send from caller and builds the message, ready
// to commit. Errors: EFORBIDDEN (spoofed sender), EINVALID, ETOOLARGE,
// ENOTFOUND (unknown recipient). Blocks are checked by the commit itself,
// in its transaction, once per batch rather than with a read per send.
func (s *Service) prepareDirect(ctx context.Context, caller *parley.Identity, in SendInput) (*parley.Message, error) {
	if err := checkSelf(caller, in.SenderID, "senderId"); err != nil {
		return nil, err
	}
	content, typ, err := validateBody(in.EncryptedContent, in.Content, in.Type, in.ClientMessageID, in.MediaID)
	if err != nil {
		return nil, err
	}
	if err := required("recipientId", in.RecipientID); err != nil {
		return nil, err
	}
	if in.RecipientID == caller.UserID {
		return nil, parley.Errorf(parley.EINVALID, "recipientId must not be yourself")
	}
	// The recipient's account and the conversation's id never change once
	// they exist (see facts).
	if _, ok := s.facts.get(userFact(in.RecipientID)); !ok {
		if _, err := s.store.Users.UserByID(ctx, in.RecipientID); err != nil {
			if parley.ErrorCode(err) == parley.ENOTFOUND {
				return nil, parley.Errorf(parley.ENOTFOUND, "recipient not found")
			}
			return nil, err
		}
		s.facts.put(userFact(in.RecipientID), "")
	}
	now := s.now()
	convID, ok := s.facts.get(directFact(caller.UserID, in.RecipientID))
	if !ok {
		conv, err := s.store.Conversations.DirectConversation(ctx, caller.UserID, in.RecipientID, now)
		if err != nil {
			return nil, err
		}
		convID = conv.ID
		s.facts.put(directFact(caller.UserID, in.RecipientID), convID)
	}
	if err := s.checkMediaOwner(ctx, caller, in.MediaID); err != nil {
		return nil, err
	}
	if in.ReplyToID != "" {
		orig, err := s.store.Messages.MessageByID(ctx, in.ReplyToID)
		if err != nil || orig.ConversationID != convID {
			return nil, parley.Errorf(parley.EINVALID, "replyToId must name a message of this conversation")
		}
	}
	if err := s.checkStatusReply(ctx, caller, in.ReplyToStatusID, in.RecipientID); err != nil {
		return nil, err
	}
	return &parley.Message{ID: parley.NewID("msg"), ConversationID: convID, SenderID: caller.UserID,
		RecipientID: in.RecipientID, ClientMessageID: in.ClientMessageID, Content: content, ContentHash: contentHash(content),
		Type: typ, MediaID: in.MediaID, ReplyToID: in.ReplyToID, ReplyToStatusID: in.ReplyToStatusID, SentAt: now}, nil
}

// SendMessage stores a direct message and delivers new_message to the
// recipient and the sender's sockets. It answers only after the commit. A
// repeated clientMessageId returns the first message and stores and
// delivers nothing. Errors: as prepareDirect, EBLOCKED, EUNAVAILABLE.
func (s *Service) SendMessage(ctx context.Context, caller *parley.Identity, in SendInput) (*SendResult, error) {
	m, err := s.prepareDirect(ctx, caller, in)
	if err != nil {
		return nil, err
	}
	return s.commitDirect(ctx, m)
}

// post commits m through group commit and, once it is committed, delivers
// it to the recipients that the store's send policy for the
// conversation's kind chose, under that kind's event. For a repeated
// clientMessageId the Send holds the first message, is marked Duplicate
// and nothing is delivered.
func (s *Service) post(ctx context.Context, m *parley.Message) (*parley.Send, error) {
	send := &parley.Send{Message: m}
	if err := s.commit.commit(ctx, send); err != nil {
		return nil, err
	}
	if send.Err != nil {
		return nil, send.Err
	}
	if !send.Duplicate {
		m := send.Message
		s.publishAudience(ctx, parley.MessageEvent(parley.KindOf(m.ConversationID)), newView(m), send.Recipients, send.Audience)
	}
	return send, nil
}

func (s *Service) commitDirect(ctx context.Context, m *parley.Message) (*SendResult, error) {
	send, err := s.post(ctx, m)
	if err != nil {
		return nil, err
	}
	m = send.Message
	return &SendResult{MessageID: m.ID, ConversationID: m.ConversationID, Status: parley.StatusSent, SentAt: parley.Time{Time: m.SentAt},
		Seq: m.Seq, ClientMessageID: m.ClientMessageID, Duplicate: send.Duplicate}, nil
}

func newView(m *parley.Message) *MessageView {
	v := &MessageView{}
	fillView(v, m)
	return v
}

// fillView sets v to m as sent, without receipt state.
func fillView(v *MessageView, m *parley.Message) {
	*v = MessageView{MessageID: m.ID, ConversationID: m.ConversationID, Seq: m.Seq, SenderID: m.SenderID, RecipientID: m.RecipientID,
		ClientMessageID: m.ClientMessageID, ContentHash: m.ContentHash, Type: m.Type, MediaID: m.MediaID, ReplyToID: m.ReplyToID,
		ReplyToStatusID: m.ReplyToStatusID, Status: parley.StatusSent, SentAt: parley.Time{Time: m.SentAt}, EditedAt: parley.Time{Time: m.EditedAt},
		Reactions: m.Reactions, DeletedForEveryone: m.DeletedForEveryone}
	if !m.DeletedForEveryone {
		c := m.Content
		v.Content = &c
	} else {
		v.ContentHash = contentHash("")
	}
	if v.Reactions == nil {
		v.Reactions = []parley.Reaction{}
	}
	switch parley.KindOf(m.ConversationID) {
	case parley.KindGroup:
		v.GroupID = m.ConversationID
	case parley.KindChannel:
		v.ChannelID = m.ConversationID
	}
}

// isGroup reports whether a conversation id is a group's (a group's id is
// its conversation's id).
func isGroup(convID string) bool { return parley.KindOf(convID) == parley.KindGroup }

// hasMembers reports whether a conversation is a group or channel: many
// members, admins, and receipts per member.
func hasMembers(convID string) bool {
	k := parley.KindOf(convID)
	return k == parley.KindGroup || k == parley.KindChannel
}

// viewer builds message views with receipt states, caching per conversation
// the recipients' cursors, marks and read-receipt settings.
type viewer struct {
	s       *Service
	members map[string]map[string]*parley.Member // conversation → user → member
	spans   map[string][2]int64                  // conversation → lowest and highest seq being viewed
	marks   map[markKey]*markRange               // conversation, user and kind → marks
	receipt map[string]bool                      // user → readReceipts setting
	loaded  map[string]bool                      // conversations whose members' settings are in receipt
}

func (s *Service) newViewer() *viewer {
	return &viewer{s: s, members: map[string]map[string]*parley.Member{}, spans: map[string][2]int64{}, marks: map[markKey]*markRange{},
		receipt: map[string]bool{}, loaded: map[string]bool{}}
}

// markKey names a member's marks of one kind in a conversation (a struct,
// not a joined string: looked up twice per message viewed).
type markKey struct{ conv, user, kind string }

// markRange holds the receipt marks that date the messages from seq lo to hi.
type markRange struct {
	lo, hi int64
	marks  []parley.ReceiptMark
}

// cover tells v which messages it is about to view, so that receipt times
// are read once for their range of seqs rather than once per message.
func (v *viewer) cover(msgs ...*parley.Message) {
	for _, m := range msgs {
		sp, ok := v.spans[m.ConversationID]
		if !ok {
			sp = [2]int64{m.Seq, m.Seq}
		}
		v.spans[m.ConversationID] = [2]int64{min(sp[0], m.Seq), max(sp[1], m.Seq)}
	}
}

func (v *viewer) member(ctx context.Context, convID, userID string) (*parley.Member, error) {
	ms, ok := v.members[convID]
	if !ok {
		list, err := v.s.store.Conversations.Members(ctx, convID)
		if err != nil {
			return nil, err
		}
		ms = map[string]*parley.Member{}
		for _, m := range list {
			ms[m.UserID] = m
		}
		v.members[convID] = ms
	}
	return ms[userID], nil
}

func (v *viewer) markTime(ctx context.Context, convID, userID, kind string, seq int64) (time.Time, error) {
	key := markKey{convID, userID, kind}
	r := v.marks[key]
	if r == nil || seq < r.lo || seq > r.hi {
		lo, hi := seq, seq
		if sp, ok := v.spans[convID]; ok && sp[0] <= seq && seq <= sp[1] {
			lo, hi = sp[0], sp[1]
		}
		marks, err := v.s.store.Receipts.ReceiptMarks(ctx, convID, userID, kind, lo, hi)
		if err != nil {
			return time.Time{}, err
		}
		r = &markRange{lo: lo, hi: hi, marks: marks}
		v.marks[key] = r
	}
	// The first advance that reached seq dated it.
	i := sort.Search(len(r.marks), func(i int) bool { return r.marks[i].Seq >= seq })
	if i == len(r.marks) {
		return time.Time{}, nil
	}
	return r.marks[i].At, nil
}

// prefetch reads, in one store call, everything the receipt states of the
// messages v covers in a conversation of few members need: the members'
// cursors and settings, and their marks over the covered seqs. Without it
// a page of a direct chat reads them in up to seven statements.
func (v *viewer) prefetch(ctx context.Context, convID string) error {
	sp := v.spans[convID]
	list, err := v.s.store.Receipts.MemberReceipts(ctx, convID, sp[0], sp[1])
	if err != nil {
		return err
	}
	ms := make(map[string]*parley.Member, len(list))
	for _, m := range list {
		ms[m.UserID] = &m.Member
		v.receipt[m.UserID] = m.ReadReceipts
		v.marks[markKey{convID, m.UserID, parley.StatusDelivered}] = &markRange{lo: sp[0], hi: sp[1], marks: m.Delivered}
		v.marks[markKey{convID, m.UserID, parley.StatusSeen}] = &markRange{lo: sp[0], hi: sp[1], marks: m.Seen}
	}
	v.members[convID] = ms
	return nil
}

// dated tells v the time of the first mark of kind by m's recipient at or
// after m's seq (zero: none), which the store read with m.
func (v *viewer) dated(m *parley.Message, kind string, at time.Time) {
	r := &markRange{lo: m.Seq, hi: m.Seq}
	if !at.IsZero() {
		r.marks = []parley.ReceiptMark{{Seq: m.Seq, At: at}}
	}
	v.marks[markKey{m.ConversationID, m.RecipientID, kind}] = r
}

// loadReceipts reads the readReceipts setting of many users at once.
func (v *viewer) loadReceipts(ctx context.Context, ids []string) error {
	var missing []string
	for _, id := range ids {
		if _, ok := v.receipt[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	users, err := v.s.store.Users.UsersByIDs(ctx, missing)
	if err != nil {
		return err
	}
	for _, id := range missing {
		v.receipt[id] = false // fail closed: an unknown setting reveals no seen mark
	}
	for _, u := range users {
		v.receipt[u.ID] = u.Settings.ReadReceipts
	}
	return nil
}

func (v *viewer) readReceipts(ctx context.Context, userID string) bool {
	on, ok := v.receipt[userID]
	if !ok {
		u, err := v.s.store.Users.UserByID(ctx, userID)
		on = err == nil && u.Settings.ReadReceipts // fail closed on a store error
		v.receipt[userID] = on
	}
	return on
}

// view returns m with its receipt state: the recipient's cursors decide
// delivered and seen; seen is hidden when the recipient turned read
// receipts off.
func (v *viewer) view(ctx context.Context, m *parley.Message) (*MessageView, error) {
	return v.viewInto(ctx, m, new(MessageView))
}

// viewInto is view writing into out, which it returns.
func (v *viewer) viewInto(ctx context.Context, m *parley.Message, out *MessageView) (*MessageView, error) {
	fillView(out, m)
	if out.GroupID != "" {
		return out, v.groupStatus(ctx, m, out)
	}
	if out.ChannelID != "" {
		return out, nil // a broadcast: no per-reader receipt state
	}
	if m.RecipientID == "" {
		return out, nil
	}
	r, err := v.member(ctx, m.ConversationID, m.RecipientID)
	if err != nil || r == nil {
		return out, err
	}
	if r.DeliveredSeq >= m.Seq {
		out.Status = parley.StatusDelivered
		if out.DeliveredAt.Time, err = v.markTime(ctx, m.ConversationID, m.RecipientID, parley.StatusDelivered, m.Seq); err != nil {
			return nil, err
		}
	}
	if r.ShownReadSeq >= m.Seq && v.readReceipts(ctx, m.RecipientID) {
		out.Status = parley.StatusSeen
		if out.SeenAt.Time, err = v.markTime(ctx, m.ConversationID, m.RecipientID, parley.StatusSeen, m.Seq); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// HistoryQuery selects a page of history.
type HistoryQuery struct {
	Limit     int
	Before    time.Time
	BeforeSeq int64
}

// DirectHistory returns the caller's direct messages with recipientID,
// newest first. userID (the route's first id) must be the caller.
// Errors: EFORBIDDEN, ENOTFOUND (unknown peer).
func (s *Service) DirectHistory(ctx context.Context, caller *parley.Identity, userID, recipientID string, q HistoryQuery) ([]*MessageView, error) {
	if userID != caller.UserID {
		return nil, parley.Errorf(parley.EFORBIDDEN, "you can only read your own conversations")
	}
	// The peer's account and the conversation's id never change once they
	// exist (see facts): a page of history then reads only its messages
	// and their receipt state.
	if _, ok := s.facts.get(userFact(recipientID)); !ok {
		if _, err := s.store.Users.UserByID(ctx, recipientID); err != nil {
			return nil, err
		}
		s.facts.put(userFact(recipientID), "")
	}
	convID, ok := s.facts.get(directFact(caller.UserID, recipientID))
	if !ok {
		// Reading never creates the conversation: an empty one would make
		// the two users direct-chat peers (who hear each other's presence).
		conv, err := s.store.Conversations.FindDirectConversation(ctx, caller.UserID, recipientID)
		if parley.ErrorCode(err) == parley.ENOTFOUND {
			return []*MessageView{}, nil
		} else if err != nil {
			return nil, err
		}
		convID = conv.ID
		s.facts.put(directFact(caller.UserID, recipientID), convID)
	}
	return s.history(ctx, caller, convID, q)
}

// history returns a page of a conversation's messages as the caller sees them.
func (s *Service) history(ctx context.Context, caller *parley.Identity, convID string, q HistoryQuery) ([]*MessageView, error) {
	msgs, err := s.store.Messages.History(ctx, convID, caller.UserID, q.BeforeSeq, q.Before, q.Limit)
	if err != nil {
		return nil, err
	}
	v := s.newViewer()
	v.cover(msgs...)
	if parley.KindOf(convID) == parley.KindDirect && len(msgs) > 0 {
		// On an error v has learnt nothing and reads what each message
		// needs itself, as without prefetch: store errors fail the page,
		// an unreadable read-receipt setting hides seen (fail closed).
		_ = v.prefetch(ctx, convID)
	}
	out := make([]*MessageView, 0, len(msgs))
	views := make([]MessageView, len(msgs)) // one allocation for the page's views
	for i, m := range msgs {
		mv, err := v.viewInto(ctx, m, &views[i])
		if err != nil {
			return nil, err
		}
		out = append(out, mv)
	}
	return out, nil
}

// visibleMessage returns a message the caller may see with their
// membership, or ENOTFOUND.
func (s *Service) visibleMessage(ctx context.Context, caller *parley.Identity, messageID string) (*parley.Message, *parley.Member, error) {
	if messageID == "" {
		return nil, nil, parley.Errorf(parley.EINVALID, "messageId is required")
	}
	m, err := s.store.Messages.MessageByID(ctx, messageID)
	if err != nil {
		return nil, nil, err
	}
	mem, err := s.store.Conversations.Member(ctx, m.ConversationID, caller.UserID)
	if err != nil || m.Seq <= mem.JoinedSeq {
		return nil, nil, parley.Errorf(parley.ENOTFOUND, "message not found")
	}
	return m, mem, nil
}

// messageAudience lists who hears about a change of message m: the
// members of its conversation, except those who hid it for themselves.
func (s *Service) messageAudience(ctx context.Context, m *parley.Message) ([]string, error) {
	to, err := s.conversationUsers(ctx, m.ConversationID)
	if err != nil {
		return nil, err
	}
	hidden, err := s.store.Messages.HiddenBy(ctx, m.ID)
	if err != nil || len(hidden) == 0 {
		return to, err
	}
	out := to[:0]
	for _, id := range to {
		if !slices.Contains(hidden, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// conversationUsers lists the member ids of a conversation.
func (s *Service) conversationUsers(ctx context.Context, convID string) ([]string, error) {
	ms, err := s.store.Conversations.Members(ctx, convID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(ms))
	for _, m := range ms {
		ids = append(ids, m.UserID)
	}
	return ids, nil
}
