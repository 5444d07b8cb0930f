package parley

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// Push platforms a device may register for (API.md §10).
const (
	PlatformWebPush = "webpush"
	PlatformFCM     = "fcm"
	PlatformAPNs    = "apns"
)

// Limits of push registrations.
const (
	MaxPushDevices      = 20   // devices one user may register for pushes
	MaxPushTokenLen     = 4096 // an FCM or APNs token
	MaxPushEndpointLen  = 2048 // a Web Push subscription's endpoint URL
	MaxSubscriptionJSON = 8192 // a Web Push subscription as the client sends it
)

// PushDevice is a device registered to receive pushes: a Web Push
// subscription (Subscription, JSON {endpoint, keys: {p256dh, auth}}) or an
// FCM/APNs token.
type PushDevice struct {
	UserID       string
	DeviceID     string
	Platform     string
	Token        string
	Subscription string
	// SessionHash names the session (its token's hash) that registered
	// the device: when it is revoked, the device is removed.
	SessionHash string
	CreatedAt   time.Time
}

// Kinds of pushes: what a push is about.
const (
	PushMessage     = "message"      // new messages in a conversation
	PushCall        = "call"         // a call rings
	PushJoinRequest = "join_request" // a user asks to join a private community the user administers
	PushKeyRequest  = "key_request"  // a member of a channel the user administers needs its key
	PushAdmin       = "admin"        // an admin's announcement (POST /api/notifications/push)
)

// MaxAdminPushLen bounds the text of an admin's push: every provider
// takes about 4 KiB of payload.
const MaxAdminPushLen = 1000

// Push is one pending notification to one device in the outbox. Pushes of
// one device and Topic that are still pending collapse into one (Count):
// every message push of a device shares a topic, a call has its own.
// It never holds message content: the conversation, and the sender's
// display name only when the user turned push previews on.
type Push struct {
	Device         PushDevice
	Kind           string // PushMessage, PushCall, ...
	Topic          string // the collapse key; at most 32 characters of [A-Za-z0-9_-]
	NotificationID string
	ConversationID string   // PushMessage
	SenderName     string   // "" unless the recipient has push previews on
	Data           PushData // what the kind adds
	Count          int      // events it stands for
	Version        int64    // bumped by every event collapsed into it
	Attempts       int      // failed sends so far
	NextAt         time.Time
}

// PushData is what a push carries besides its conversation and sender,
// by kind; never message content.
type PushData struct {
	CallID      string `json:"callId,omitempty"`
	CallType    string `json:"callType,omitempty"` // voice or video
	CommunityID string `json:"communityId,omitempty"`
	ChannelID   string `json:"channelId,omitempty"`
	UserID      string `json:"userId,omitempty"`  // who asks to join, or needs a key
	Message     string `json:"message,omitempty"` // PushAdmin only: the admin's text
}

// PushCandidate is a device that a new change may notify, found in the
// change log; the service drops those of users with a socket.
type PushCandidate struct {
	ChangeID       int64
	Event          string // the change's event: a new message, call_incoming, community_join_request, channel_key_needed
	UserID         string
	DeviceID       string
	Platform       string
	ConversationID string
	SenderName     string // a message's sender when the recipient has push previews on
	Previews       bool   // the recipient has push previews on
	Payload        []byte // the change's payload, for the events other than messages
	LastPushAt     time.Time
}

// ErrPushGone is what a PushSender answers when the provider reports the
// device's subscription or token gone for good (HTTP 404/410,
// UNREGISTERED): the device is then removed.
var ErrPushGone = errors.New("push subscription gone")

// PushSender delivers a push to one platform's provider.
type PushSender interface {
	// Send delivers p to its device; ErrPushGone when the provider says the
	// device is gone, another error for a failure worth retrying.
	Send(ctx context.Context, p *Push) error
}

