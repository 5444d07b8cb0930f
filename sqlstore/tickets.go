package sqlstore

import (
	"context"
	"time"

	"github.com/parley-chat/parley"
)

// CreateTicket implements parley.TicketStore.
func (db *DB) CreateTicket(ctx context.Context, ticketHash, tokenHash string, expiresAt, now time.Time) error {
	// Unused tickets are swept here rather than by a job: the table holds
	// at most the tickets of the last 30 seconds plus those of one sweep.
	if _, err := db.exec(ctx, `DELETE FROM ws_tickets WHERE expires_at <= ?`, parley.Millis(now)); err != nil {
		return err
	}
	_, err := db.exec(ctx, `INSERT INTO ws_tickets (ticket_hash, token_hash, expires_at) VALUES (?, ?, ?)`,
		ticketHash, tokenHash, parley.Millis(expiresAt))
	return err
}

// TakeTicket implements parley.TicketStore.
func (db *DB) TakeTicket(ctx context.Context, ticketHash string, now time.Time) (string, error) {
	// DELETE ... RETURNING is what makes a ticket single-use: of two
	// concurrent takes only one deletes the row.
	var tokenHash string
	err := db.inTx(ctx, func(tx *Tx) error {
		err := tx.queryRow(ctx, `DELETE FROM ws_tickets WHERE ticket_hash = ? AND expires_at > ? RETURNING token_hash`,
			ticketHash, parley.Millis(now)).Scan(&tokenHash)
		return notFound(err, "ticket")
	})
	return tokenHash, err
}
