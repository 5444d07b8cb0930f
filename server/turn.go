package server

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"strconv"

	"github.com/parley-chat/parley/service"
	"github.com/parley-chat/parley/turnserver"
)

// startTURN starts the embedded TURN server when TURNAddr is set and
// returns what GET /api/calls/ice-servers hands out.
func (s *Server) startTURN() (service.ICEConfig, error) {
	cfg := s.cfg
	ice := service.ICEConfig{STUN: cfg.STUNURLs, TURN: cfg.TURNURLs, Secret: cfg.TURNSecret}
	if len(cfg.TURNURLs) > 0 && cfg.TURNSecret == "" {
		return ice, fmt.Errorf("--turn-url needs --turn-secret, the secret the TURN server checks credentials with")
	}
	if cfg.TURNAddr == "" {
		return ice, nil
	}
	host, _, err := net.SplitHostPort(cfg.TURNAddr)
	if err != nil {
		return ice, fmt.Errorf("--turn-addr: %w", err)
	}
	public := cfg.TURNPublicIP
	if public == "" {
		public = host
	}
	ip := net.ParseIP(public)
	if ip == nil || ip.IsUnspecified() {
		return ice, fmt.Errorf("--turn-public-ip must name the IP address clients reach the TURN server at (not %q)", public)
	}
	if ice.Secret == "" {
		var b [32]byte
		_, _ = rand.Read(b[:])
		ice.Secret = base64.RawURLEncoding.EncodeToString(b[:])
		s.log.Warn("no --turn-secret: the embedded TURN server uses a random one, which other nodes do not know")
	}
	s.turn, err = turnserver.Start(turnserver.Config{Addr: cfg.TURNAddr, Secret: ice.Secret, RelayIP: ip, MinPort: cfg.TURNPortMin,
		MaxPort: cfg.TURNPortMax, MaxAllocationsPerUser: cfg.TURNQuota, Now: cfg.Clock.Now, Logger: s.log})
	if err != nil {
		return ice, err
	}
	if len(ice.TURN) == 0 {
		port := strconv.Itoa(s.turn.Addr().(*net.UDPAddr).Port)
		hostport := net.JoinHostPort(ip.String(), port)
		ice.TURN = []string{"turn:" + hostport + "?transport=udp"}
		if len(ice.STUN) == 0 {
			ice.STUN = []string{"stun:" + hostport}
		}
	}
	s.log.Info("embedded TURN server listening", "addr", s.turn.Addr().String(), "relay_ip", ip.String())
	return ice, nil
}

// closeTURN stops the embedded TURN server, if any.
func (s *Server) closeTURN() {
	if s.turn != nil {
		if err := s.turn.Close(); err != nil {
			s.log.Warn("close TURN server", "err", err)
		}
	}
}
