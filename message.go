package parley

import (
	"context"
	"strings"
	"time"
)

// Message limits and kinds, from API.md §1 and §3.
const (
	MaxContentBytes        = 64 << 10
	MaxClientMessageIDLen  = 64
	MaxReactionLen         = 32
	EditWindow             = 15 * time.Minute
	DeleteForEveryoneLimit = 48 * time.Hour
	MaxScheduleAhead       = 365 * 24 * time.Hour
)

// Conversation kinds.
const (
	KindDirect  = "direct"
	KindGroup   = "group"
	KindChannel = "channel"
)

// kindInfo is what differs between conversation kinds outside the store's
// send policy: the prefix of their ids and the event of a new message.
type kindInfo struct {
	prefix       string
	messageEvent string
}

// kinds lists the conversation kinds that exist. A new kind adds a line
// here and a send policy in the store (sqlstore/send.go).
var kinds = map[string]kindInfo{
	KindDirect:  {prefix: "conv", messageEvent: EventNewMessage},
	KindGroup:   {prefix: "group", messageEvent: EventNewGroupMessage},
	KindChannel: {prefix: "chan", messageEvent: EventNewChannelMessage},
}

// NewConversationID returns a new id for a conversation of kind; the id
// names its kind (KindOf). A group's or channel's id is its conversation's.
func NewConversationID(kind string) string {
	k, ok := kinds[kind]
	if !ok {
		panic("parley: unknown conversation kind " + kind)
	}
	return NewID(k.prefix)
}

// KindOf returns the kind of conversation that id names, or "" when it
// names none.
func KindOf(id string) string {
	prefix, _, ok := strings.Cut(id, "_")
	if !ok {
		return ""
	}
	for kind, k := range kinds {
		if k.prefix == prefix {
			return kind
		}
	}
	return ""
}

// MessageEvent returns the event that delivers a new message of a
// conversation of kind (and that the sync log records for it).
func MessageEvent(kind string) string { return kinds[kind].messageEvent }

// Receipt states, in the only order they may move.
const (
	StatusSent      = "sent"
	StatusDelivered = "delivered"
	StatusSeen      = "seen"
)

// MessageTypes are the accepted values of a message's type.
var MessageTypes = []string{"text", "image", "video", "audio", "document", "location", "contact", "link"}

// Conversation is a direct chat, group or channel: a sequence of messages.
type Conversation struct {
	ID            string
	Kind          string
	LastSeq       int64
	LastMessageAt time.Time
	CreatedAt     time.Time
}

// Member is a user's place in a conversation with their receipt cursors.
type Member struct {
	ConversationID string
	UserID         string
	Role           string
	JoinedAt       time.Time
	JoinedSeq      int64 // the member sees messages with Seq > JoinedSeq
	JoinedChange   int64 // ...and other changes with ID > JoinedChange
	DeliveredSeq   int64
	ReadSeq        int64 // how far the member read (their own unread counts)
	// ShownReadSeq is how far others may see the member read: it moves
	// only while the member's readReceipts setting is on.
	ShownReadSeq int64
}

// MemberReceipts is a member's receipt state over a range of seqs.
type MemberReceipts struct {
	Member
	ReadReceipts bool          // the member's setting (false when unknown)
	Delivered    []ReceiptMark // by seq, as ReceiptMarks of StatusDelivered
	Seen         []ReceiptMark // by seq, as ReceiptMarks of StatusSeen
}

// Reaction is one user's reaction to a message.
type Reaction struct {
	UserID   string `json:"userId"`
	Reaction string `json:"reaction"`
}

// Message is a stored message. Content is opaque ciphertext.
type Message struct {
	ID                 string
	ConversationID     string
	Seq                int64
	SenderID           string
	RecipientID        string
	ClientMessageID    string
	Content            string
	ContentHash        string
	Type               string
	MediaID            string
	ReplyToID          string
	ReplyToStatusID    string // direct messages: the status this answers
	SentAt             time.Time
	EditedAt           time.Time
	DeletedForEveryone bool
	Reactions          []Reaction
}

// Change is one entry of the sync log: an event of a conversation.
type Change struct {
	ID             int64
	ConversationID string
	Seq            int64  // the message seq it concerns; 0 for membership and group changes
	Event          string // the real-time event name
	MessageID      string
	OnlyUser       string // when set, only this member sees it
	ToUser         string // when set, addressed to this user alone, member or not (removals, deletions, receipts)
	Payload        []byte // the event's JSON; empty for new messages
	CreatedAt      time.Time
}

