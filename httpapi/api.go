// Package httpapi is Parley's REST transport: it authenticates the caller,
// decodes the request, calls one service method and writes the envelope of
// API.md §1. It holds no rules of its own.
package httpapi

import (
	"context"
	"net/http"
	"net/netip"
	"path"
	"reflect"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/jobs"
	"github.com/parley-chat/parley/service"
)

// Config holds the REST transport's settings.
type Config struct {
	// AuthRatePerMinute bounds register, login and password-reset requests
	// per client address and route; 0 disables the limit.
	AuthRatePerMinute int
	// SharedLimits, when set, holds the rate-limit buckets that every node
	// shares; nil keeps them in this node's memory (one node).
	SharedLimits parley.RateStore
	// TrustedProxies are the load balancers whose X-Forwarded-For header
	// names the client for rate limits; requests from any other peer are
	// limited by the peer's own address.
	TrustedProxies []netip.Prefix
	// RequestTimeout bounds the work of one request, and so every store
	// call it makes: a database that does not answer in time makes the
	// request fail with 503 unavailable. Default 5s.
	RequestTimeout time.Duration
	// MediaRedirect makes downloads answer 302 to a short-lived URL of
	// the storage (S3 presigned) instead of streaming through the node.
	MediaRedirect bool
}

// API serves the REST routes of API.md over a service.
type API struct {
	shared  parley.RateStore // Config.SharedLimits
	svc     *service.Service
	routes  []route
	timeout time.Duration // Config.RequestTimeout
}

// route is one REST endpoint. In and Out are zero values of the request
// body and response data types; the OpenAPI description is built from them.
type route struct {
	Method, Path string
	Summary      string
	Public       bool // no token needed
	Status       int  // success status; 200 when 0
	In, Out      any
	Query        []param
	handle       func(ctx context.Context, c *call) (any, error)
	limit        *limiter
	// raw, set instead of handle, makes a raw route (raw.go): it reads
	// the body and writes the answer itself. RawIn and RawOut describe
	// them in the OpenAPI description.
	raw           func(ctx context.Context, c *call) error
	RawIn, RawOut *rawDoc
	// shared, when set, is the pattern the route is mounted under instead
	// of Path, together with the other routes of that pattern; the last
	// segment of Path, matched against the pattern's {part}, picks the
	// route. It lets GET /api/communities/{communityId}/channels live
	// beside GET /api/communities/user/{userId}, which ServeMux would
	// otherwise refuse as ambiguous.
	shared string
	// selfAuth routes are not public but authenticate in their handler.
	selfAuth bool
	// unhealthy routes may answer 503 with their data beside the error
	// (their handler returns an unhealthy value).
	unhealthy bool
}

type param struct{ Name, Desc string }

// call is one request as handlers see it.
type call struct {
	w       http.ResponseWriter
	r       *http.Request
	caller  *parley.Identity
	timeout time.Duration // Config.RequestTimeout
}

// bounded returns ctx with the request timeout, for the service calls of a
// raw route (whose own context has no deadline).
func (c *call) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// body decodes the request body into v.
func (c *call) body(v any) error { return decode(c.w, c.r, v) }

// bodyFlat is body for v whose flat fields (FlatFieldsOf) the route
// computed once.
func (c *call) bodyFlat(v any, flat FlatFields) error { return decodeWith(c.w, c.r, v, flat) }

// New returns the REST API over svc.
func New(svc *service.Service, cfg Config) *API {
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	a := &API{svc: svc, timeout: cfg.RequestTimeout, shared: cfg.SharedLimits}
	a.routes = append(append(append(a.table(cfg), a.messageRoutes()...), a.groupRoutes()...), a.mediaRoutes(cfg)...)
	a.routes = append(a.routes, a.communityRoutes()...)
	a.routes = append(a.routes, a.callRoutes()...)
	a.routes = append(a.routes, a.notificationRoutes()...)
	a.routes = append(a.routes, a.statusRoutes()...)
	a.routes = append(a.routes, a.analyticsRoutes()...)
	a.routes = append(a.routes, a.ticketRoutes()...)
	return a
}

// JobPruneLimits is the leased background job that forgets shared
// rate-limit buckets idle for two minutes (a bucket refills in at most one).
const JobPruneLimits = "prune-rate-limits"

// AddJobs registers the API's background jobs with r: with shared rate
// limits, pruning their idle buckets once a minute on one node.
func (a *API) AddJobs(r *jobs.Runner) {
	if a.shared == nil {
		return
	}
	r.Add(jobs.Job{Name: JobPruneLimits, Every: time.Minute, Leased: true, Run: func(ctx context.Context) error {
		return a.shared.PruneTokens(ctx, time.Now().Add(-2*time.Minute))
	}})
}

