package sqlstore

// The sync log: every write appends changes, clients read them
// (parley.ChangeStore).

import (
	"context"
	"strconv"
	"strings"

	"github.com/parley-chat/parley"
)

// addChanges appends to the sync log. The ids come from one counter row,
// so on PostgreSQL concurrent writers commit their changes in id order (the
// row lock is held until commit) and a reader that has seen id N has seen
// every id below N. That lock is the one every writer of the sync log waits
// for, so a transaction should take it as late as it can: on PostgreSQL the
// counter and the insert are one statement (one round trip between taking
// the lock and the commit), and the send path calls this last.
func (tx *Tx) addChanges(ctx context.Context, changes ...*parley.Change) error {
	return tx.addChangesAfter(ctx, nil, changes...)
}

// write is a statement whose result nobody reads (an INSERT or an upsert
// without RETURNING), with ? placeholders.
type write struct {
	query string
	args  []any
}

// addChangesAfter runs the writes, in order, and then addChanges. On
// PostgreSQL, when there are changes, the writes go as data-modifying CTEs
// of addChanges' own statement: the whole tail of a transaction is one
// round trip before COMMIT. PostgreSQL runs every such CTE to completion,
// a failing one fails the statement, and foreign keys are checked at the
// end of the statement, so a change may point at a message inserted by a
// write. The writes must not read what addChanges writes, nor touch a row
// twice.
func (tx *Tx) addChangesAfter(ctx context.Context, before []write, changes ...*parley.Change) error {
	n := 0
	for _, c := range changes {
		if c != nil {
			n++
		}
	}
	if n == 0 || tx.db.dialect != Postgres {
		for _, w := range before {
			if _, err := tx.exec(ctx, w.query, w.args...); err != nil {
				return err
			}
		}
		before = nil
	}
	if n == 0 {
		return nil
	}
	rows := newRowSet("bigint", "text", "bigint", "text", "text", "text", "text", "text", "bigint").reserve(n)
	ord := int64(0)
	for _, c := range changes {
		if c != nil {
			ord++ // id = the counter before this statement + ord
			rows.add(ord, c.ConversationID, c.Seq, c.Event, c.MessageID, c.OnlyUser, c.ToUser, string(c.Payload), parley.Millis(c.CreatedAt))
		}
	}
	// number gives the changes their ids, the counter's new value being last.
	number := func(last int64) {
		id := last - int64(n)
		for _, c := range changes {
			if c != nil {
				id++
				c.ID = id
			}
		}
	}
	if tx.db.dialect == Postgres {
		// rowSet.each makes one statement on PostgreSQL, queued (Tx.later):
		// on a pipelined transaction it goes with COMMIT.
		// The writes' texts come first, so do their arguments (q numbers
		// the placeholders in order). The insert is a CTE too: PostgreSQL
		// runs it whether or not the statement reads it.
		var with strings.Builder
		var all []any
		with.WriteString("WITH ")
		for i, w := range before {
			with.WriteString("w" + strconv.Itoa(i+1) + " AS (" + w.query + "), ")
			all = append(all, w.args...)
		}
		all = append(all, n, n)
		return rows.each(tx.db.dialect, func(table string, args []any) error {
			return tx.later(ctx, with.String()+`c AS (UPDATE change_counter SET last = last + ? WHERE id = 1 RETURNING last),
				i AS (INSERT INTO changes (id, conversation_id, seq, event, message_id, only_user, to_user, payload, created_at)
				SELECT c.last - ? + v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9
				FROM c, `+table+`)
				SELECT last FROM c`, append(all, args...), func(s scanner) error {
				var last int64
				if err := s.Scan(&last); err != nil {
					return err
				}
				number(last)
				return nil
			})
		})
	}
	var last int64
	if err := tx.queryRow(ctx, `UPDATE change_counter SET last = last + ? WHERE id = 1 RETURNING last`, n).Scan(&last); err != nil {
		return err
	}
	err := rows.each(tx.db.dialect, func(table string, args []any) error {
		_, err := tx.exec(ctx, `INSERT INTO changes (id, conversation_id, seq, event, message_id, only_user, to_user, payload, created_at)
			SELECT ? + v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9 FROM `+table,
			append([]any{last - int64(n)}, args...)...)
		return err
	})
	if err != nil {
		return err
	}
	number(last)
	return nil
}

func scanChange(s scanner) (*parley.Change, error) {
	var c parley.Change
	var payload string
	var created int64
	err := s.Scan(&c.ID, &c.ConversationID, &c.Seq, &c.Event, &c.MessageID, &c.OnlyUser, &c.ToUser, &payload, &created)
	c.Payload, c.CreatedAt = []byte(payload), parley.FromMillis(created)
	return &c, err
}