// Send is one message to commit, with the change that announces it.
// The store fills Message.Seq and, for a repeated clientMessageId,
// Duplicate and the first message instead. The send policy of the
// conversation's kind either refuses the send (Err, and nothing is stored
// for it) or fills Recipients with the users to deliver it to, as of the
// commit (a group's members at that moment).
type Send struct {
	Message    *Message
	Duplicate  bool
	Recipients []string
	// Audience is Recipients as a set, when the store's send policy has
	// one (a group's or channel's cached membership); read-only.
	Audience Audience
	Err      error
}

// ReceiptMark is one advance of a member's delivered or seen cursor.
type ReceiptMark struct {
	Seq int64
	At  time.Time
}

// Chat is one row of a user's conversation list.
type Chat struct {
	Conversation *Conversation
	Member       *Member
	PeerID       string // direct chats: the other member
	// Members are both members of a direct chat with their cursors (the
	// receipt state of its last message comes from them); nil otherwise.
	Members     []*Member
	LastMessage *Message
	// LastDeliveredAt and LastSeenAt date LastMessage for its recipient
	// (direct chats): the first delivered and seen marks at or after its
	// seq, zero when there is none.
	LastDeliveredAt, LastSeenAt time.Time
	Unread                      int64
	MutedUntil                  time.Time // groups and channels: the member's own mute; zero when none
}

// MutedForever is the MutedUntil of a mute that lasts until it is lifted.
var MutedForever = time.UnixMilli(1 << 62).UTC()

// ConversationStore persists conversations and their members: what every kind of
// conversation (direct, group, and kinds to come) shares.
type ConversationStore interface {
	// FindDirectConversation returns the direct conversation of a and b, or ENOTFOUND.
	FindDirectConversation(ctx context.Context, a, b string) (*Conversation, error)
	// DirectConversation returns the direct conversation of a and b,
	// creating it (with both as members) when it does not exist yet.
	DirectConversation(ctx context.Context, a, b string, now time.Time) (*Conversation, error)
	// Member returns a user's membership, or ENOTFOUND.
	Member(ctx context.Context, conversationID, userID string) (*Member, error)
	// Members lists a conversation's members, oldest first.
	Members(ctx context.Context, conversationID string) ([]*Member, error)
	// Chats returns userID's conversations by latest activity.
	Chats(ctx context.Context, userID string, limit int) ([]*Chat, error)
	// DirectPeers lists the users userID has exchanged direct messages with.
	DirectPeers(ctx context.Context, userID string) ([]string, error)
	// MuteConversation mutes a conversation for one member until until
	// (MutedForever: until lifted; zero: lifts the mute); ENOTFOUND when
	// userID is not a member.
	MuteConversation(ctx context.Context, conversationID, userID string, until time.Time) error
}

// MessageStore persists messages and what happens to them after they are sent.
type MessageStore interface {
	// SendMessages commits a batch of messages, of conversations of any
	// kind, in one transaction: each gets the next seq of its conversation
	// and a change of its kind's MessageEvent. A send whose (sender,
	// clientMessageId) exists is marked Duplicate and filled with the first
	// message; nothing new is stored for it. The send policy of the kind,
	// applied in the same transaction, decides who may post (a direct send
	// between users where either blocked the other gets EBLOCKED; a group
	// send from a non-member ENOTFOUND) and fills Recipients.
	SendMessages(ctx context.Context, batch []*Send) error
	// MessageByID returns a message with its reactions, or ENOTFOUND.
	MessageByID(ctx context.Context, id string) (*Message, error)
	// History returns up to limit messages of a conversation visible to
	// viewer (after their join, not hidden for them) with seq < beforeSeq
	// (0: no bound) and sent before before (zero: no bound), newest first.
	History(ctx context.Context, conversationID, viewer string, beforeSeq int64, before time.Time, limit int) ([]*Message, error)
	// SetReaction sets (or with reaction "" removes) userID's reaction and records ch.
	SetReaction(ctx context.Context, messageID, userID, reaction string, at time.Time, ch *Change) error
	// EditMessage replaces content and records ch.
	EditMessage(ctx context.Context, messageID, content, contentHash string, at time.Time, ch *Change) error
	// DeleteForEveryone turns the message into a tombstone and records ch.
	DeleteForEveryone(ctx context.Context, messageID string, ch *Change) error
	// HideMessage hides a message for one user and records ch.
	HideMessage(ctx context.Context, messageID, userID string, ch *Change) error
	// HiddenBy lists the users who hid a message ("delete for me"): later
	// changes of that message are not for them.
	HiddenBy(ctx context.Context, messageID string) ([]string, error)
}