// Mount registers every route on mux, plus /api/openapi.json and
// /api/asyncapi.json.
func (a *API) Mount(mux *http.ServeMux) {
	shared := map[string]map[string]http.HandlerFunc{}
	for i := range a.routes {
		rt := &a.routes[i]
		h := a.serve(rt)
		if rt.limit != nil {
			h = rt.limit.limit(h)
		}
		if rt.shared == "" {
			mux.HandleFunc(rt.Method+" "+rt.Path, h)
			continue
		}
		pattern := rt.Method + " " + rt.shared
		if shared[pattern] == nil {
			shared[pattern] = map[string]http.HandlerFunc{}
		}
		shared[pattern][path.Base(rt.Path)] = h
	}
	for pattern, parts := range shared {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if h := parts[r.PathValue("part")]; h != nil {
				h(w, r)
				return
			}
			writeError(w, r, notFoundError(r))
		})
	}
	spec := a.openAPI()
	events := asyncAPI()
	for path, doc := range map[string][]byte{"/api/openapi.json": spec, "/api/asyncapi.json": events} {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(doc)
		})
	}
}

func (a *API) serve(rt *route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var rec *wroteRecorder
		if rt.raw != nil {
			rec = &wroteRecorder{ResponseWriter: w}
			w = rec
		}
		c := &call{w: w, r: r, timeout: a.timeout}
		ctx, cancel := context.WithTimeout(r.Context(), a.timeout)
		defer cancel()
		if err := checkParams(r); err != nil {
			writeError(w, r, err)
			return
		}
		if !rt.Public && !rt.selfAuth {
			id, err := a.svc.Authenticate(ctx, bearerToken(r))
			if err != nil {
				writeError(w, r, err)
				return
			}
			c.caller = id
			noteUser(r, id.UserID)
			if err := checkClaimedSelf(r, id); err != nil {
				writeError(w, r, err)
				return
			}
		}
		if rt.raw != nil {
			serveRaw(r.Context(), rt, c, rec) // no deadline for the transfer; see raw.go
			return
		}
		data, err := rt.handle(ctx, c)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if u, ok := data.(unhealthy); ok {
			writeUnhealthy(w, u)
			return
		}
		msg := ""
		if m, ok := data.(messageOnly); ok {
			data, msg = nil, string(m)
		}
		if wm, ok := data.(withMessage); ok {
			data, msg = wm.data, wm.msg
		}
		status := rt.Status
		if status == 0 {
			status = http.StatusOK
		}
		writeJSON(w, status, data, msg)
	}
}

// withBody adapts a service call that takes the decoded JSON body.
func withBody[In, Out any](fn func(context.Context, *parley.Identity, In) (Out, error)) func(context.Context, *call) (any, error) {
	flat := FlatFieldsOf(reflect.TypeFor[In]())
	return func(ctx context.Context, c *call) (any, error) {
		var in In
		if err := c.bodyFlat(&in, flat); err != nil {
			return nil, err
		}
		return fn(ctx, c.caller, in)
	}
}

// withBodyMessage is withBody with the seed's top-level message string
// beside the data, made from the result.
func withBodyMessage[In, Out any](fn func(context.Context, *parley.Identity, In) (Out, error), msg func(Out) string) func(context.Context, *call) (any, error) {
	flat := FlatFieldsOf(reflect.TypeFor[In]())
	return func(ctx context.Context, c *call) (any, error) {
		var in In
		if err := c.bodyFlat(&in, flat); err != nil {
			return nil, err
		}
		out, err := fn(ctx, c.caller, in)
		if err != nil {
			return nil, err
		}
		return withMessage{out, msg(out)}, nil
	}
}

// text is a msg function for withBodyMessage that ignores the result.
func text[Out any](s string) func(Out) string { return func(Out) string { return s } }

// messageOnly is a handler result that is just a message, as in
// {"success": true, "message": "..."}.
type messageOnly string

// withMessage is data plus a human-readable message.
type withMessage struct {
	data any
	msg  string
}

// NotFound answers unknown routes with the envelope: 405 when the path
// exists with another method, 404 otherwise.
func NotFound(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// Ask the mux what it would answer, without letting it write.
		probe := &statusProbe{header: http.Header{}}
		h, _ := mux.Handler(r)
		h.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", probe.header.Get("Allow"))
			writeError(w, r, methodError(r))
			return
		}
		writeError(w, r, notFoundError(r))
	})
}

type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = 200
	}
	return len(b), nil
}
func (p *statusProbe) WriteHeader(s int) {
	if p.status == 0 {
		p.status = s
	}
}

// selfParams are the query parameters through which the original API named
// the acting user. API.md §1 keeps them optional, but when present they
// must be the caller.
var selfParams = []string{"userId", "viewerId", "senderId"}

// checkClaimedSelf answers 403 forbidden when a query string names someone
// other than the caller in one of selfParams, on every authenticated route.
func checkClaimedSelf(r *http.Request, caller *parley.Identity) error {
	q := r.URL.Query()
	for _, name := range selfParams {
		for _, v := range q[name] {
			if v != "" && v != caller.UserID {
				return parley.Errorf(parley.EFORBIDDEN, "%s must be your own user id", name)
			}
		}
	}
	return nil
}
