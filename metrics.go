package parley

import "time"

// Metrics receives the measurements an operator graphs (GET /metrics on
// --metrics-addr). The packages that measure call it; package metrics
// implements it with Prometheus, so they need not import Prometheus.
//
// Every argument that becomes a label comes from a small fixed set (route
// patterns, transports, conversation kinds, close reasons): never a user
// id, message id or content. Implementations must be safe for concurrent
// use and must not block.
type Metrics interface {
	// HTTPRequest records a finished request: its route pattern
	// ("GET /api/users/{userId}"; "" when no route matched), status and
	// duration.
	HTTPRequest(route string, status int, d time.Duration)
	// SocketOpened and SocketClosed count the sockets of a transport
	// ("socketio" or "ws"); reason says why one closed (see CloseReasons).
	SocketOpened(transport string)
	SocketClosed(transport, reason string)
	// QueueOverflow counts a socket disconnected because its outgoing queue
	// (or the node's queued-bytes budget) was full.
	QueueOverflow(transport string)
	// Delivered counts events queued to sockets by fan-out.
	Delivered(n int)
	// MessagesSent counts committed new messages of a conversation kind.
	MessagesSent(kind string, n int)
	// CommitBatch records one send transaction: how many sends it took and
	// how long it ran.
	CommitBatch(size int, d time.Duration)
	// BusGap counts the times events from other nodes may have been lost.
	BusGap()
	// SchedulerLag records how late a scheduled message went out.
	SchedulerLag(d time.Duration)
	// SecurityEvent counts a security event by its stable name (see
	// SecurityEvents).
	SecurityEvent(event string)
}

// Socket close reasons, the values of SocketClosed's reason.
var CloseReasons = []string{"client", "transport_close", "transport_error", "ping_timeout", "parse_error",
	"queue_full", "revoked", "expired", "bus_gap", "shutdown", "other"}

// Security events: the stable "event" field of their warn log lines and
// the label of SecurityEvent.
const (
	SecLoginFailed   = "login_failed"       // wrong password or unknown user
	SecRateLimited   = "rate_limited"       // a 429 answered
	SecOriginRefused = "origin_refused"     // a socket from an origin not allowed
	SecSocketRevoked = "socket_revoked"     // a socket closed because its token was revoked
	SecSocketAuth    = "socket_auth_failed" // a socket handshake without a valid token
)

// SecurityEvents lists every security event name.
var SecurityEvents = []string{SecLoginFailed, SecRateLimited, SecOriginRefused, SecSocketRevoked, SecSocketAuth}

// NopMetrics discards every measurement; its methods implement Metrics.
type NopMetrics struct{}

func (NopMetrics) HTTPRequest(string, int, time.Duration) {}
func (NopMetrics) SocketOpened(string)                    {}
func (NopMetrics) SocketClosed(string, string)            {}
func (NopMetrics) QueueOverflow(string)                   {}
func (NopMetrics) Delivered(int)                          {}
func (NopMetrics) MessagesSent(string, int)               {}
func (NopMetrics) CommitBatch(int, time.Duration)         {}
func (NopMetrics) BusGap()                                {}
func (NopMetrics) SchedulerLag(time.Duration)             {}
func (NopMetrics) SecurityEvent(string)                   {}
