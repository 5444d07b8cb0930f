package httpapi

import (
	"context"
	"net/http"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/service"
)

// communityRoutes are the community and channel routes of API.md §6.
func (a *API) communityRoutes() []route {
	s := a.svc
	answer := func(approve bool) func(context.Context, *parley.Identity, service.JoinAnswerInput) (*service.JoinResult, error) {
		return func(ctx context.Context, c *parley.Identity, in service.JoinAnswerInput) (*service.JoinResult, error) {
			return s.AnswerJoin(ctx, c, in, approve)
		}
	}
	pin := func(p bool) func(context.Context, *parley.Identity, service.PinInput) (*service.PinView, error) {
		return func(ctx context.Context, c *parley.Identity, in service.PinInput) (*service.PinView, error) {
			return s.Pin(ctx, c, in, p)
		}
	}
	return []route{
		{Method: "POST", Path: "/api/communities/create", Status: http.StatusCreated, In: service.CreateCommunityInput{}, Out: service.CommunityView{},
			Summary: "Create a community with the caller as owner and a default text channel \"general\". isPrivate makes it end-to-end encrypted (e2eeMode \"true\": the server keeps only wrapped keys, encryptedAESKey is the creator's); a public one is \"trusted\" (the server keeps plaintextAESKey and gives it to every member).",
			handle:  withBodyMessage(s.CreateCommunity, text[*service.CommunityView]("Community created successfully"))},
		{Method: "GET", Path: "/api/communities/search", Summary: "Public communities whose name contains q, by name.",
			Query: []param{{"q", "part of the name (empty: all)"}, {"limit", "at most 200, default 50"}}, Out: []service.CommunityView{},
			handle: func(ctx context.Context, c *call) (any, error) {
				limit, err := queryInt(c.r, "limit", service.DefaultPageSize, 1, service.MaxPageSize)
				if err != nil {
					return nil, err
				}
				return s.SearchCommunities(ctx, c.caller, c.r.URL.Query().Get("q"), limit)
			}},
		{Method: "GET", Path: "/api/communities/user/{userId}", Summary: "The caller's communities (userId must be the caller), newest first.",
			Out: []service.CommunityView{},
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.UserCommunities(ctx, c.caller, c.r.PathValue("userId"))
			}},
		{Method: "GET", Path: "/api/communities/{communityId}", Out: service.CommunityView{},
			Summary: "A community with channelIds, the channels the caller reads. A private community is 404 to anyone not in it; keys go to approved members only.",
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.Community(ctx, c.caller, c.r.PathValue("communityId"))
			}},
		{Method: "POST", Path: "/api/communities/join", In: service.CommunityInput{}, Out: service.JoinResult{},
			Summary: "Join a public community at once (status \"member\": a reader of every public channel with its whole history) or ask to join a private one (status \"pending\"; admins get community_join_request). 409 when already in it.",
			handle:  withBodyMessage(s.JoinCommunity, func(r *service.JoinResult) string { return joinMessage(r.Status) })},
		{Method: "GET", Path: "/api/communities/{communityId}/requests", Out: []service.JoinRequestView{}, shared: communityPart,
			Summary: "Pending requests to join, oldest first (admins).",
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.JoinRequests(ctx, c.caller, c.r.PathValue("communityId"))
			}},
		{Method: "GET", Path: "/api/communities/{communityId}/members", Out: []service.CommunityMemberView{}, shared: communityPart,
			Summary: "The community's approved members in the order they joined (approved members only; anyone else gets 404), a page at a time: pass the last userId of a page as after for the next.",
			Query:   []param{{"limit", "at most 200, default 50"}, {"after", "userId of the last member of the previous page"}},
			handle: func(ctx context.Context, c *call) (any, error) {
				limit, err := queryInt(c.r, "limit", service.DefaultPageSize, 1, service.MaxPageSize)
				if err != nil {
					return nil, err
				}
				return s.CommunityMembers(ctx, c.caller, c.r.PathValue("communityId"), c.r.URL.Query().Get("after"), limit)
			}},
		{Method: "POST", Path: "/api/communities/requests/approve", In: service.JoinAnswerInput{}, Out: service.JoinResult{},
			Summary: "Approve the request of userId (the requester, as API.md §6 names it; admins); the user gets community_join_approved, and admins channel_key_needed for encrypted channels.",
			handle:  withBodyMessage(answer(true), text[*service.JoinResult]("Join request approved"))},
		{Method: "POST", Path: "/api/communities/requests/reject", In: service.JoinAnswerInput{}, Out: service.JoinResult{},
			Summary: "Reject the request of userId (the requester; admins); the user gets community_join_rejected.",
			handle:  withBodyMessage(answer(false), text[*service.JoinResult]("Join request rejected"))},
		{Method: "POST", Path: "/api/communities/leave", In: service.CommunityInput{}, Out: service.LeaveResult{},
			Summary: "Leave a community and all its channels (or withdraw a pending request). The last admin leaving promotes the longest-standing member; the owner leaving hands ownership to the longest-standing admin.",
			handle:  withBodyMessage(s.LeaveCommunity, text[*service.LeaveResult]("Left the community"))},
		{Method: "POST", Path: "/api/communities/members/remove", In: service.MemberInput{}, Out: service.LeaveResult{},
			Summary: "Remove a member (admins; only the owner removes an admin; nobody the owner).",
			handle:  withBodyMessage(s.RemoveCommunityMember, text[*service.LeaveResult]("Member removed from the community"))},
		{Method: "POST", Path: "/api/communities/members/role", In: service.CommunityRoleInput{}, Out: service.CommunityRoleInput{},
			Summary: "Make a member admin or member (admins; the owner's role never changes).",
			handle:  withBodyMessage(s.SetCommunityRole, text[*service.CommunityRoleInput]("Member role updated"))},
		{Method: "POST", Path: "/api/communities/update", In: service.UpdateCommunityInput{}, Out: service.CommunityView{},
			Summary: "Change name, description, avatar or coverImage (admins); absent fields keep their value. Members get community_updated.",
			handle:  withBody(s.UpdateCommunity)},
		{Method: "POST", Path: "/api/communities/delete", In: service.CommunityInput{}, Out: service.CommunityInput{},
			Summary: "Delete the community with its channels and messages (the owner); members get community_deleted.",
			handle:  withBodyMessage(s.DeleteCommunity, text[*service.CommunityInput]("Community deleted successfully"))},
		{Method: "POST", Path: "/api/communities/channels/create", Status: http.StatusCreated, In: service.CreateChannelInput{}, Out: service.ChannelView{},
			Summary: "Create a channel (admins; at most 500 per community): type text|voice|announcement (only admins post in announcement channels). A private channel is read by the creator and allowedMembers; encryptedKeysFromClient maps readers to their wrapped channel key.",
			handle:  withBodyMessage(s.CreateChannel, text[*service.ChannelView]("Channel created successfully"))},
		{Method: "GET", Path: "/api/communities/{communityId}/channels", Out: []service.ChannelView{}, shared: communityPart,
			Summary: "The community's channels the caller reads, oldest first.",
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.CommunityChannels(ctx, c.caller, c.r.PathValue("communityId"))
			}},
		{Method: "POST", Path: "/api/channels/update", In: service.UpdateChannelInput{}, Out: service.ChannelView{},
			Summary: "Rename or redescribe a channel (admins); readers get channel_updated.",
			handle:  withBody(s.UpdateChannel)},
		{Method: "POST", Path: "/api/channels/delete", In: service.ChannelInput{}, Out: service.ChannelInput{},
			Summary: "Delete a channel with its messages (admins); readers get channel_deleted.",
			handle:  withBodyMessage(s.DeleteChannel, text[*service.ChannelInput]("Channel deleted successfully"))},
		{Method: "POST", Path: "/api/channels/members/add", In: service.ChannelMembersInput{}, Out: service.ChannelMembersResult{},
			Summary: "Let community members read a private channel (admins); answers those who were not readers yet. Admins get channel_key_needed for each.",
			handle:  withBody(s.AddChannelMembers)},
		{Method: "POST", Path: "/api/channels/members/remove", In: service.ChannelMembersInput{}, Out: service.ChannelMembersResult{},
			Summary: "Stop a user reading a private channel (admins); admins get channel_rekey_needed.",
			handle:  withBody(s.RemoveChannelMember)},
		{Method: "GET", Path: "/api/channels/{channelId}/members", Out: []service.ChannelReaderView{},
			Summary: "Who reads the channel, by userId (readers only; anyone else gets 404), a page at a time: pass the last userId of a page as after for the next. An admin's client wraps a rotated key for them.",
			Query:   []param{{"limit", "at most 200, default 50"}, {"after", "userId of the last reader of the previous page"}},
			handle: func(ctx context.Context, c *call) (any, error) {
				limit, err := queryInt(c.r, "limit", service.DefaultPageSize, 1, service.MaxPageSize)
				if err != nil {
					return nil, err
				}
				return s.ChannelReaders(ctx, c.caller, c.r.PathValue("channelId"), c.r.URL.Query().Get("after"), limit)
			}},
		{Method: "GET", Path: "/api/channels/{channelId}/key", Out: service.ChannelKeyView{},
			Summary: "The caller's own key of a channel they read: encryptedKey (wrapped for them; null until an admin posts it) or, in a trusted community's public channel, key.",
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.ChannelKey(ctx, c.caller, c.r.PathValue("channelId"))
			}},
		{Method: "POST", Path: "/api/channels/keys", In: service.ChannelKeysInput{}, Out: service.ChannelMembersResult{},
			Summary: "Hand wrapped channel keys to readers (admins who read the channel); at most 1024 per request, stored as given.",
			handle:  withBody(s.SetChannelKeys)},
		{Method: "POST", Path: "/api/channel-messages/send", Status: http.StatusCreated, In: service.ChannelSendInput{}, Out: service.ChannelSendResult{},
			Summary: "Send a channel message; answered after it is committed. new_channel_message goes to every reader at the moment of the commit.",
			handle:  withBody(s.SendChannelMessage)},
		{Method: "GET", Path: "/api/channel-messages/{channelId}", Query: historyParams, Out: []service.MessageView{},
			Summary: "A channel's messages, newest first: readers see its whole history, anyone else (pending or removed members too) gets 404.",
			handle: func(ctx context.Context, c *call) (any, error) {
				q, err := historyQuery(c.r)
				if err != nil {
					return nil, err
				}
				return s.ChannelHistory(ctx, c.caller, c.r.PathValue("channelId"), q)
			}},
		{Method: "GET", Path: "/api/channel-messages/{channelId}/pinned", Out: []service.PinView{},
			Summary: "A channel's pinned messages, newest pin first, each with the message.",
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.Pinned(ctx, c.caller, c.r.PathValue("channelId"))
			}},
		{Method: "POST", Path: "/api/channel-messages/pin", In: service.PinInput{}, Out: service.PinView{},
			Summary: "Pin a channel message (admins); readers get channel_message_pinned.",
			handle:  withBodyMessage(pin(true), text[*service.PinView]("Message pinned"))},
		{Method: "POST", Path: "/api/channel-messages/unpin", In: service.PinInput{}, Out: service.PinView{},
			Summary: "Unpin a channel message (admins); readers get channel_message_unpinned.",
			handle:  withBodyMessage(pin(false), text[*service.PinView]("Message unpinned"))},
	}
}

// communityPart mounts the routes under a community id (see route.shared).
const communityPart = "/api/communities/{communityId}/{part}"

func joinMessage(status string) string {
	if status == parley.MemberPending {
		return "Join request sent"
	}
	return "Joined the community"
}