// NotifyStore keeps push devices, server keys and the outbox (the
// pushPreviews setting is the user's, in UserStore).
type NotifyStore interface {
	// SavePushDevice adds or replaces a user's device; ECONFLICT when the
	// user already has MaxPushDevices others. Revoking the session named
	// by d.SessionHash (SessionStore.RevokeSession, ResetPassword) removes
	// the device with its pending pushes, in the same transaction.
	SavePushDevice(ctx context.Context, d *PushDevice) error
	// DeletePushDevice removes a user's device; it reports whether there was one.
	DeletePushDevice(ctx context.Context, userID, deviceID string) (bool, error)
	// PushDevices lists a user's devices, oldest first.
	PushDevices(ctx context.Context, userID string) ([]*PushDevice, error)
	// ServerKey returns the value stored under name, storing generate's
	// result first if there is none; every node gets the same value.
	ServerKey(ctx context.Context, name string, generate func() (string, error)) (string, error)
	// PushCandidates reads the changes that may notify after the cursor
	// (new messages, call_incoming, community_join_request,
	// channel_key_needed) that were made at or before upTo, at most limit
	// of them, and returns the devices they may notify (for messages: not
	// the sender's, not of recipients who muted the sender or the group or
	// channel at now; for the others: the devices of the user the change is
	// addressed to) and the cursor to continue from.
	PushCandidates(ctx context.Context, upTo, now time.Time, limit int) ([]*PushCandidate, int64, int64, error)
	// EnqueuePushes writes pushes into the outbox (collapsing each into a
	// pending push of its device and topic) and moves the cursor from "from" to "to",
	// in one transaction; it does nothing and reports false when the cursor
	// is no longer at from (another node did the work).
	EnqueuePushes(ctx context.Context, from, to int64, pushes []*Push) (bool, error)
	// DuePushes returns up to limit pushes whose NextAt is at or before now
	// and that no node has claimed (or whose claim ended by now).
	DuePushes(ctx context.Context, now time.Time, limit int) ([]*Push, error)
	// ClaimPush claims p for the caller until until, so that no other node
	// sends it meanwhile; false when it is claimed, gone, or changed since
	// it was read (Version). PushSent and PushFailed end the claim.
	ClaimPush(ctx context.Context, p *Push, now, until time.Time) (bool, error)
	// PushSent removes a sent push unless a message collapsed into it since
	// (Version changed): then it is kept, due at next.
	PushSent(ctx context.Context, p *Push, now, next time.Time) error
	// PushFailed records a failed attempt; the push is next tried at next,
	// or dropped when next is zero (unless a message collapsed into it since).
	PushFailed(ctx context.Context, p *Push, next time.Time) error
	// QueueUserPush writes p into the outbox once for each of userID's
	// devices (p.Device is ignored; every row gets p.NotificationID) and
	// returns how many devices it reached.
	QueueUserPush(ctx context.Context, userID string, p *Push) (int, error)
}

// PushPayload is what a push carries: never message content. The client
// fetches the conversation (or the call, the requests) itself.
type PushPayload struct {
	NotificationID string `json:"notificationId"`
	Type           string `json:"type"` // the Push's Kind
	Count          int    `json:"count"`
	ConversationID string `json:"conversationId,omitempty"`
	SenderName     string `json:"senderName,omitempty"`    // message: only with push previews on
	CallID         string `json:"callId,omitempty"`        // call
	CallType       string `json:"callType,omitempty"`      // call: voice or video
	CallerName     string `json:"callerName,omitempty"`    // call: only with push previews on
	CommunityID    string `json:"communityId,omitempty"`   // join_request, key_request
	ChannelID      string `json:"channelId,omitempty"`     // key_request
	UserID         string `json:"userId,omitempty"`        // join_request, key_request: the user asking
	RequesterName  string `json:"requesterName,omitempty"` // join_request: only with push previews on
	Message        string `json:"message,omitempty"`       // admin
}

