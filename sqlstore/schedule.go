package sqlstore

import (
	"context"
	"time"

	"github.com/parley-chat/parley"
)

const scheduledColumns = `id, sender_id, recipient_id, COALESCE(client_message_id, ''), content, type, media_id, reply_to_id,
	scheduled_at, created_at, status`

func scanScheduled(s scanner) (*parley.Scheduled, error) {
	var x parley.Scheduled
	var at, created int64
	if err := s.Scan(&x.ID, &x.SenderID, &x.RecipientID, &x.ClientMessageID, &x.Content, &x.Type, &x.MediaID, &x.ReplyToID,
		&at, &created, &x.Status); err != nil {
		return nil, err
	}
	x.ScheduledAt, x.CreatedAt = parley.FromMillis(at), parley.FromMillis(created)
	return &x, nil
}

// CreateScheduled implements parley.ScheduleStore.
func (db *DB) CreateScheduled(ctx context.Context, s *parley.Scheduled) error {
	var cmid any
	if s.ClientMessageID != "" {
		cmid = s.ClientMessageID
	}
	_, err := db.exec(ctx, `INSERT INTO scheduled_messages (id, sender_id, recipient_id, client_message_id, content, type, media_id,
		reply_to_id, scheduled_at, created_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')`,
		s.ID, s.SenderID, s.RecipientID, cmid, s.Content, s.Type, s.MediaID, s.ReplyToID, parley.Millis(s.ScheduledAt), parley.Millis(s.CreatedAt))
	if isUniqueViolation(err) {
		return parley.Errorf(parley.ECONFLICT, "clientMessageId was already used for a scheduled message")
	}
	return err
}

// ScheduledByClientID returns the sender's scheduled message with the given
// clientMessageId, or ENOTFOUND.
func (db *DB) ScheduledByClientID(ctx context.Context, senderID, clientMessageID string) (*parley.Scheduled, error) {
	s, err := scanScheduled(db.queryRow(ctx, `SELECT `+scheduledColumns+` FROM scheduled_messages WHERE sender_id = ? AND client_message_id = ?`,
		senderID, clientMessageID))
	return s, notFound(err, "scheduled message")
}

// PendingScheduled implements parley.ScheduleStore. A message already sent
// but not yet marked so (the dispatcher marks it right after the commit) is
// not pending.
func (db *DB) PendingScheduled(ctx context.Context, senderID string) ([]*parley.Scheduled, error) {
	rows, err := db.query(ctx, `SELECT `+scheduledColumns+` FROM scheduled_messages WHERE sender_id = ? AND status = 'pending'
		AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = scheduled_messages.id)
		ORDER BY scheduled_at, id`, senderID)
	return collect(rows, err, scanScheduled)
}

// CancelScheduled implements parley.ScheduleStore.
//
// A file the cancelled message would have sent, and that nothing else
// uses, is looked at again by the collector once its 24 hours are over.
func (db *DB) CancelScheduled(ctx context.Context, senderID, id string) error {
	return db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE scheduled_messages SET status = 'cancelled' WHERE id = ? AND sender_id = ? AND status = 'pending'
			AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = scheduled_messages.id)`, id, senderID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return parley.Errorf(parley.ENOTFOUND, "scheduled message not found or no longer pending")
		}
		_, err = tx.exec(ctx, `UPDATE media SET check_after = uploaded_at + ? WHERE check_after = 0 AND used_at = 0
			AND id = (SELECT media_id FROM scheduled_messages WHERE id = ?)`, parley.MediaGrace.Milliseconds(), id)
		return err
	})
}

// ClaimDue implements parley.ScheduleStore. The outer WHERE repeats the
// conditions so that on PostgreSQL a node that waited for another's row
// lock re-checks them and skips rows the other node just claimed.
func (db *DB) ClaimDue(ctx context.Context, node string, now, leaseUntil time.Time, limit int) ([]*parley.Scheduled, error) {
	rows, err := db.w.QueryContext(ctx, db.q(`UPDATE scheduled_messages SET claimed_by = ?, claimed_until = ?
		WHERE id IN (SELECT id FROM scheduled_messages WHERE status IN ('pending', 'sending') AND scheduled_at <= ? AND claimed_until < ?
			ORDER BY scheduled_at LIMIT ?)
		AND status IN ('pending', 'sending') AND claimed_until < ?
		RETURNING `+scheduledColumns), node, parley.Millis(leaseUntil), parley.Millis(now), parley.Millis(now), limit, parley.Millis(now))
	return collect(rows, err, scanScheduled)
}

// StartScheduled implements parley.ScheduleStore.
func (db *DB) StartScheduled(ctx context.Context, id string) (bool, error) {
	res, err := db.exec(ctx, `UPDATE scheduled_messages SET status = 'sending' WHERE id = ? AND status IN ('pending', 'sending')`, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// FinishScheduled implements parley.ScheduleStore.
func (db *DB) FinishScheduled(ctx context.Context, id, status string) error {
	_, err := db.exec(ctx, `UPDATE scheduled_messages SET status = ? WHERE id = ? AND status IN ('pending', 'sending')`, status, id)
	return err
}
