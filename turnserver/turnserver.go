// Package turnserver is Parley's embedded TURN server (pion/turn): it
// relays the media of calls whose peers cannot reach each other directly.
// It admits only the TURN REST API credentials that GET
// /api/calls/ice-servers hands out (parley.TURNUsername and
// parley.TURNCredential with the same shared secret), until they expire,
// and caps the allocations one user holds at once.
package turnserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/transport/v4/stdnet"
	"github.com/pion/turn/v4"

	"github.com/parley-chat/parley"
)

// Config configures the embedded TURN server.
type Config struct {
	Addr   string // UDP address to listen on, e.g. ":3478"
	Secret string // the secret shared with the service's ICE configuration; required
	Realm  string // default "parley"
	// RelayIP is the address put in relay candidates: the server's public
	// IP. Required.
	RelayIP net.IP
	// RelayBind is the local address relay sockets bind to; default
	// 0.0.0.0.
	RelayBind string
	// MinPort and MaxPort bound the UDP ports of relays; default
	// 49152-65535.
	MinPort, MaxPort uint16
	// MaxAllocationsPerUser bounds the relays one user holds at once;
	// default 10.
	MaxAllocationsPerUser int
	Now                   func() time.Time // the clock credentials expire by; default time.Now
	Logger                *slog.Logger
}

// Server is a running TURN server.
type Server struct {
	cfg  Config
	conn net.PacketConn
	turn *turn.Server

	mu     sync.Mutex
	allocs map[string]int // allocations by user id
}

// Start listens on cfg.Addr and serves TURN until Close.
func Start(cfg Config) (*Server, error) {
	if cfg.Secret == "" {
		return nil, errors.New("turn: a shared secret is required")
	}
	if cfg.RelayIP == nil {
		return nil, errors.New("turn: the relay (public) IP address is required")
	}
	if cfg.Realm == "" {
		cfg.Realm = "parley"
	}
	if cfg.RelayBind == "" {
		cfg.RelayBind = "0.0.0.0"
	}
	if cfg.MinPort == 0 {
		cfg.MinPort = 49152
	}
	if cfg.MaxPort == 0 {
		cfg.MaxPort = 65535
	}
	if cfg.MinPort > cfg.MaxPort {
		return nil, fmt.Errorf("turn: relay port range %d-%d is empty", cfg.MinPort, cfg.MaxPort)
	}
	if cfg.MaxAllocationsPerUser <= 0 {
		cfg.MaxAllocationsPerUser = 10
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	nw, err := stdnet.NewNet()
	if err != nil {
		return nil, fmt.Errorf("turn: %w", err)
	}
	conn, err := net.ListenPacket("udp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("turn: listen: %w", err)
	}
	s := &Server{cfg: cfg, conn: conn, allocs: map[string]int{}}
	s.turn, err = turn.NewServer(turn.ServerConfig{
		Realm:        cfg.Realm,
		AuthHandler:  s.authenticate,
		QuotaHandler: s.quota,
		EventHandler: turn.EventHandler{
			OnAllocationCreated: func(_, _ net.Addr, _, username, _ string, _ net.Addr, _ int) { s.count(username, 1) },
			OnAllocationDeleted: func(_, _ net.Addr, _, username, _ string) { s.count(username, -1) },
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: conn,
			RelayAddressGenerator: &turn.RelayAddressGeneratorPortRange{RelayAddress: cfg.RelayIP, Address: cfg.RelayBind,
				MinPort: cfg.MinPort, MaxPort: cfg.MaxPort, Net: nw},
		}},
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("turn: %w", err)
	}
	return s, nil
}

// Addr is the address the server listens on (the real port when Addr
// used port 0).
func (s *Server) Addr() net.Addr { return s.conn.LocalAddr() }

// Close stops the server and its relays.
func (s *Server) Close() error { return s.turn.Close() }

// userOf returns the user id of a TURN REST API user name and whether it
// is still valid at now.
func userOf(username string, now time.Time) (string, bool) {
	exp, user, ok := strings.Cut(username, ":")
	if !ok || user == "" {
		return "", false
	}
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || now.Unix() > sec {
		return "", false
	}
	return user, true
}

// authenticate admits a user name that has not expired; the key pion
// checks the request's integrity with is made from the credential Parley
// handed out for that name, so a wrong secret or a changed name fails.
func (s *Server) authenticate(username, realm string, _ net.Addr) ([]byte, bool) {
	if _, ok := userOf(username, s.cfg.Now()); !ok {
		return nil, false
	}
	return turn.GenerateAuthKey(username, realm, parley.TURNCredential(s.cfg.Secret, username)), true
}

// quota refuses a user's allocation past MaxAllocationsPerUser.
func (s *Server) quota(username, _ string, _ net.Addr) bool {
	user, ok := userOf(username, s.cfg.Now())
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.allocs[user] < s.cfg.MaxAllocationsPerUser
}

func (s *Server) count(username string, d int) {
	_, user, _ := strings.Cut(username, ":")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.allocs[user] += d; s.allocs[user] <= 0 {
		delete(s.allocs, user)
	}
}
