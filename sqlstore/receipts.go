package sqlstore

// Delivered and seen cursors (parley.ReceiptStore).

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"time"

	"github.com/parley-chat/parley"
)

// ReceiptMarks implements parley.ReceiptStore.
func (db *DB) ReceiptMarks(ctx context.Context, conversationID, userID, kind string, fromSeq, toSeq int64) ([]parley.ReceiptMark, error) {
	rows, err := db.query(ctx, `SELECT seq, at FROM receipt_marks
		WHERE conversation_id = ? AND user_id = ? AND kind = ? AND seq >= ? AND seq <= ?
		UNION ALL
		SELECT seq, at FROM (SELECT seq, at FROM receipt_marks WHERE conversation_id = ? AND user_id = ? AND kind = ? AND seq > ?
			ORDER BY seq LIMIT 1) AS next_mark
		ORDER BY seq`, conversationID, userID, kind, fromSeq, toSeq, conversationID, userID, kind, toSeq)
	return collect(rows, err, func(s scanner) (parley.ReceiptMark, error) {
		var m parley.ReceiptMark
		var at int64
		err := s.Scan(&m.Seq, &at)
		m.At = parley.FromMillis(at)
		return m, err
	})
}

// memberReceiptsQuery reads a conversation's receipt state in one
// statement. Rows with n = 0 are one per member and kind: the member's
// cursors and read-receipt setting, and the first mark of that kind after
// the range (seq -1: none). Rows with n = 1 are the members' marks inside
// the range. Either part walks the members by their primary key and the
// marks by theirs; no ORDER BY, which made SQLite sort through temporary
// b-trees (MemberReceipts sorts the marks). One statement, not a members
// statement and then a marks statement: on PostgreSQL a round trip fewer.
const memberReceiptsQuery = `SELECT 0 AS n, cm.user_id, k.kind, cm.role, cm.joined_at, cm.joined_seq, cm.joined_change,
		cm.delivered_seq, cm.read_seq, cm.shown_read_seq, COALESCE(u.read_receipts, FALSE) AS read_receipts,
		COALESCE((SELECT r.seq FROM receipt_marks r WHERE r.conversation_id = cm.conversation_id AND r.user_id = cm.user_id
			AND r.kind = k.kind AND r.seq > ? ORDER BY r.seq LIMIT 1), -1) AS seq,
		COALESCE((SELECT r.at FROM receipt_marks r WHERE r.conversation_id = cm.conversation_id AND r.user_id = cm.user_id
			AND r.kind = k.kind AND r.seq > ? ORDER BY r.seq LIMIT 1), -1) AS at
	FROM conversation_members cm CROSS JOIN (SELECT 'delivered' AS kind UNION ALL SELECT 'seen') AS k
	LEFT JOIN users u ON u.id = cm.user_id
	WHERE cm.conversation_id = ?
	UNION ALL
	SELECT 1, r.user_id, r.kind, '', 0, 0, 0, 0, 0, 0, FALSE, r.seq, r.at
	FROM conversation_members cm CROSS JOIN (SELECT 'delivered' AS kind UNION ALL SELECT 'seen') AS k
	JOIN receipt_marks r ON r.conversation_id = cm.conversation_id AND r.user_id = cm.user_id AND r.kind = k.kind
	WHERE cm.conversation_id = ? AND r.seq >= ? AND r.seq <= ?`

