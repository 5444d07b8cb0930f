package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/service"
)

// analyticsRoutes are the routes of API.md §11: a user's analytics (self
// or admin), and for admins the message statistics and the system health.
func (a *API) analyticsRoutes() []route {
	s := a.svc
	return []route{
		{Method: "GET", Path: "/api/analytics/user/{userId}", Out: service.UserAnalytics{},
			Summary: "A user's message counts (sent, received, active chats, last sent), from daily counters. Self or an admin; anyone else 403.",
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.UserAnalytics(ctx, c.caller, c.r.PathValue("userId"))
			}},
		{Method: "GET", Path: "/api/analytics/active-chats/{userId}", Out: []service.ActiveChat{},
			Query: []param{{"limit", "page size, 1-200 (default 50)"}},
			Summary: "A user's conversations that have messages, most recent first: userId for a direct chat, groupId or channelId otherwise. " +
				"Self or an admin; anyone else 403.",
			handle: func(ctx context.Context, c *call) (any, error) {
				limit, err := queryInt(c.r, "limit", service.DefaultPageSize, 1, service.MaxPageSize)
				if err != nil {
					return nil, err
				}
				return s.ActiveChats(ctx, c.caller, c.r.PathValue("userId"), limit)
			}},
		{Method: "GET", Path: "/api/analytics/message-count/{userId}", Out: service.MessageCount{},
			Query:   []param{{"period", "day (today, UTC), week (last 7 days), month (last 30) or year (last 365); default day"}},
			Summary: "How many messages a user sent and received in a period of whole UTC days ending today. Self or an admin; anyone else 403.",
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.MessageCount(ctx, c.caller, c.r.PathValue("userId"), c.r.URL.Query().Get("period"))
			}},
		{Method: "GET", Path: "/api/stats/messages", Out: service.MessageStats{},
			Query: []param{{"start_date", "first day, YYYY-MM-DD (UTC); default 29 days before end_date"},
				{"end_date", "last day, YYYY-MM-DD (UTC); default today. At most 366 days in all"}},
			Summary: "Admins: messages sent and active users (who sent at least one) over the range and per day, every day of it listed.",
			handle: func(ctx context.Context, c *call) (any, error) {
				q := c.r.URL.Query()
				return s.MessageStats(ctx, c.caller, q.Get("start_date"), q.Get("end_date"))
			}},
		{Method: "GET", Path: "/api/system/health", Out: service.SystemHealth{}, unhealthy: true,
			Summary: "Admins: this node's CPU, memory, goroutines, sockets, uptime, database and bus, and every node's (nodes report " +
				"through the bus every 5 s). 503 with the same data when this node cannot reach the database; then a token that " +
				"read this route on this node in the last 10 minutes is still served, any other gets 503 unavailable.",
			selfAuth: true,
			handle:   a.systemHealth},
	}
}

// systemHealth authenticates by itself: while the database is unreachable
// a token cannot be checked, and the service may still serve an admin it
// checked lately (service.SystemHealthCached).
func (a *API) systemHealth(ctx context.Context, c *call) (any, error) {
	token := bearerToken(c.r)
	id, err := a.svc.Authenticate(ctx, token)
	if parley.ErrorCode(err) == parley.EUNAVAILABLE {
		h, err := a.svc.SystemHealthCached(ctx, token)
		if err != nil {
			return nil, err
		}
		return unhealthy{data: h, msg: "database is unreachable"}, nil
	} else if err != nil {
		return nil, err
	}
	c.caller = id
	noteUser(c.r, id.UserID)
	h, ok, err := a.svc.SystemHealth(ctx, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return unhealthy{data: h, msg: "database is unreachable"}, nil
	}
	return h, nil
}

// unhealthy is data answered with 503: the error envelope with the data
// beside it (routes with route.unhealthy).
type unhealthy struct {
	data any
	msg  string
}

// writeUnhealthy writes 503 {"success": false, "data": ..., "error":
// {"code": "unavailable", "message": msg}}.
func writeUnhealthy(w http.ResponseWriter, u unhealthy) {
	body, err := json.Marshal(parley.Reply{Data: u.data, Error: &parley.ReplyError{Code: parley.EUNAVAILABLE, Message: u.msg}})
	if err != nil {
		body = []byte(`{"success":false,"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write(body)
}
