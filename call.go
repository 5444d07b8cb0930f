package parley

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"time"
)

// Call types and states (API.md §9). A call starts ringing and ends in one
// of the final states; every move is a conditional update of the stored
// state, so that of two nodes (or two devices) racing for the same move
// exactly one wins.
const (
	CallVoice = "voice"
	CallVideo = "video"

	CallRinging  = "ringing"  // waiting for the callee
	CallAccepted = "accepted" // live: the callee answered
	CallEnded    = "ended"    // a live call that ended
	CallRejected = "rejected" // the callee declined
	CallMissed   = "missed"   // nobody answered in CallRingTimeout
	CallCanceled = "canceled" // the caller hung up while it rang
	CallBusy     = "busy"     // the callee was in another live call
	CallFailed   = "failed"   // it could not be set up

	// CallRingTimeout is how long a call rings before it is missed.
	CallRingTimeout = 45 * time.Second
	// MaxSignalBytes bounds one call_signal's opaque signal.
	MaxSignalBytes = 64 << 10
)

// The events of calls (API.md §9). call_signal is relayed, never stored;
// the others are also recorded in the sync log of both parties.
const (
	EventCallIncoming          = "call_incoming"
	EventCallAccepted          = "call_accepted"
	EventCallRejected          = "call_rejected"
	EventCallEnded             = "call_ended"
	EventCallAnsweredElsewhere = "call_answered_elsewhere"
	EventCallSignal            = "call_signal"
)

// Call is a voice or video call between two users. CallerDevice is the
// device that placed it, CalleeDevice the one that answered (empty until
// then): signals are relayed between those two only.
type Call struct {
	ID           string
	CallerID     string
	CalleeID     string
	Type         string // CallVoice or CallVideo
	State        string
	Reason       string // why it reached its final state: hangup, canceled, missed, busy, rejected, ...
	CallerDevice string
	CalleeDevice string
	CreatedAt    time.Time
	AnsweredAt   time.Time // zero unless it was accepted
	EndedAt      time.Time // zero while ringing or live
	// CallerLostAt and CalleeLostAt are when the party's device of the
	// call lost its last socket on every node, while the call was live;
	// zero while it has one (or reconnected since).
	CallerLostAt time.Time
	CalleeLostAt time.Time
}

// Live reports whether the call still rings or is in progress.
func (c *Call) Live() bool { return c.State == CallRinging || c.State == CallAccepted }

// Duration is how long a call was in progress: from the answer to its end.
func (c *Call) Duration() time.Duration {
	if c.AnsweredAt.IsZero() || c.EndedAt.IsZero() {
		return 0
	}
	return c.EndedAt.Sub(c.AnsweredAt)
}

// Other returns the party of the call that is not userID.
func (c *Call) Other(userID string) string {
	if userID == c.CallerID {
		return c.CalleeID
	}
	return c.CallerID
}

