package service

import "github.com/parley-chat/parley"

// EventDoc describes one real-time event for the AsyncAPI document: its
// name, what it means, and a zero value of the Go type its payload is
// encoded from (for client events, the type it is decoded into).
type EventDoc struct {
	Name    string
	Summary string
	Payload any
	Ack     any  // client events: the data of the acknowledgement; nil when none
	Client  bool // sent by clients rather than by the server
}

// keyChangedEvent is key_changed: a contact added or rotated a device key.
type keyChangedEvent struct {
	UserID   string `json:"userId"`
	DeviceID string `json:"deviceId"`
}

// Events lists every event the service publishes to clients and every
// client event the transports hand to it, with the Go types of their
// payloads: the same types the service encodes and decodes.
func Events() []EventDoc {
	return []EventDoc{
		{Name: parley.EventNewMessage, Summary: "A direct message to or from the user, with its content.", Payload: MessageView{}},
		{Name: parley.EventNewGroupMessage, Summary: "A message in one of the user's groups, with its content.", Payload: MessageView{}},
		{Name: parley.EventTyping, Summary: "A peer (recipientId) or group member (groupId) started or stopped typing.", Payload: typingEvent{}},
		{Name: parley.EventMessageReaction, Summary: "A reaction to a direct message was set or (empty reaction) removed.", Payload: reactionEvent{}},
		{Name: parley.EventGroupMessageReaction, Summary: "A reaction to a group message was set or removed.", Payload: reactionEvent{}},
		{Name: parley.EventMessageDeleted, Summary: "A direct message was deleted for everyone, or for this user only.", Payload: deleteEvent{}},
		{Name: parley.EventGroupMessageDeleted, Summary: "A group message was deleted for everyone, or for this user only.", Payload: deleteEvent{}},
		{Name: parley.EventMessageEdited, Summary: "A message was edited; the full message with its new content.", Payload: MessageView{}},
		{Name: parley.EventMessageStatus, Summary: "Every message of senderId up to upToSeq reached status.", Payload: statusUpdate{}},
		{Name: parley.EventGroupMessageStatus, Summary: "Member userId received or read every group message up to upToSeq.", Payload: groupStatusUpdate{}},
		{Name: parley.EventGroupMemberAdded, Summary: "Members joined a group (sent to old and new members).", Payload: memberAddedEvent{}},
		{Name: parley.EventGroupMemberRemoved, Summary: "A member left or was removed (sent to them too).", Payload: memberRemovedEvent{}},
		{Name: parley.EventGroupUpdated, Summary: "A group's details, settings or a member's role changed.", Payload: groupUpdatedEvent{}},
		{Name: parley.EventGroupDeleted, Summary: "A group was deleted.", Payload: groupDeletedEvent{}},
		{Name: parley.EventNewChannelMessage, Summary: "A message in a channel the user reads, with its content (channelId).", Payload: MessageView{}},
		{Name: parley.EventChannelPinned, Summary: "An admin pinned a channel message.", Payload: PinView{}},
		{Name: parley.EventChannelUnpinned, Summary: "An admin unpinned a channel message.", Payload: PinView{}},
		{Name: parley.EventChannelCreated, Summary: "A channel the user reads was created.", Payload: channelEvent{}},
		{Name: parley.EventChannelUpdated, Summary: "A channel the user reads was renamed or redescribed.", Payload: channelEvent{}},
		{Name: parley.EventChannelDeleted, Summary: "A channel the user read was deleted.", Payload: channelDeletedEvent{}},
		{Name: parley.EventChannelKeyNeeded, Summary: "To admins: userId reads an encrypted channel without a wrapped key; post one with POST /api/channels/keys.", Payload: keyNeededEvent{}},
		{Name: parley.EventChannelRekeyNeeded, Summary: "To admins: userId no longer reads an encrypted channel they held the key of; rotate it.", Payload: keyNeededEvent{}},
		{Name: parley.EventCommunityJoinRequest, Summary: "To admins: a user asked to join a private community.", Payload: joinRequestEvent{}},
		{Name: parley.EventCommunityApproved, Summary: "To the requester: an admin approved their request to join.", Payload: joinAnswerEvent{}},
		{Name: parley.EventCommunityRejected, Summary: "To the requester: an admin rejected their request to join.", Payload: joinAnswerEvent{}},
		{Name: parley.EventCommunityMemberLeft, Summary: "To the member: they left or were removed from a community.", Payload: communityLeftEvent{}},
		{Name: parley.EventCommunityUpdated, Summary: "A community's name, description, avatar or cover changed (not in sync: refetch it).", Payload: CommunityView{}},
		{Name: parley.EventCommunityDeleted, Summary: "A community the user was a member of was deleted.", Payload: communityDeletedEvent{}},
		{Name: parley.EventPresence, Summary: "A contact or peer came online or went offline (lastSeen null where hidden).", Payload: Presence{}},
		{Name: parley.EventProfileUpdated, Summary: "A contact changed their profile.", Payload: PublicProfile{}},
		{Name: parley.EventKeyChanged, Summary: "A contact added or rotated a device key.", Payload: keyChangedEvent{}},
		{Name: parley.EventCallIncoming, Summary: "To every device of the callee: a call rings (until call_accepted, call_rejected, call_ended or call_answered_elsewhere). " +
			"A socket of the callee that connects while the call still rings gets it on connecting (possibly twice if it connects as the call starts: same callId).", Payload: callIncoming{}},
		{Name: parley.EventCallAccepted, Summary: "To the caller and the device that answered: the call is live.", Payload: callAccepted{}},
		{Name: parley.EventCallAnsweredElsewhere, Summary: "To the callee's other devices: the call was answered on another device; stop ringing.", Payload: callElsewhere{}},
		{Name: parley.EventCallRejected, Summary: "To both parties: the callee declined the call.", Payload: callFinished{}},
		{Name: parley.EventCallEnded, Summary: "To both parties (busy: to the caller only): the call is over; reason hangup, canceled, missed, busy, " +
			"connection_lost (status ended: a device of the live call had no socket for 20 s) or failed (status failed: the caller's device of the ringing call " +
			"had no socket for 20 s); duration in seconds.", Payload: callFinished{}},
		{Name: parley.EventCallSignal, Summary: "A WebRTC signal (offer, answer, ICE candidate) from the other device of a call, relayed as it was sent.", Payload: callSignal{}},
		{Name: parley.EventStatusCreated, Summary: "A contact posted a status the user may see (fetch it with GET /api/statuses/{statusId}).", Payload: statusCreatedEvent{}},
		{Name: parley.EventStatusViewed, Summary: "Someone viewed one of the user's statuses for the first time.", Payload: statusViewedEvent{}},
		{Name: "send_message", Summary: "Send a direct message (as POST /api/messages/send).", Payload: SendInput{}, Ack: SendResult{}, Client: true},
		{Name: "send_group_message", Summary: "Send a group message (as POST /api/group-messages/send).", Payload: GroupSendInput{}, Ack: GroupSendResult{}, Client: true},
		{Name: "send_channel_message", Summary: "Send a channel message (as POST /api/channel-messages/send).", Payload: ChannelSendInput{}, Ack: ChannelSendResult{}, Client: true},
		{Name: "typing", Summary: "Tell a peer (recipientId) or a group (groupId) the user is typing.", Payload: TypingInput{}, Client: true},
		{Name: "message_status", Summary: "Mark a direct message delivered or seen (as POST /api/status).", Payload: StatusInput{}, Ack: StatusResult{}, Client: true},
		{Name: parley.EventCallSignal, Summary: "Relay a WebRTC signal (at most 64 KiB of JSON) to the other device of a ringing or live call (as POST /api/calls/signal).", Payload: SignalInput{}, Ack: SignalResult{}, Client: true},
	}
}
