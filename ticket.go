package parley

import (
	"context"
	"time"
)

// TicketStore keeps the short-lived, single-use tickets a browser opens the
// plain WebSocket with (GET /ws?ticket=), so that its bearer token never
// travels in a URL. Tickets and tokens are stored hashed.
type TicketStore interface {
	// CreateTicket stores a ticket for the session tokenHash names, valid
	// until expiresAt; it also drops tickets that expired before now.
	CreateTicket(ctx context.Context, ticketHash, tokenHash string, expiresAt, now time.Time) error
	// TakeTicket consumes a ticket and returns its session's token hash.
	// Of two concurrent takes only one succeeds; an unknown, used or expired
	// (not after now) ticket answers ENOTFOUND.
	TakeTicket(ctx context.Context, ticketHash string, now time.Time) (string, error)
}
