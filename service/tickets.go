package service

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"math"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/ratelimit"
)

// SocketTicketTTL is how long a socket ticket may wait to be used.
const SocketTicketTTL = 30 * time.Second

// SocketTicket is the answer of POST /api/auth/ws-ticket.
type SocketTicket struct {
	Ticket    string      `json:"ticket"`
	ExpiresAt parley.Time `json:"expiresAt"`
}

// Socket tickets a user may take on a node: SocketTicketsPerMinute a
// minute, in bursts of SocketTicketBurst (a browser takes one per socket
// it opens, reconnections included). Each is a database row until it is
// used or expires, so a client asking in a loop is refused (429
// rate_limited) instead of filling the table.
const (
	SocketTicketsPerMinute = 30
	SocketTicketBurst      = 20
)

func newTicketLimiter() *ratelimit.Keyed {
	return ratelimit.New(SocketTicketsPerMinute/60.0, SocketTicketBurst)
}

// IssueSocketTicket makes a single-use ticket that opens one plain
// WebSocket as the caller's session, valid for SocketTicketTTL. Browsers
// use it so the bearer token never appears in a URL. ERATELIMITED past
// the limits above.
func (s *Service) IssueSocketTicket(ctx context.Context, caller *parley.Identity) (*SocketTicket, error) {
	if ok, wait := s.tickets.Take(caller.UserID, s.cfg.Now()); !ok {
		return nil, parley.Errorf(parley.ERATELIMITED, "too many socket tickets, retry in %d s", int(math.Ceil(wait.Seconds())))
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	ticket := "wst_" + base64.RawURLEncoding.EncodeToString(b)
	now := s.cfg.Now()
	exp := now.Add(SocketTicketTTL)
	if err := s.store.Tickets.CreateTicket(ctx, HashToken(ticket), caller.TokenHash, exp, now); err != nil {
		return nil, err
	}
	return &SocketTicket{Ticket: ticket, ExpiresAt: parley.Time{Time: exp}}, nil
}

// AuthenticateTicket consumes a socket ticket and returns the identity of
// the session that made it. An unknown, used or expired ticket, or one
// whose session was revoked or expired since, answers EUNAUTHORIZED.
func (s *Service) AuthenticateTicket(ctx context.Context, ticket string) (*parley.Identity, error) {
	if ticket == "" || len(ticket) > 128 {
		return nil, parley.Errorf(parley.EUNAUTHORIZED, "missing or invalid ticket")
	}
	hash, err := s.store.Tickets.TakeTicket(ctx, HashToken(ticket), s.cfg.Now())
	if parley.ErrorCode(err) == parley.ENOTFOUND {
		return nil, parley.Errorf(parley.EUNAUTHORIZED, "missing or invalid ticket")
	} else if err != nil {
		return nil, err
	}
	return s.authenticateHash(ctx, hash)
}

// SessionLive answers nil when the session of id is still valid (not
// revoked, not expired), EUNAUTHORIZED otherwise.
func (s *Service) SessionLive(ctx context.Context, id *parley.Identity) error {
	_, err := s.authenticateHash(ctx, id.TokenHash)
	return err
}

// authenticateHash resolves a session by its token hash (a bearer token
// hashed, or the session a ticket names).
func (s *Service) authenticateHash(ctx context.Context, hash string) (*parley.Identity, error) {
	sess, err := s.store.Sessions.SessionByTokenHash(ctx, hash)
	if parley.ErrorCode(err) == parley.ENOTFOUND {
		return nil, parley.Errorf(parley.EUNAUTHORIZED, "missing or invalid token")
	} else if err != nil {
		return nil, err
	}
	if !s.cfg.Now().Before(sess.ExpiresAt) {
		return nil, parley.Errorf(parley.EUNAUTHORIZED, "token expired")
	}
	return &parley.Identity{UserID: sess.UserID, DeviceID: sess.DeviceID, TokenHash: sess.TokenHash, ExpiresAt: sess.ExpiresAt}, nil
}
