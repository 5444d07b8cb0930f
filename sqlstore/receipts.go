package sqlstore

// Delivered and seen cursors (parley.ReceiptStore).

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"
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

// MemberReceipts implements parley.ReceiptStore.
func (db *DB) MemberReceipts(ctx context.Context, conversationID string, fromSeq, toSeq int64) ([]*parley.MemberReceipts, error) {
	rows, err := db.query(ctx, `SELECT cm.conversation_id, cm.user_id, cm.role, cm.joined_at, cm.joined_seq, cm.joined_change,
		cm.delivered_seq, cm.read_seq, cm.shown_read_seq, COALESCE(u.read_receipts, ?)
		FROM conversation_members cm LEFT JOIN users u ON u.id = cm.user_id
		WHERE cm.conversation_id = ?`, false, conversationID)
	out, err := collect(rows, err, func(s scanner) (*parley.MemberReceipts, error) {
		var m parley.MemberReceipts
		var joined int64
		err := s.Scan(&m.ConversationID, &m.UserID, &m.Role, &joined, &m.JoinedSeq, &m.JoinedChange, &m.DeliveredSeq, &m.ReadSeq,
			&m.ShownReadSeq, &m.ReadReceipts)
		m.JoinedAt = parley.FromMillis(joined)
		m.Delivered, m.Seen = []parley.ReceiptMark{}, []parley.ReceiptMark{}
		return &m, err
	})
	if err != nil || len(out) == 0 {
		return out, err
	}
	// One statement for every member and kind (see marksQuery); its text
	// for the two members of a direct chat is built once.
	q := directMarksQuery
	if len(out) != 2 {
		q = marksQuery(len(out))
	}
	args := make([]any, 0, len(out)*18)
	for _, m := range out {
		for _, kind := range []string{parley.StatusDelivered, parley.StatusSeen} {
			args = append(args, conversationID, m.UserID, kind, fromSeq, toSeq, conversationID, m.UserID, kind, toSeq)
		}
	}
	rows, err = db.query(ctx, q, args...)
	err = each(rows, err, func(s scanner) error {
		var n int
		var mark parley.ReceiptMark
		var at int64
		if err := s.Scan(&n, &mark.Seq, &at); err != nil {
			return err
		}
		mark.At = parley.FromMillis(at)
		if m := out[n/2]; n%2 == 0 {
			m.Delivered = append(m.Delivered, mark)
		} else {
			m.Seen = append(m.Seen, mark)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	bySeq := func(a, b parley.ReceiptMark) int { return cmp.Compare(a.Seq, b.Seq) }
	for _, m := range out {
		slices.SortFunc(m.Delivered, bySeq)
		slices.SortFunc(m.Seen, bySeq)
	}
	return out, nil
}

// directMarksQuery is marksQuery(2), the marks of a direct chat's page.
var directMarksQuery = marksQuery(2)

// marksQuery is the statement that reads, for members 0 … n-1 and both
// kinds, ReceiptMarks' two parts, numbered by n = 2 × member + kind
// (literals, not input); each part takes the arguments conversation,
// user, kind, from, to, conversation, user, kind, to. No ORDER BY: each
// part comes in seq order from the index, and sorting the union made
// SQLite build a temporary b-tree per part, which cost more than the
// seeks; MemberReceipts sorts the marks instead.
func marksQuery(members int) string {
	var q strings.Builder
	for i := range 2 * members {
		n := strconv.Itoa(i)
		if i > 0 {
			q.WriteString(" UNION ALL ")
		}
		q.WriteString(`SELECT ` + n + ` AS n, seq, at FROM receipt_marks
			WHERE conversation_id = ? AND user_id = ? AND kind = ? AND seq >= ? AND seq <= ?
			UNION ALL SELECT ` + n + `, seq, at FROM (SELECT seq, at FROM receipt_marks
			WHERE conversation_id = ? AND user_id = ? AND kind = ? AND seq > ? ORDER BY seq LIMIT 1) AS next_` + n)
	}
	return q.String()
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
