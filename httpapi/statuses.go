package httpapi

import (
	"context"
	"net/http"

	"github.com/parley-chat/parley/service"
)

// statusPart mounts the routes under a status id (see route.shared), so
// that GET /api/statuses/{statusId}/viewers lives beside
// GET /api/statuses/user/{userId}; /api/statuses/user/viewers is the latter.
const statusPart = "/api/statuses/{statusId}/{part}"

// statusRoutes are the status routes of API.md §7.
func (a *API) statusRoutes() []route {
	s := a.svc
	return []route{
		{Method: "POST", Path: "/api/statuses/create", Status: http.StatusCreated, In: service.CreateStatusInput{}, Out: service.CreateStatusResult{},
			Summary: "Post a status for 1 to 24 hours (expiresAt, default 24) to your contacts: all of them, the specificUsers " +
				"among them, or all except excludedUsers (each list at most 1024), minus anyone blocked either way. Only contacts " +
				"with a key in encryptedKeys are sent it (for specific, a listed contact without one is a 400 naming them); " +
				"status_created goes to each, live and through /api/sync.",
			handle: withBody(s.CreateStatus)},
		{Method: "GET", Path: "/api/statuses/feed", Out: []service.StatusFeedEntry{},
			Summary: "The statuses of other users that the caller may see, grouped by user (most recent first), with hasUnviewed.",
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.StatusFeed(ctx, c.caller)
			}},
		{Method: "GET", Path: "/api/statuses/user/{userId}", Out: []service.StatusView{},
			Summary: "A user's unexpired statuses that the caller may see, newest first, each with only the caller's own key " +
				"(the owner gets every key and view counts); an empty list when the caller may see none.",
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.UserStatuses(ctx, c.caller, c.r.PathValue("userId"))
			}},
		{Method: "GET", Path: "/api/statuses/{statusId}", Out: service.StatusView{},
			Summary: "One status. A viewer's first read records one view and sends status_viewed to the owner; the owner's " +
				"reads record nothing. 404 when expired or not for the caller.",
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.Status(ctx, c.caller, c.r.PathValue("statusId"))
			}},
		{Method: "GET", Path: "/api/statuses/{statusId}/viewers", Out: service.StatusViewersResult{},
			Summary: "Who viewed one of the caller's statuses, in the order they did (owner only: 403 for another viewer, 404 for anyone else).",
			shared:  statusPart,
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.StatusViewers(ctx, c.caller, c.r.PathValue("statusId"))
			}},
		{Method: "POST", Path: "/api/statuses/delete", In: service.DeleteStatusInput{}, Out: service.DeleteStatusResult{},
			Summary: "Delete one of the caller's statuses with its views, and its file at once.",
			handle:  withBodyMessage(s.DeleteStatus, text[*service.DeleteStatusResult]("Status deleted successfully"))},
	}
}