// ReceiptStore persists the delivered and seen cursors of conversation members.
type ReceiptStore interface {
	// ReceiptMarks returns, by seq, a member's cursor advances of kind with
	// fromSeq <= seq <= toSeq and the first one after toSeq: what the
	// delivery (or read) time of every message in that range needs, however
	// long the conversation.
	ReceiptMarks(ctx context.Context, conversationID, userID, kind string, fromSeq, toSeq int64) ([]ReceiptMark, error)
	// MemberReceipts returns, in two statements whatever the number of
	// members, each member of a conversation (in no set order) with their readReceipts
	// setting and, per kind, what ReceiptMarks returns for them over
	// fromSeq..toSeq: the receipt state of a page of a direct
	// conversation. Its cost grows with the members: meant for few.
	MemberReceipts(ctx context.Context, conversationID string, fromSeq, toSeq int64) ([]*MemberReceipts, error)
	// AdvanceReceipt moves a member's delivered (or seen, which implies
	// delivered) cursor forward to seq and records changes in the sync log.
	// It reports false and stores nothing when the cursor is already there.
	// With private (a seen mark while the member's read receipts are off)
	// only the member's own read cursor moves: ShownReadSeq and the seen
	// marks that others read stay as they were, for good.
	AdvanceReceipt(ctx context.Context, conversationID, userID, kind string, seq int64, at time.Time, private bool, changes ...*Change) (bool, error)
	// ReceiptTimes returns, for each member whose delivered or seen cursor
	// reached seq, the time it did.
	ReceiptTimes(ctx context.Context, conversationID string, seq int64) ([]ReceiptTime, error)
	// SendersBetween lists the distinct senders of messages with
	// fromSeq < seq <= toSeq in a conversation.
	SendersBetween(ctx context.Context, conversationID string, fromSeq, toSeq int64) ([]string, error)
}

// ChangeStore reads the sync log that every write of the other stores appends to.
type ChangeStore interface {
	// Changes returns up to limit changes after cursor visible to userID,
	// oldest first, with the messages that new_message changes refer to.
	Changes(ctx context.Context, userID string, after int64, limit int) ([]*Change, map[string]*Message, error)
	// FirstUndeliveredChange returns the id of the new_message change of the
	// oldest message to userID past their delivered cursor, or 0.
	FirstUndeliveredChange(ctx context.Context, userID string) (int64, error)
	// HeadChange returns the id of the newest change.
	HeadChange(ctx context.Context) (int64, error)
}

// Scheduled is a message to send at a future time.
type Scheduled struct {
	ID              string
	SenderID        string
	RecipientID     string
	ClientMessageID string
	Content         string
	Type            string
	MediaID         string
	ReplyToID       string
	ScheduledAt     time.Time
	CreatedAt       time.Time
	Status          string
}

// ScheduleStore persists scheduled messages durably.
type ScheduleStore interface {
	// CreateScheduled stores a pending scheduled message. ECONFLICT when the
	// sender's clientMessageId was used for another scheduled message.
	CreateScheduled(ctx context.Context, s *Scheduled) error
	// ScheduledByClientID returns the sender's scheduled message with that
	// clientMessageId, or ENOTFOUND.
	ScheduledByClientID(ctx context.Context, senderID, clientMessageID string) (*Scheduled, error)
	// PendingScheduled lists the sender's pending scheduled messages by time.
	PendingScheduled(ctx context.Context, senderID string) ([]*Scheduled, error)
	// CancelScheduled cancels a pending message of the sender, or ENOTFOUND.
	CancelScheduled(ctx context.Context, senderID, id string) error
	// ClaimDue leases up to limit due messages (pending, or sending under an
	// expired lease) to node until the lease ends; a message is leased to one
	// node at a time.
	ClaimDue(ctx context.Context, node string, now, leaseUntil time.Time, limit int) ([]*Scheduled, error)
	// StartScheduled moves a claimed message from pending to sending, after
	// which it can no longer be cancelled; false means it was cancelled.
	StartScheduled(ctx context.Context, id string) (bool, error)
	// FinishScheduled marks a claimed message sent or failed.
	FinishScheduled(ctx context.Context, id, status string) error
}
