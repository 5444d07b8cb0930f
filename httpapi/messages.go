package httpapi

import (
	"context"
	"net/http"
	"strconv"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/service"
)

type messageIDInput struct {
	MessageID string `json:"messageId"`
}

// historyQuery reads limit, before and beforeSeq.
func historyQuery(r *http.Request) (service.HistoryQuery, error) {
	var q service.HistoryQuery
	var err error
	if q.Limit, err = queryInt(r, "limit", service.DefaultPageSize, 1, service.MaxPageSize); err != nil {
		return q, err
	}
	if b := r.URL.Query().Get("before"); b != "" {
		t, ok := parley.ParseTime(b)
		if !ok {
			return q, parley.Errorf(parley.EINVALID, "before must be epoch milliseconds or an ISO 8601 time")
		}
		q.Before = t
	}
	if b := r.URL.Query().Get("beforeSeq"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 1 {
			return q, parley.Errorf(parley.EINVALID, "beforeSeq must be a positive integer")
		}
		q.BeforeSeq = n
	}
	return q, nil
}

var historyParams = []param{{"limit", "page size, 1-200 (default 50)"}, {"before", "only messages sent before this time (epoch ms or ISO 8601)"},
	{"beforeSeq", "only messages with a smaller seq"}}

// messageRoutes are the direct-messaging routes of API.md §3 and §4.
func (a *API) messageRoutes() []route {
	s := a.svc
	return []route{
		{Method: "POST", Path: "/api/messages/send", Status: http.StatusCreated, In: service.SendInput{}, Out: service.SendResult{},
			Summary: "Send a direct message; answered after it is committed. A repeated clientMessageId returns the first message.",
			handle:  withBody(s.SendMessage)},
		{Method: "POST", Path: "/api/messages/reply", Status: http.StatusCreated, In: service.SendInput{}, Out: service.SendResult{},
			Summary: "Send a reply; replyToId must be a message of the same conversation.", handle: withBody(s.Reply)},
		{Method: "GET", Path: "/api/messages/scheduled", Summary: "The caller's pending scheduled messages.", Out: []service.ScheduledView{},
			handle: func(ctx context.Context, c *call) (any, error) { return s.ScheduledMessages(ctx, c.caller) }},
		{Method: "GET", Path: "/api/messages/{userId}/{recipientId}", Summary: "Direct messages between the caller (userId) and recipientId, newest first.",
			Query: historyParams, Out: []service.MessageView{},
			handle: func(ctx context.Context, c *call) (any, error) {
				q, err := historyQuery(c.r)
				if err != nil {
					return nil, err
				}
				return s.DirectHistory(ctx, c.caller, c.r.PathValue("userId"), c.r.PathValue("recipientId"), q)
			}},
		{Method: "POST", Path: "/api/messages/typing", Summary: "Send a typing indicator (not stored, rate-limited).", In: service.TypingInput{},
			handle: func(ctx context.Context, c *call) (any, error) {
				var in service.TypingInput
				if err := c.body(&in); err != nil {
					return nil, err
				}
				return messageOnly("Typing indicator sent"), s.Typing(ctx, c.caller, in)
			}},
		{Method: "POST", Path: "/api/messages/react", Summary: "Set (or with an empty reaction remove) the caller's reaction.",
			In: service.ReactInput{}, Out: service.ReactResult{},
			handle: withBody(s.React)},
		{Method: "POST", Path: "/api/messages/delete", Summary: "Delete for everyone (sender, 48 h) or for the caller only.",
			In: service.DeleteInput{}, Out: service.DeleteResult{},
			handle: withBodyMessage(s.DeleteMessage, text[*service.DeleteResult]("Message deleted successfully"))},
		{Method: "POST", Path: "/api/messages/edit", Summary: "Edit a message (sender, 15 minutes).", In: service.EditInput{}, Out: service.EditResult{},
			handle: withBody(s.EditMessage)},
		{Method: "POST", Path: "/api/messages/schedule", Status: http.StatusCreated, In: service.ScheduleInput{}, Out: service.ScheduleResult{},
			Summary: "Schedule a direct message for scheduledAt (future, at most a year ahead); sent exactly once.",
			handle:  withBody(s.Schedule)},
		{Method: "POST", Path: "/api/messages/scheduled/cancel", Summary: "Cancel a pending scheduled message.", In: messageIDInput{},
			handle: func(ctx context.Context, c *call) (any, error) {
				var in messageIDInput
				if err := c.body(&in); err != nil {
					return nil, err
				}
				return messageOnly("Scheduled message cancelled"), s.CancelScheduled(ctx, c.caller, in.MessageID)
			}},
		{Method: "POST", Path: "/api/status", Summary: "Mark a received message (and every earlier one from its sender) delivered or seen.",
			In: service.StatusInput{}, Out: service.StatusResult{},
			handle: withBody(s.MarkStatus)},
		{Method: "GET", Path: "/api/status/{messageId}", Summary: "A direct message's receipt state.", Out: service.MessageStatus{},
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.StatusOf(ctx, c.caller, c.r.PathValue("messageId"))
			}},
		{Method: "GET", Path: "/api/sync", Summary: "Everything addressed to the caller since cursor, oldest first; without a cursor, from the oldest undelivered message.",
			Query: []param{{"cursor", "nextCursor of the previous page"}, {"limit", "page size, 1-200 (default 50)"}}, Out: service.SyncResult{},
			handle: func(ctx context.Context, c *call) (any, error) {
				limit, err := queryInt(c.r, "limit", service.DefaultPageSize, 1, service.MaxPageSize)
				if err != nil {
					return nil, err
				}
				return s.Sync(ctx, c.caller, c.r.URL.Query().Get("cursor"), limit)
			}},
		{Method: "POST", Path: "/api/chats/mute", In: service.ChatMuteInput{}, Out: service.ChatMuteResult{},
			Summary: "Mute a group or channel for duration seconds, or until unmuted: its /api/chats row says muted and pushes stop. A direct chat is muted by muting the user (POST /api/users/mute).",
			handle: withBody(func(ctx context.Context, c *parley.Identity, in service.ChatMuteInput) (*service.ChatMuteResult, error) {
				return s.MuteChat(ctx, c, in, true)
			})},
		{Method: "POST", Path: "/api/chats/unmute", In: service.ChatMuteInput{}, Out: service.ChatMuteResult{},
			Summary: "Lift the caller's mute of a group or channel.",
			handle: withBody(func(ctx context.Context, c *parley.Identity, in service.ChatMuteInput) (*service.ChatMuteResult, error) {
				return s.MuteChat(ctx, c, in, false)
			})},
		{Method: "GET", Path: "/api/chats", Summary: "The caller's conversations, most recent activity first.",
			Query: []param{{"limit", "page size, 1-200 (default 50)"}}, Out: []service.ChatView{},
			handle: func(ctx context.Context, c *call) (any, error) {
				limit, err := queryInt(c.r, "limit", service.DefaultPageSize, 1, service.MaxPageSize)
				if err != nil {
					return nil, err
				}
				return s.Chats(ctx, c.caller, limit)
			}},
	}
}
