package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-chat/parley/metrics"
	"github.com/parley-chat/parley/natsbus"
	"github.com/parley-chat/parley/sqlstore"
)

// metricsServer is the opt-in Prometheus listener (Config.MetricsAddr): it
// serves GET /metrics, the node's registry in the text format, on its own
// address, never on the public listener.
type metricsServer struct {
	http *http.Server
	ln   net.Listener
	done chan struct{}
}

// newRegistry returns this node's registry with Parley's collectors, the
// Go runtime and process collectors and the database pools' statistics.
func newRegistry(db *sqlstore.DB) (*prometheus.Registry, *metrics.Prometheus) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	for name, pool := range db.Pools() {
		metrics.RegisterDB(reg, name, pool)
	}
	return reg, m
}

// registerBusLoss counts the events from other nodes the NATS bus lost,
// by cause: parley_bus_events_lost_total{reason="behind"} were received
// but dropped because this node's queue was full, "missing" never
// arrived (a publisher's sequence jumped), "client" were dropped by the
// NATS client's own pending limits. Each loss closed the affected sockets
// (parley_bus_gaps_total counts those resynchronisations).
func registerBusLoss(reg prometheus.Registerer, bus *natsbus.Bus) {
	for reason, get := range map[string]func(natsbus.Stats) uint64{
		"behind":  func(st natsbus.Stats) uint64 { return st.Dropped },
		"missing": func(st natsbus.Stats) uint64 { return st.Missing },
		"client":  func(st natsbus.Stats) uint64 { return st.ClientDropped },
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_bus_events_lost_total",
			Help:        "Events from other nodes this node lost (it then closed the sockets of their addressees, or every socket, so clients resync), by cause.",
			ConstLabels: prometheus.Labels{"reason": reason}},
			func() float64 { return float64(get(bus.Stats())) }))
	}
}

// listenMetrics opens the metrics listener when MetricsAddr is set; Start
// serves it.
func (s *Server) listenMetrics() error {
	if s.cfg.MetricsAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.MetricsAddr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(s.registry))
	s.metricsSrv = &metricsServer{ln: ln, done: make(chan struct{}),
		http: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	return nil
}

func (s *Server) startMetrics() {
	m := s.metricsSrv
	if m == nil {
		return
	}
	s.log.Info("metrics listener", "addr", m.ln.Addr().String())
	go func() {
		defer close(m.done)
		if err := m.http.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics listener", "err", err)
		}
	}()
}

// MetricsURL is the URL of GET /metrics, or "" when MetricsAddr is not set.
func (s *Server) MetricsURL() string {
	if s.metricsSrv == nil {
		return ""
	}
	return "http://" + s.metricsSrv.ln.Addr().String() + "/metrics"
}

// closeMetrics stops the metrics listener, if any.
func (s *Server) closeMetrics() {
	m := s.metricsSrv
	if m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if m.http.Shutdown(ctx) != nil {
		m.http.Close()
	}
	select {
	case <-m.done:
	default:
		m.ln.Close() // never served (Start not called)
	}
}
