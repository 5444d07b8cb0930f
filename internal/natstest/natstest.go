// Package natstest runs a NATS server inside a test process, on a random
// loopback port, so a test can stop it and start it again on the same port
// (a NATS outage) without touching the shared server other suites use.
package natstest

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is an embedded NATS server that can be stopped and restarted.
type Server struct {
	tb   testing.TB
	port int
	ns   *server.Server
}

// Start starts a NATS server on 127.0.0.1 and a free port; it is shut down
// when tb ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{tb: tb, port: port}
	s.Restart()
	tb.Cleanup(s.Stop)
	return s
}

// URL is the nats:// URL of the server (the same across restarts).
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

// Stop shuts the server down, dropping every client connection.
func (s *Server) Stop() {
	if s.ns == nil {
		return
	}
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	s.ns = nil
}

// Restart starts the server again on the same port (it must be stopped).
func (s *Server) Restart() {
	s.tb.Helper()
	if s.ns != nil {
		s.tb.Fatal("natstest: Restart of a running server")
	}
	opts := &server.Options{Host: "127.0.0.1", Port: s.port, NoLog: true, NoSigs: true}
	var err error
	// The port was just released (by Start's probe or by Stop); binding it
	// again can take a moment.
	for i := 0; i < 20; i++ {
		var ns *server.Server
		if ns, err = server.NewServer(opts); err != nil {
			break
		}
		go ns.Start()
		if ns.ReadyForConnections(2 * time.Second) {
			s.ns = ns
			return
		}
		ns.Shutdown()
		err = fmt.Errorf("not ready on port %d", s.port)
		time.Sleep(100 * time.Millisecond)
	}
	s.tb.Fatalf("natstest: start NATS server: %v", err)
}
