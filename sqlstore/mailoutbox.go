package sqlstore

// The e-mail outbox (parley.MailStore).

import (
	"context"
	"time"

	"github.com/parley-chat/parley"
)

// QueueMail implements parley.MailStore.
func (db *DB) QueueMail(ctx context.Context, m *parley.OutboxMail) error {
	_, err := db.exec(ctx, insertMail, mailArgs(m)...)
	return err
}

const insertMail = `INSERT INTO mail_outbox (id, kind, to_addr, subject, body, attempts, next_at, created_at)
	VALUES (?, ?, ?, ?, ?, 0, ?, ?)`

func mailArgs(m *parley.OutboxMail) []any {
	return []any{m.ID, m.Kind, m.To, m.Subject, m.Body, parley.Millis(m.NextAt), parley.Millis(m.CreatedAt)}
}

// AddDevice implements parley.MailStore.
func (db *DB) AddDevice(ctx context.Context, d *parley.Device, alert *parley.OutboxMail) (bool, error) {
	created := false
	err := db.inTx(ctx, func(tx *Tx) error {
		var err error
		if created, err = tx.upsertDevice(ctx, d); err != nil || !created || alert == nil {
			return err
		}
		_, err = tx.exec(ctx, insertMail, mailArgs(alert)...)
		return err
	})
	return created, err
}

// DueMail implements parley.MailStore.
func (db *DB) DueMail(ctx context.Context, now time.Time, limit int) ([]*parley.OutboxMail, error) {
	rows, err := db.query(ctx, `SELECT id, kind, to_addr, subject, body, attempts, next_at, created_at FROM mail_outbox
		WHERE next_at <= ? AND claim_until <= ? ORDER BY next_at, id LIMIT ?`, parley.Millis(now), parley.Millis(now), limit)
	return collect(rows, err, func(s scanner) (*parley.OutboxMail, error) {
		var m parley.OutboxMail
		var next, created int64
		err := s.Scan(&m.ID, &m.Kind, &m.To, &m.Subject, &m.Body, &m.Attempts, &next, &created)
		m.NextAt, m.CreatedAt = parley.FromMillis(next), parley.FromMillis(created)
		return &m, err
	})
}

// ClaimMail implements parley.MailStore.
func (db *DB) ClaimMail(ctx context.Context, id string, now, until time.Time) (bool, error) {
	res, err := db.exec(ctx, `UPDATE mail_outbox SET claim_until = ? WHERE id = ? AND claim_until <= ?`,
		parley.Millis(until), id, parley.Millis(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// MailDone implements parley.MailStore.
func (db *DB) MailDone(ctx context.Context, id string) error {
	_, err := db.exec(ctx, `DELETE FROM mail_outbox WHERE id = ?`, id)
	return err
}

// MailFailed implements parley.MailStore.
func (db *DB) MailFailed(ctx context.Context, id string, next time.Time) error {
	_, err := db.exec(ctx, `UPDATE mail_outbox SET attempts = attempts + 1, next_at = ?, claim_until = 0 WHERE id = ?`, parley.Millis(next), id)
	return err
}
