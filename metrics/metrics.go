// Package metrics implements parley.Metrics with Prometheus
// (github.com/prometheus/client_golang) on a registry the caller passes in:
// nothing is registered globally, so several nodes in one process (tests)
// each have their own.
//
// Every label value is checked against its fixed set (conversation kinds,
// transports, close reasons, security events) or is a route pattern of the
// server's route table, so no label ever carries a user id, a message id or
// content, and the number of series stays bounded.
package metrics

import (
	"database/sql"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parley-chat/parley"
)

// Transports are the socket transports, the values of the transport label.
var Transports = []string{"socketio", "ws"}

// kinds are the conversation kinds, the values of the kind label.
var kinds = []string{parley.KindDirect, parley.KindGroup, parley.KindChannel}

// Prometheus is a parley.Metrics that feeds Prometheus collectors.
type Prometheus struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	sockets      *prometheus.GaugeVec
	disconnects  *prometheus.CounterVec
	overflows    *prometheus.CounterVec
	deliveries   prometheus.Counter
	sent         *prometheus.CounterVec
	batchSize    prometheus.Histogram
	batchLatency prometheus.Histogram
	busGaps      prometheus.Counter
	schedLag     prometheus.Histogram
	security     *prometheus.CounterVec
}

var _ parley.Metrics = (*Prometheus)(nil)

// New creates Parley's collectors and registers them, with the Go runtime
// and process collectors, on reg. It panics if reg already holds them (a
// programming error: one registry per node).
func New(reg prometheus.Registerer) *Prometheus {
	p := &Prometheus{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_http_requests_total",
			Help: "HTTP requests answered, by route pattern and status class (2xx, 4xx, ...)."}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "parley_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern (long-polling and upgrades included).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"route"}),
		sockets: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "parley_sockets",
			Help: "Authenticated sockets held by this node, by transport."}, []string{"transport"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_socket_disconnects_total",
			Help: "Sockets closed, by transport and reason."}, []string{"transport", "reason"}),
		overflows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_socket_queue_overflows_total",
			Help: "Sockets disconnected because their outgoing queue or the node's queued-bytes budget was full."}, []string{"transport"}),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_fanout_deliveries_total",
			Help: "Events queued to sockets by fan-out (one per socket reached)."}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_messages_sent_total",
			Help: "New messages committed, by conversation kind."}, []string{"kind"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "parley_commit_batch_size",
			Help: "Sends committed per send transaction (group commit).", Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}}),
		batchLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "parley_commit_duration_seconds",
			Help:    "Duration of one send transaction.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5}}),
		busGaps: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_bus_gaps_total",
			Help: "Times events from other nodes may have been lost (the node then closes its sockets so clients resync)."}),
		schedLag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "parley_scheduler_lag_seconds",
			Help:    "How late scheduled messages went out after their time.",
			Buckets: []float64{.1, .25, .5, 1, 2, 5, 10, 30, 60, 300}}),
		security: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_security_events_total",
			Help: "Security events (failed logins, 429s, refused origins, revoked sockets, socket auth failures), by event."}, []string{"event"}),
	}
	reg.MustRegister(p.requests, p.duration, p.sockets, p.disconnects, p.overflows, p.deliveries, p.sent, p.batchSize,
		p.batchLatency, p.busGaps, p.schedLag, p.security,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Every series of a fixed label set exists from the start, at zero,
	// so dashboards and rate() see it before its first event.
	for _, t := range Transports {
		p.sockets.WithLabelValues(t)
		p.overflows.WithLabelValues(t)
		for _, r := range parley.CloseReasons {
			p.disconnects.WithLabelValues(t, r)
		}
	}
	for _, k := range kinds {
		p.sent.WithLabelValues(k)
	}
	for _, e := range parley.SecurityEvents {
		p.security.WithLabelValues(e)
	}
	return p
}

// RegisterDB adds the connection-pool statistics of a database/sql pool
// (go_sql_* metrics, labelled db_name=name) to reg.
func RegisterDB(reg prometheus.Registerer, name string, db *sql.DB) {
	reg.MustRegister(collectors.NewDBStatsCollector(db, name))
}

// Handler serves the metrics of reg in the Prometheus text format.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// oneOf returns v when it is in set, else "other".
func oneOf(v string, set []string) string {
	if slices.Contains(set, v) {
		return v
	}
	return "other"
}

// statusClass turns 404 into "4xx".
func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status/100) + "xx"
}

// HTTPRequest implements parley.Metrics. A request no route matched is
// counted under route "unmatched".
func (p *Prometheus) HTTPRequest(route string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	p.requests.WithLabelValues(route, statusClass(status)).Inc()
	p.duration.WithLabelValues(route).Observe(d.Seconds())
}

// SocketOpened implements parley.Metrics.
func (p *Prometheus) SocketOpened(transport string) {
	p.sockets.WithLabelValues(oneOf(transport, Transports)).Inc()
}

// SocketClosed implements parley.Metrics.
func (p *Prometheus) SocketClosed(transport, reason string) {
	t := oneOf(transport, Transports)
	p.sockets.WithLabelValues(t).Dec()
	p.disconnects.WithLabelValues(t, oneOf(reason, parley.CloseReasons)).Inc()
}

// QueueOverflow implements parley.Metrics.
func (p *Prometheus) QueueOverflow(transport string) {
	p.overflows.WithLabelValues(oneOf(transport, Transports)).Inc()
}

// Delivered implements parley.Metrics.
func (p *Prometheus) Delivered(n int) { p.deliveries.Add(float64(n)) }

// MessagesSent implements parley.Metrics.
func (p *Prometheus) MessagesSent(kind string, n int) {
	p.sent.WithLabelValues(oneOf(kind, kinds)).Add(float64(n))
}

// CommitBatch implements parley.Metrics.
func (p *Prometheus) CommitBatch(size int, d time.Duration) {
	p.batchSize.Observe(float64(size))
	p.batchLatency.Observe(d.Seconds())
}

// BusGap implements parley.Metrics.
func (p *Prometheus) BusGap() { p.busGaps.Inc() }

// SchedulerLag implements parley.Metrics.
func (p *Prometheus) SchedulerLag(d time.Duration) { p.schedLag.Observe(max(d, 0).Seconds()) }

// SecurityEvent implements parley.Metrics.
func (p *Prometheus) SecurityEvent(event string) {
	p.security.WithLabelValues(oneOf(event, parley.SecurityEvents)).Inc()
}