// MemberReceipts implements parley.ReceiptStore.
func (db *DB) MemberReceipts(ctx context.Context, conversationID string, fromSeq, toSeq int64) ([]*parley.MemberReceipts, error) {
	rows, err := db.query(ctx, memberReceiptsQuery, toSeq, toSeq, conversationID, conversationID, fromSeq, toSeq)
	out := []*parley.MemberReceipts{}
	byUser := make(map[string]*parley.MemberReceipts, 2)
	var n int
	var userID, kind string
	var m parley.MemberReceipts
	var joined int64
	var mark parley.ReceiptMark
	var at int64
	dest := []any{&n, &userID, &kind, &m.Role, &joined, &m.JoinedSeq, &m.JoinedChange, &m.DeliveredSeq, &m.ReadSeq,
		&m.ShownReadSeq, &m.ReadReceipts, &mark.Seq, &at}
	type userMark struct {
		userID, kind string
		mark         parley.ReceiptMark
	}
	var marks []userMark // held until every member's row is in: the union's parts come in no promised order
	err = each(rows, err, func(s scanner) error {
		if err := s.Scan(dest...); err != nil {
			return err
		}
		if n == 0 && byUser[userID] == nil {
			r := new(parley.MemberReceipts)
			*r = m
			r.ConversationID, r.UserID, r.JoinedAt = conversationID, userID, parley.FromMillis(joined)
			r.Delivered, r.Seen = []parley.ReceiptMark{}, []parley.ReceiptMark{}
			byUser[userID] = r
			out = append(out, r)
		}
		if n == 0 && mark.Seq == -1 {
			return nil // no mark after the range
		}
		mark.At = parley.FromMillis(at)
		marks = append(marks, userMark{userID, kind, mark})
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, um := range marks {
		switch r := byUser[um.userID]; {
		case r == nil: // not a member (the statement joins members: not expected)
		case um.kind == parley.StatusDelivered:
			r.Delivered = append(r.Delivered, um.mark)
		default:
			r.Seen = append(r.Seen, um.mark)
		}
	}
	bySeq := func(a, b parley.ReceiptMark) int { return cmp.Compare(a.Seq, b.Seq) }
	for _, m := range out {
		slices.SortFunc(m.Delivered, bySeq)
		slices.SortFunc(m.Seen, bySeq)
	}
	return out, nil
}

// AdvanceReceipt implements parley.ReceiptStore.
func (db *DB) AdvanceReceipt(ctx context.Context, conversationID, userID, kind string, seq int64, at time.Time, private bool, changes ...*parley.Change) (bool, error) {
	advanced := false
	err := db.inTx(ctx, func(tx *Tx) error {
		var delivered, read, shown int64
		if err := tx.queryRow(ctx, `SELECT delivered_seq, read_seq, shown_read_seq FROM conversation_members WHERE conversation_id = ? AND user_id = ?`,
			conversationID, userID).Scan(&delivered, &read, &shown); err != nil {
			return notFound(err, "conversation")
		}
		mark := func(kind string) error {
			_, err := tx.exec(ctx, `INSERT INTO receipt_marks (conversation_id, user_id, kind, seq, at) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT DO NOTHING`, conversationID, userID, kind, seq, parley.Millis(at))
			return err
		}
		if delivered < seq {
			if _, err := tx.exec(ctx, `UPDATE conversation_members SET delivered_seq = ? WHERE conversation_id = ? AND user_id = ?`,
				seq, conversationID, userID); err != nil {
				return err
			}
			if err := mark(parley.StatusDelivered); err != nil {
				return err
			}
			advanced = true
		}
		if kind == parley.StatusSeen && read < seq {
			if _, err := tx.exec(ctx, `UPDATE conversation_members SET read_seq = ? WHERE conversation_id = ? AND user_id = ?`,
				seq, conversationID, userID); err != nil {
				return err
			}
			advanced = true
		}
		if kind == parley.StatusSeen && !private && shown < seq {
			if _, err := tx.exec(ctx, `UPDATE conversation_members SET shown_read_seq = ? WHERE conversation_id = ? AND user_id = ?`,
				seq, conversationID, userID); err != nil {
				return err
			}
			if err := mark(parley.StatusSeen); err != nil {
				return err
			}
			advanced = true
		}
		if !advanced {
			return nil
		}
		return tx.addChanges(ctx, changes...)
	})
	return advanced, err
}

// ReceiptTimes implements parley.ReceiptStore. Cursor advances are
// monotonic, so the first mark at or after seq has the smallest time.
func (db *DB) ReceiptTimes(ctx context.Context, conversationID string, seq int64) ([]parley.ReceiptTime, error) {
	// One index probe per member and kind for the first advance that
	// reached seq, rather than a scan of every mark after seq (which grows
	// with the group's size times its traffic since).
	rows, err := db.query(ctx, `SELECT m.user_id, k.kind,
			(SELECT r.at FROM receipt_marks r WHERE r.conversation_id = m.conversation_id AND r.user_id = m.user_id
				AND r.kind = k.kind AND r.seq >= ? ORDER BY r.seq LIMIT 1)
		FROM conversation_members m CROSS JOIN (SELECT 'delivered' AS kind UNION ALL SELECT 'seen') AS k
		WHERE m.conversation_id = ? ORDER BY m.user_id, k.kind`, seq, conversationID)
	var out []parley.ReceiptTime
	err = each(rows, err, func(s scanner) error {
		var r parley.ReceiptTime
		var at sql.NullInt64
		if err := s.Scan(&r.UserID, &r.Kind, &at); err != nil || !at.Valid {
			return err // or not there yet
		}
		r.At = parley.FromMillis(at.Int64)
		out = append(out, r)
		return nil
	})
	return out, err
}

// SendersBetween implements parley.ReceiptStore.
func (db *DB) SendersBetween(ctx context.Context, conversationID string, fromSeq, toSeq int64) ([]string, error) {
	return db.ids(ctx, `SELECT DISTINCT sender_id FROM messages WHERE conversation_id = ? AND seq > ? AND seq <= ? ORDER BY sender_id`,
		conversationID, fromSeq, toSeq)
}
