package httpapi

import (
	"context"

	"github.com/parley-chat/parley/service"
)

// ticketRoutes hand out the single-use tickets that open GET /ws without a
// bearer token in the URL (what browsers use: they cannot set headers on a
// WebSocket).
func (a *API) ticketRoutes() []route {
	s := a.svc
	return []route{
		{Method: "POST", Path: "/api/auth/ws-ticket",
			Summary: "A single-use ticket, valid 30 seconds, that opens GET /ws?ticket= as this session. 30 a minute per user and node, in bursts of 20; then 429 rate_limited.",
			Out:     service.SocketTicket{},
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.IssueSocketTicket(ctx, c.caller)
			}},
	}
}
