package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/parley-chat/parley/service"
)

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
			mount: "/api/statuses/{first}/{second}",
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
			mount:   "/api/statuses/{first}/{second}",
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.StatusViewers(ctx, c.caller, c.r.PathValue("statusId"))
			}},
		{Method: "POST", Path: "/api/statuses/delete", In: service.DeleteStatusInput{}, Out: service.DeleteStatusResult{},
			Summary: "Delete one of the caller's statuses with its views, and its file at once.",
			handle:  withBodyMessage(s.DeleteStatus, text[*service.DeleteStatusResult]("Status deleted successfully"))},
	}
}

// dispatch serves several routes mounted under one mux pattern: each
// request goes to the route whose path matches it segment by segment
// (with that route's path values set); when several match, the one whose
// leftmost literal segment comes first, as for
// /api/statuses/user/viewers; none answers 404.
// GET /api/statuses/user/{userId} and GET /api/statuses/{statusId}/viewers
// need it: both match /api/statuses/user/viewers, so Go's mux refuses to
// hold them side by side.
func (a *API) dispatch(routes []*route) http.HandlerFunc {
	routes = slices.Clone(routes)
	slices.SortStableFunc(routes, func(a, b *route) int { return leftmostLiteral(a.Path, b.Path) })
	handlers := make([]http.HandlerFunc, len(routes))
	for i, rt := range routes {
		handlers[i] = a.handler(rt)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		got := strings.Split(r.URL.EscapedPath(), "/")
		for i, rt := range routes {
			want := strings.Split(rt.Path, "/")
			if len(want) != len(got) {
				continue
			}
			values := map[string]string{}
			ok := true
			for j, seg := range want {
				v, err := url.PathUnescape(got[j])
				if err != nil {
					ok = false
					break
				}
				if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
					values[seg[1:len(seg)-1]] = v
				} else if seg != v {
					ok = false
					break
				}
			}
			if !ok {
				continue
			}
			for k, v := range values {
				r.SetPathValue(k, v)
			}
			handlers[i](w, r)
			return
		}
		writeError(w, r, notFoundError(r))
	}
}

// leftmostLiteral orders two paths by the first segment where one is
// literal and the other a parameter: the literal one first.
func leftmostLiteral(a, b string) int {
	sa, sb := strings.Split(a, "/"), strings.Split(b, "/")
	for k := 0; k < len(sa) && k < len(sb); k++ {
		pa, pb := strings.HasPrefix(sa[k], "{"), strings.HasPrefix(sb[k], "{")
		switch {
		case pa && !pb:
			return 1
		case !pa && pb:
			return -1
		}
	}
	return 0
}
