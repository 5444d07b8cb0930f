package parley

import (
	"context"
	"errors"
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
	CreatedAt    time.Time
}

// Push is one pending notification to one device in the outbox. Several
// messages for the device before it is sent collapse into it (Count).
// It never holds message content: the conversation, and the sender's
// display name only when the user turned push previews on.
type Push struct {
	Device         PushDevice
	NotificationID string
	ConversationID string
	SenderName     string // "" unless the recipient has push previews on
	Count          int    // messages it stands for
	Version        int64  // bumped by every message collapsed into it
	Attempts       int    // failed sends so far
	NextAt         time.Time
}

// PushCandidate is a recipient's device that a new message may notify,
// found in the change log; the service drops those of users with a socket.
type PushCandidate struct {
	ChangeID       int64
	UserID         string
	DeviceID       string
	Platform       string
	ConversationID string
	SenderName     string // the sender's display name when the recipient has push previews on
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
	// user already has MaxPushDevices others.
	SavePushDevice(ctx context.Context, d *PushDevice) error
	// DeletePushDevice removes a user's device; it reports whether there was one.
	DeletePushDevice(ctx context.Context, userID, deviceID string) (bool, error)
	// PushDevices lists a user's devices, oldest first.
	PushDevices(ctx context.Context, userID string) ([]*PushDevice, error)
	// ServerKey returns the value stored under name, storing generate's
	// result first if there is none; every node gets the same value.
	ServerKey(ctx context.Context, name string, generate func() (string, error)) (string, error)
	// PushCandidates reads the new-message changes after the cursor that
	// were made at or before upTo, at most limit of them, and returns the
	// devices they may notify (not the sender's, not of recipients who
	// muted the sender or the group or channel at now) and the cursor to
	// continue from.
	PushCandidates(ctx context.Context, upTo, now time.Time, limit int) ([]*PushCandidate, int64, int64, error)
	// EnqueuePushes writes pushes into the outbox (collapsing each into a
	// pending push of its device) and moves the cursor from "from" to "to",
	// in one transaction; it does nothing and reports false when the cursor
	// is no longer at from (another node did the work).
	EnqueuePushes(ctx context.Context, from, to int64, pushes []*Push) (bool, error)
	// DuePushes returns up to limit pushes whose NextAt is at or before now.
	DuePushes(ctx context.Context, now time.Time, limit int) ([]*Push, error)
	// PushSent removes a sent push unless a message collapsed into it since
	// (Version changed): then it is kept, due at next.
	PushSent(ctx context.Context, p *Push, now, next time.Time) error
	// PushFailed records a failed attempt; the push is next tried at next,
	// or dropped when next is zero (unless a message collapsed into it since).
	PushFailed(ctx context.Context, p *Push, next time.Time) error
}

// PushPayload is what a push carries: never message content. The client
// fetches the conversation itself.
type PushPayload struct {
	NotificationID string `json:"notificationId"`
	ConversationID string `json:"conversationId"`
	Count          int    `json:"count"`                // messages it stands for
	SenderName     string `json:"senderName,omitempty"` // only with push previews on
}

// Payload returns what p carries to the device.
func (p *Push) Payload() PushPayload {
	return PushPayload{NotificationID: p.NotificationID, ConversationID: p.ConversationID, Count: p.Count, SenderName: p.SenderName}
}