// CallStore keeps calls in the database every node shares.
type CallStore interface {
	// CreateCall stores a new ringing call, unless its callee is already in
	// a live (accepted) call: then it is stored as CallBusy, ended at once.
	// build gets the call as stored and returns the changes to record with
	// it in the same transaction.
	CreateCall(ctx context.Context, c *Call, build func(c *Call) []*Change) error
	// CallByID returns a call, or ENOTFOUND.
	CallByID(ctx context.Context, id string) (*Call, error)
	// MoveCall stores c's state, reason, callee device and answer and end
	// times if the stored call is still in state from, and then records
	// changes in the same transaction; it reports whether it did. Of
	// concurrent moves from the same state exactly one wins.
	MoveCall(ctx context.Context, c *Call, from string, changes ...*Change) (bool, error)
	// CallHistory lists userID's calls (as caller or callee) created before
	// before, newest first, at most limit.
	CallHistory(ctx context.Context, userID string, before time.Time, limit int) ([]*Call, error)
	// RingingCall returns the newest call from callerID to calleeID that
	// still rings, or ENOTFOUND.
	RingingCall(ctx context.Context, callerID, calleeID string) (*Call, error)
	// RingingSince lists up to limit calls still ringing that were created
	// at or before since, oldest first.
	RingingSince(ctx context.Context, since time.Time, limit int) ([]*Call, error)

	// MarkDeviceLost records that userID's device deviceID has no socket
	// on any node since at, in each call still ringing or live that it
	// takes part in (as the caller's device, or the callee's answering
	// one) and that does not record it lost already; it returns how many
	// calls it marked.
	MarkDeviceLost(ctx context.Context, userID, deviceID string, at time.Time) (int, error)
	// ClearDeviceLost records that userID's device deviceID has a socket
	// again, in every call still ringing or live that records it lost.
	ClearDeviceLost(ctx context.Context, userID, deviceID string) error
	// MarkPartyLost records userID's device in call id lost since at, if
	// the call is still in state and does not record it lost already.
	MarkPartyLost(ctx context.Context, id, userID, state string, at time.Time) (bool, error)
	// LiveCallsOf lists the calls still ringing or live that userID
	// takes part in.
	LiveCallsOf(ctx context.Context, userID string) ([]*Call, error)
	// CallsIn lists up to limit calls in state whose id sorts after
	// after, by id.
	CallsIn(ctx context.Context, state, after string, limit int) ([]*Call, error)
	// LostSince lists up to limit calls still ringing or live with a
	// device lost at or before since, oldest first.
	LostSince(ctx context.Context, since time.Time, limit int) ([]*Call, error)
	// EndLostCall is MoveCall, conditioned also on the call still having a
	// device lost at or before since (a reconnect clears it).
	EndLostCall(ctx context.Context, c *Call, from string, since time.Time, changes ...*Change) (bool, error)
}

// Event addressees (Event.To) are user ids, which reach every socket of the
// user. A call's signals go to one device of a user only, and "answered
// elsewhere" to every device but one: DeviceAddress and OtherDevicesAddress
// name those. The device id is hex-encoded so that any id can travel on
// every bus.
const (
	deviceOnly   = "#"
	deviceExcept = "!"
)

// DeviceAddress addresses the sockets of userID signed in as deviceID.
func DeviceAddress(userID, deviceID string) string {
	return userID + deviceOnly + hex.EncodeToString([]byte(deviceID))
}

// OtherDevicesAddress addresses the sockets of userID not signed in as
// deviceID.
func OtherDevicesAddress(userID, deviceID string) string {
	return userID + deviceExcept + hex.EncodeToString([]byte(deviceID))
}

// ParseAddress splits an event addressee into the user id and, for a
// device address, the device id and whether the address excludes it
// (OtherDevicesAddress) rather than names it (DeviceAddress). A plain user
// id, or an address that does not decode, has device "".
func ParseAddress(addr string) (userID, deviceID string, except bool) {
	i := -1 // a byte loop: strings.IndexAny builds a set per call, and fan-out calls this per addressee
	for j := 0; j < len(addr); j++ {
		if addr[j] == deviceOnly[0] || addr[j] == deviceExcept[0] {
			i = j
			break
		}
	}
	if i < 0 {
		return addr, "", false
	}
	dev, err := hex.DecodeString(addr[i+1:])
	if err != nil || len(dev) == 0 {
		return addr[:i], "\x00", false // names no device: reaches nobody
	}
	return addr[:i], string(dev), addr[i] == deviceExcept[0]
}

// TURNUsername is the user name of a TURN REST API credential (the form
// coturn's use-auth-secret accepts): the expiry in Unix seconds, a colon,
// then the user id.
func TURNUsername(expiry time.Time, userID string) string {
	return strconv.FormatInt(expiry.Unix(), 10) + ":" + userID
}

// TURNCredential is the password that goes with a TURN REST API user name:
// the base64 HMAC-SHA1 of the name keyed with the shared secret.
func TURNCredential(secret, username string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
