package server

import (
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"
)

// debugServer is the opt-in diagnostics listener (Config.DebugAddr): it
// serves net/http/pprof under /debug/pprof/, expvar (with runtime.MemStats)
// at /debug/vars and this node's socket count at /debug/parley. It exposes
// heap contents and command lines, so it must listen on loopback only.
type debugServer struct {
	http *http.Server
	done chan struct{}
}

// startDebug listens on s.cfg.DebugAddr and serves the debug endpoints in
// the background; it does nothing when the address is empty. A listen
// failure is logged, not fatal: diagnostics never stop the node serving.
func (s *Server) startDebug() {
	addr := s.cfg.DebugAddr
	if addr == "" {
		return
	}
	if host, _, err := net.SplitHostPort(addr); err != nil || !isLoopback(host) {
		s.log.Warn("debug listener is not on loopback: it exposes heap profiles to anyone who can reach it", "addr", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.log.Error("debug listener", "addr", addr, "err", err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/vars", expvar.Handler())
	mux.HandleFunc("/debug/parley", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int{
			"connections": s.hub.Connections(),
			"goroutines":  runtime.NumGoroutine(),
		})
	})
	d := &debugServer{
		http: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		done: make(chan struct{}),
	}
	s.debug = d
	s.log.Info("debug listener", "addr", ln.Addr().String())
	go func() {
		defer close(d.done)
		if err := d.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("debug listener", "err", err)
		}
	}()
}

// closeDebug stops the debug listener, if any, and waits for it.
func (s *Server) closeDebug() {
	if s.debug == nil {
		return
	}
	// A CPU profile or trace in progress may hold a request open for its
	// whole duration: give it a moment, then cut it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if s.debug.http.Shutdown(ctx) != nil {
		s.debug.http.Close()
	}
	<-s.debug.done
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