// Payload returns what p carries to the device.
func (p *Push) Payload() PushPayload {
	out := PushPayload{NotificationID: p.NotificationID, Type: p.Kind, Count: p.Count, ConversationID: p.ConversationID,
		CallID: p.Data.CallID, CallType: p.Data.CallType, CommunityID: p.Data.CommunityID, ChannelID: p.Data.ChannelID,
		UserID: p.Data.UserID, Message: p.Data.Message}
	switch p.Kind {
	case PushCall:
		out.CallerName = p.SenderName
	case PushJoinRequest:
		out.RequesterName = p.SenderName
	default:
		out.SenderName = p.SenderName
	}
	return out
}

// Alert is the line a provider that shows notifications itself (APNs)
// displays for p.
func (p *Push) Alert() string {
	from := ""
	if p.SenderName != "" {
		from = " from " + p.SenderName
	}
	switch p.Kind {
	case PushCall:
		if p.Data.CallType == CallVideo {
			return "Incoming video call" + from
		}
		return "Incoming voice call" + from
	case PushJoinRequest:
		return "New request to join your community" + from
	case PushKeyRequest:
		return "A member is waiting for a channel key"
	case PushAdmin:
		return p.Data.Message
	default:
		return "New message" + from
	}
}

// OutboxMail is an e-mail waiting in the outbox. A password reset's body
// is made when it is sent (with a fresh token); the others are stored
// whole and never hold a secret.
type OutboxMail struct {
	ID        string
	Kind      string // MailReset, MailSignIn, MailAdmin
	To        string
	Subject   string
	Body      string
	Attempts  int // failed sends so far
	NextAt    time.Time
	CreatedAt time.Time
}

// Kinds of e-mail in the outbox.
const (
	MailReset  = "reset"   // a password reset for the account of To, if there is one
	MailSignIn = "sign_in" // a new-device sign-in alert
	MailAdmin  = "admin"   // an admin's e-mail to a user
)

// Limits of an admin's e-mail.
const (
	MaxMailSubjectLen = 200
	MaxMailBodyLen    = 16 << 10
)

// MailStore is the e-mail outbox.
type MailStore interface {
	// QueueMail adds m to the outbox.
	QueueMail(ctx context.Context, m *OutboxMail) error
	// AddDevice adds (or updates) a user's device like
	// UserStore.UpsertDevice and, when it is new and alert is not nil,
	// queues alert in the same transaction. It reports whether the device
	// is new.
	AddDevice(ctx context.Context, d *Device, alert *OutboxMail) (bool, error)
	// DueMail returns up to limit e-mails whose NextAt is at or before now
	// and that no node has claimed (or whose claim ended by now), oldest
	// first.
	DueMail(ctx context.Context, now time.Time, limit int) ([]*OutboxMail, error)
	// ClaimMail claims an e-mail for the caller until until, so that no
	// other node sends it meanwhile; false when it is claimed or gone.
	// MailDone and MailFailed end the claim.
	ClaimMail(ctx context.Context, id string, now, until time.Time) (bool, error)
	// MailDone removes a sent (or dropped) e-mail.
	MailDone(ctx context.Context, id string) error
	// MailFailed records a failed attempt; it is next tried at next.
	MailFailed(ctx context.Context, id string, next time.Time) error
}

// internalPrefixes are address ranges that are not on the public internet,
// beyond those netip classifies (loopback, private, link-local, multicast,
// unspecified).
var internalPrefixes = [...]netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the broadcast address
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use IPv4/IPv6 translation
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// IsInternalAddr reports whether a is an address a server must not be
// made to call on a client's behalf (SSRF): loopback, private, link-local,
// multicast, unspecified, carrier-grade NAT and other non-public ranges,
// including IPv4 addresses written as IPv6 (mapped, NAT64, 6to4).
func IsInternalAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return true
	}
	for _, p := range internalPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a): // NAT64: the IPv4 address is the last 4 bytes
			return IsInternalAddr(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(a): // 6to4: bytes 2-5
			return IsInternalAddr(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	return false
}
