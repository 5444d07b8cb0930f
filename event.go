package parley

import (
	"context"
	"encoding/json"
)

// Event is something that happened, addressed to users. Data is encoded once
// by the service layer; transports frame it without decoding or validating
// it again, so it must be what an encoder made (a bus that receives events
// from the network checks them before delivering).
type Event struct {
	Name string          // the real-time event name of API.md §12
	Data json.RawMessage // the event payload, already JSON
	To   []string        // user ids; every socket of each user gets it
	// Audience, when not nil, holds exactly the users of To (plain user
	// ids, no device addresses): a fan-out's membership, shared and
	// read-only. A node with fewer users online than addressees checks its
	// own users against it rather than looking up every addressee. It
	// stays on the node that published the event.
	Audience Audience
}

// Audience is a set of users (see Event.Audience).
type Audience interface {
	Has(userID string) bool
}

// Bus carries events from the service layer on any node to the sockets on
// every node. Publish must not block on slow consumers.
type Bus interface {
	// Publish sends ev to every subscriber (on every node). An error means
	// the event may not have reached other nodes; clients catch up by sync.
	Publish(ctx context.Context, ev *Event) error
	// Subscribe registers fn for every event published anywhere; fn must not
	// block. The returned function unsubscribes.
	Subscribe(fn func(ev *Event)) (unsubscribe func())
}

// EventBusGap is an internal event (never sent to clients) that a bus
// delivers to its subscribers when events from other nodes may have been
// lost: its connection to them was interrupted, or it could not keep up.
// Transports then close their sockets (those of the users in To, or every
// socket when To is empty), so that clients reconnect and catch up through
// sync as they do after any reconnection.
const EventBusGap = "_bus_gap"

// The names of the events the server sends (API.md §12), each named once.
// The sync log records the same names (Change.Event), so a client reads the
// same event from its socket and from GET /api/sync.
const (
	EventNewMessage           = "new_message"       // a direct message, content included
	EventNewGroupMessage      = "new_group_message" // a group message, content included
	EventMessageEdited        = "message_edited"    // direct and group messages alike
	EventMessageDeleted       = "message_deleted"
	EventGroupMessageDeleted  = "group_message_deleted"
	EventMessageReaction      = "message_reaction"
	EventGroupMessageReaction = "group_message_reaction"
	EventMessageStatus        = "message_status_update"
	EventGroupMessageStatus   = "group_message_status_update"
	EventTyping               = "typing_indicator"
	EventGroupMemberAdded     = "group_member_added"
	EventGroupMemberRemoved   = "group_member_removed"
	EventGroupUpdated         = "group_updated"
	EventGroupDeleted         = "group_deleted"
	EventNewChannelMessage    = "new_channel_message" // a channel message, content included
	EventChannelPinned        = "channel_message_pinned"
	EventChannelUnpinned      = "channel_message_unpinned"
	EventChannelCreated       = "channel_created"
	EventChannelUpdated       = "channel_updated"
	EventChannelDeleted       = "channel_deleted"
	EventChannelKeyNeeded     = "channel_key_needed"
	EventChannelRekeyNeeded   = "channel_rekey_needed"
	EventCommunityJoinRequest = "community_join_request"
	EventCommunityApproved    = "community_join_approved"
	EventCommunityRejected    = "community_join_rejected"
	EventCommunityMemberLeft  = "community_member_removed"
	EventCommunityUpdated     = "community_updated"
	EventCommunityDeleted     = "community_deleted"
	EventPresence             = "presence_update"
	EventProfileUpdated       = "profile_updated"
	EventKeyChanged           = "key_changed"
	EventStatusCreated        = "status_created" // a status the user may see was posted
	EventStatusViewed         = "status_viewed"  // to a status's owner, at each viewer's first view
)

// Mail is an e-mail to send.
type Mail struct {
	To      string
	Subject string
	Body    string // plain text
}

// Mailer sends e-mail (password resets, sign-in alerts).
type Mailer interface {
	// Send delivers m or returns an error; it may be slow and is called
	// outside request paths where latency matters.
	Send(ctx context.Context, m *Mail) error
}