// Changes implements parley.ChangeStore.
func (db *DB) Changes(ctx context.Context, userID string, after int64, limit int) ([]*parley.Change, map[string]*parley.Message, error) {
	// A member sees their conversations' changes recorded after they joined
	// that concern messages after they joined (seq 0: not about a message),
	// except those of a message they hid (but the hiding itself, addressed
	// to them only), plus the changes addressed to them alone.
	rows, err := db.query(ctx, `SELECT id, conversation_id, seq, event, message_id, only_user, to_user, payload, created_at FROM (
		SELECT * FROM (SELECT c.id, c.conversation_id, c.seq, c.event, c.message_id, c.only_user, c.to_user, c.payload, c.created_at
			FROM changes c JOIN conversation_members mm ON mm.conversation_id = c.conversation_id AND mm.user_id = ?
			WHERE c.id > ? AND c.to_user = '' AND c.id > mm.joined_change AND (c.seq = 0 OR c.seq > mm.joined_seq)
				AND (c.only_user = '' OR c.only_user = ?)
				AND (c.message_id = '' OR c.only_user <> '' OR NOT EXISTS (SELECT 1 FROM message_hidden h
					WHERE h.user_id = mm.user_id AND h.message_id = c.message_id))
			ORDER BY c.id LIMIT ?) a
		UNION ALL
		SELECT * FROM (SELECT c.id, c.conversation_id, c.seq, c.event, c.message_id, c.only_user, c.to_user, c.payload, c.created_at
			FROM changes c WHERE c.to_user = ? AND c.to_user <> '' AND c.id > ? ORDER BY c.id LIMIT ?) b
		UNION ALL
		SELECT * FROM (SELECT c.id, c.conversation_id, c.seq, c.event, c.message_id, c.only_user, c.to_user, c.payload, c.created_at
			FROM changes c JOIN former_members f ON f.conversation_id = c.conversation_id AND f.user_id = ?
			WHERE c.id > ? AND c.to_user = '' AND c.id > f.joined_change AND c.id < f.left_change
				AND (c.seq = 0 OR (c.seq > f.joined_seq AND c.seq <= f.left_seq))
				AND (c.only_user = '' OR c.only_user = ?)
				AND (c.message_id = '' OR c.only_user <> '' OR NOT EXISTS (SELECT 1 FROM message_hidden h
					WHERE h.user_id = f.user_id AND h.message_id = c.message_id))
			ORDER BY c.id LIMIT ?) f
		) x ORDER BY id LIMIT ?`, userID, after, userID, limit, userID, after, limit, userID, after, userID, limit, limit)
	out, err := collect(rows, err, scanChange)
	if err != nil {
		return nil, nil, err
	}
	var ids []any
	for _, c := range out {
		if c.Event == parley.EventNewMessage || c.Event == parley.EventNewGroupMessage || c.Event == parley.EventNewChannelMessage {
			ids = append(ids, c.MessageID)
		}
	}
	msgs := map[string]*parley.Message{}
	if len(ids) > 0 {
		rows, err := db.query(ctx, `SELECT `+messageColumns+` FROM messages m WHERE m.id IN (`+placeholders(len(ids))+`)
			AND `+notHidden, append(ids, userID)...)
		list, err := collect(rows, err, scanMessage)
		if err != nil {
			return nil, nil, err
		}
		if err := db.withReactions(ctx, list); err != nil {
			return nil, nil, err
		}
		for _, m := range list {
			msgs[m.ID] = m
		}
	}
	return out, msgs, nil
}

// FirstUndeliveredChange implements parley.ChangeStore.
func (db *DB) FirstUndeliveredChange(ctx context.Context, userID string) (int64, error) {
	var id int64
	err := db.queryRow(ctx, `SELECT COALESCE(MIN(c.id), 0) FROM conversation_members mm
		JOIN messages m ON m.conversation_id = mm.conversation_id AND m.seq > mm.delivered_seq AND m.seq > mm.joined_seq
			AND m.sender_id <> mm.user_id
		JOIN changes c ON c.message_id = m.id AND c.event IN ('`+parley.EventNewMessage+`', '`+parley.EventNewGroupMessage+`', '`+
		parley.EventNewChannelMessage+`')
		WHERE mm.user_id = ?`, userID).Scan(&id)
	return id, err
}

// HeadChange implements parley.ChangeStore.
func (db *DB) HeadChange(ctx context.Context) (int64, error) {
	var last int64
	err := db.queryRow(ctx, `SELECT last FROM change_counter WHERE id = 1`).Scan(&last)
	return last, err
}
