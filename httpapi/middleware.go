package httpapi

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/parley-chat/parley"
)

type ctxKey int

const (
	loggerKey ctxKey = iota
	infoKey
)

// requestInfo is what the handler learns about a request that the
// request's log line shows (the authenticated user), and where the
// request's measurements go.
type requestInfo struct {
	user    atomic.Pointer[string]
	metrics parley.Metrics
}

// securityEvent logs a security event of r at warn with its stable event
// name (parley.Sec*) and the client's address, and counts it.
func securityEvent(r *http.Request, event, msg string) {
	loggerFrom(r).Warn(msg, "event", event, "remote", clientAddr(r), "path", r.URL.Path)
	if info, ok := r.Context().Value(infoKey).(*requestInfo); ok {
		info.metrics.SecurityEvent(event)
	}
}

// noteUser records the authenticated caller of r for its log line.
func noteUser(r *http.Request, userID string) {
	if info, ok := r.Context().Value(infoKey).(*requestInfo); ok {
		info.user.Store(&userID)
	}
}

func loggerFrom(r *http.Request) *slog.Logger {
	if l, ok := r.Context().Value(loggerKey).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// statusRecorder remembers the status for the request log and stamps
// the response with how long the server took to produce it.
type statusRecorder struct {
	http.ResponseWriter
	start  time.Time
	status int
	bytes  int
}

// WriteHeader adds "Server-Timing: app;dur=<ms>": the time from the
// request's arrival at the middleware to its header, which covers
// authentication, the database and encoding the body (handlers encode
// before writing), but not sending it. Load generators read it to tell
// server time from client and network time.
func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
		if code != http.StatusSwitchingProtocols {
			dur := float64(time.Since(s.start).Microseconds()) / 1000
			s.Header().Set("Server-Timing", "app;dur="+strconv.FormatFloat(dur, 'f', 3, 64))
		}
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.WriteHeader(http.StatusOK)
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

// Flush lets long-polling and streaming handlers flush through the recorder.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack lets WebSocket upgrades through the recorder.
func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := s.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijack not supported")
	}
	if s.status == 0 {
		s.status = http.StatusSwitchingProtocols
	}
	return h.Hijack()
}

// Unwrap lets http.ResponseController reach the real writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 64 && !strings.ContainsAny(id, "\r\n\"\\ ") {
		return id
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Middleware wraps next with what every request gets: a request id (the
// X-Request-Id header), a structured access log (method, path, status,
// duration, and the authenticated user's id; never the query string, which can hold a token, nor bodies),
// and recovery from panics as a 500 in the envelope.
func Middleware(logger *slog.Logger, next http.Handler) http.Handler {
	return MeasuredMiddleware(logger, parley.NopMetrics{}, next)
}

// MeasuredMiddleware is Middleware that also reports every request to m
// (by the route pattern that served it, never the path, so no label holds
// an id) and counts the security events requests meet: 429s and failed
// logins, each also logged at warn with a stable "event" field.
func MeasuredMiddleware(logger *slog.Logger, m parley.Metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestID(r)
		w.Header().Set("X-Request-Id", id)
		l := logger.With("request_id", id)
		info := &requestInfo{metrics: m}
		r = r.WithContext(context.WithValue(context.WithValue(r.Context(), loggerKey, l), infoKey, info))
		rec := &statusRecorder{ResponseWriter: w, start: start}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				l.Error("panic", "panic", v, "stack", string(debug.Stack()))
				if rec.status == 0 {
					writeError(rec, r, errors.New("panic"))
				}
			}
			attrs := []any{"method", r.Method, "path", r.URL.Path, "status", rec.status,
				"bytes", rec.bytes, "duration_ms", float64(time.Since(start).Microseconds()) / 1000, "remote", clientAddr(r)}
			if u := info.user.Load(); u != nil {
				attrs = append(attrs, "user", *u)
			}
			l.Info("request", attrs...)
			// r.Pattern is the route that matched: the mux set it on this
			// request value (empty when none did).
			m.HTTPRequest(r.Pattern, rec.status, time.Since(start))
			if rec.status == http.StatusTooManyRequests {
				securityEvent(r, parley.SecRateLimited, "rate limited")
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// clientAddr is the caller's IP address, used for rate limits and logs.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// bearerToken extracts the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}
