package sqlstore

// Messages after they are sent: reading, reactions, edits and deletions
// (parley.MessageStore).

import (
	"context"
	"time"

	"github.com/parley-chat/parley"
)

const messageColumns = `m.id, m.conversation_id, m.seq, m.sender_id, m.recipient_id, COALESCE(m.client_message_id, ''), m.content,
	m.content_hash, m.type, m.media_id, m.reply_to_id, m.sent_at, m.edited_at, m.deleted_for_everyone, m.reply_to_status_id`

// pageColumns are the columns of a page of History: messageColumns but
// conversation_id, which the page's caller names, and with NULL for the
// optional columns when empty and for the sender or recipient when that is
// the viewer (the statement's first two arguments). The driver reads a NULL column with one
// call into SQLite, a text column with three (each taking the connection's
// mutex) and a copy: a row of a direct chat without media, reply or client
// id then has 5 of its 10 text columns NULL.
const pageColumns = `m.id, m.seq, NULLIF(m.sender_id, ?), NULLIF(m.recipient_id, ?), NULLIF(m.client_message_id, ''), m.content,
	m.content_hash, m.type, NULLIF(m.media_id, ''), NULLIF(m.reply_to_id, ''), m.sent_at, m.edited_at, m.deleted_for_everyone,
	NULLIF(m.reply_to_status_id, '')`

// orString is v when it is a string (a text column read into an any), or
// else def (NULL).
func orString(v any, def string) string {
	if s, ok := v.(string); ok {
		return s
	}
	return def
}

func scanMessage(s scanner) (*parley.Message, error) {
	var m parley.Message
	var sent, edited int64
	err := s.Scan(&m.ID, &m.ConversationID, &m.Seq, &m.SenderID, &m.RecipientID, &m.ClientMessageID, &m.Content,
		&m.ContentHash, &m.Type, &m.MediaID, &m.ReplyToID, &sent, &edited, &m.DeletedForEveryone, &m.ReplyToStatusID)
	if err != nil {
		return nil, err
	}
	m.SentAt, m.EditedAt = parley.FromMillis(sent), parley.FromMillis(edited)
	return &m, nil
}

// withReactions loads the reactions of msgs.
func (db *DB) withReactions(ctx context.Context, msgs []*parley.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	byID := make(map[string]*parley.Message, len(msgs))
	args := make([]any, 0, len(msgs))
	for _, m := range msgs {
		m.Reactions = []parley.Reaction{}
		byID[m.ID] = m
		args = append(args, m.ID)
	}
	rows, err := db.query(ctx, `SELECT message_id, user_id, reaction FROM message_reactions WHERE message_id IN (`+placeholders(len(args))+`)
		ORDER BY created_at, user_id`, args...)
	return each(rows, err, func(s scanner) error {
		var mid string
		var r parley.Reaction
		if err := s.Scan(&mid, &r.UserID, &r.Reaction); err != nil {
			return err
		}
		if m := byID[mid]; m != nil {
			m.Reactions = append(m.Reactions, r)
		}
		return nil
	})
}

// MessageByID implements parley.MessageStore.
func (db *DB) MessageByID(ctx context.Context, id string) (*parley.Message, error) {
	m, err := scanMessage(db.queryRow(ctx, `SELECT `+messageColumns+` FROM messages m WHERE id = ?`, id))
	if err != nil {
		return nil, notFound(err, "message")
	}
	return m, db.withReactions(ctx, []*parley.Message{m})
}

const notHidden = `NOT EXISTS (SELECT 1 FROM message_hidden h WHERE h.user_id = ? AND h.message_id = m.id)`

// History implements parley.MessageStore.
func (db *DB) History(ctx context.Context, conversationID, viewer string, beforeSeq int64, before time.Time, limit int) ([]*parley.Message, error) {
	bt := int64(1 << 62)
	if !before.IsZero() {
		bt = parley.Millis(before)
	}
	// A member's page is one statement: their joined_seq is read by an
	// uncorrelated subquery (evaluated once; NULL, so no rows, when they
	// are not a member), the check for hidden messages runs per row only
	// when the viewer hid any message at all, and reactions are read only
	// when a row has some. An empty page may be a former member's or a
	// stranger's: the statements below tell them apart.
	upTo := beforeSeq
	if upTo <= 0 || upTo > 1<<62 {
		upTo = 1 << 62
	}
	const page = `SELECT ` + pageColumns + `,
		EXISTS (SELECT 1 FROM message_reactions r WHERE r.message_id = m.id)
		FROM messages m
		WHERE m.conversation_id = ? AND m.seq > (SELECT joined_seq FROM conversation_members WHERE conversation_id = ? AND user_id = ?)
		AND m.seq < ? AND m.sent_at < ?
		AND (NOT EXISTS (SELECT 1 FROM message_hidden WHERE user_id = ?) OR ` + notHidden + `)
		ORDER BY m.seq DESC LIMIT ?`
	args := []any{viewer, viewer, conversationID, conversationID, viewer, upTo, bt, viewer, viewer, limit}
	reacted := false
	// The page's rows are scanned through one destination list, built once
	// per page (a list per row was a seventh of a page's garbage), into
	// row, and copied into one slice of messages.
	slab := make([]parley.Message, 0, min(max(limit, 0), 256))
	var row parley.Message
	var sender, recipient, clientID, media, replyTo, replyToStatus any
	var sent, edited int64
	var hasReactions bool
	dest := []any{&row.ID, &row.Seq, &sender, &recipient, &clientID, &row.Content, &row.ContentHash, &row.Type, &media, &replyTo,
		&sent, &edited, &row.DeletedForEveryone, &replyToStatus, &hasReactions}
	scan := func(s scanner) error {
		if err := s.Scan(dest...); err != nil {
			return err
		}
		row.ConversationID = conversationID
		row.SenderID, row.RecipientID = orString(sender, viewer), orString(recipient, viewer)
		row.ClientMessageID, row.MediaID = orString(clientID, ""), orString(media, "")
		row.ReplyToID, row.ReplyToStatusID = orString(replyTo, ""), orString(replyToStatus, "")
		row.SentAt, row.EditedAt = parley.FromMillis(sent), parley.FromMillis(edited)
		row.Reactions = []parley.Reaction{}
		reacted = reacted || hasReactions
		slab = append(slab, row)
		return nil
	}
	err := db.queryDirect(ctx, page, args, func(rows rowsIter, err error) error { return each(rows, err, scan) })
	var msgs []*parley.Message
	if err == nil {
		msgs = make([]*parley.Message, len(slab))
		for i := range slab {
			msgs[i] = &slab[i]
		}
	}
	switch {
	case err != nil:
		return nil, err
	case len(msgs) == 0:
		return db.formerHistory(ctx, conversationID, viewer, beforeSeq, bt, limit)
	case !reacted:
		return msgs, nil
	}
	return msgs, db.withReactions(ctx, msgs)
}

// formerHistory is History for a page the member's statement found empty:
// empty for a member, ENOTFOUND for a stranger, and for a former member
// (removed from a group, not back) the messages of their last membership.
func (db *DB) formerHistory(ctx context.Context, conversationID, viewer string, beforeSeq, bt int64, limit int) ([]*parley.Message, error) {
	_, err := db.Member(ctx, conversationID, viewer)
	switch {
	case err == nil:
		return []*parley.Message{}, nil
	case parley.ErrorCode(err) != parley.ENOTFOUND:
		return nil, err
	}
	var from, upTo int64
	if err := db.queryRow(ctx, `SELECT joined_seq, left_seq FROM former_members WHERE user_id = ? AND conversation_id = ?
		ORDER BY left_change DESC LIMIT 1`, viewer, conversationID).Scan(&from, &upTo); err != nil {
		return nil, notFound(err, "conversation")
	}
	if beforeSeq <= 0 || beforeSeq > upTo+1 {
		beforeSeq = upTo + 1
	}
	rows, err := db.query(ctx, `SELECT `+messageColumns+` FROM messages m
		WHERE m.conversation_id = ? AND m.seq > ? AND m.seq < ? AND m.sent_at < ? AND `+notHidden+`
		ORDER BY m.seq DESC LIMIT ?`, conversationID, from, beforeSeq, bt, viewer, limit)
	msgs, err := collect(rows, err, scanMessage)
	if err != nil {
		return nil, err
	}
	return msgs, db.withReactions(ctx, msgs)
}

// SetReaction implements parley.MessageStore.
func (db *DB) SetReaction(ctx context.Context, messageID, userID, reaction string, at time.Time, ch *parley.Change) error {
	return db.inTx(ctx, func(tx *Tx) error {
		var err error
		if reaction == "" {
			_, err = tx.exec(ctx, `DELETE FROM message_reactions WHERE message_id = ? AND user_id = ?`, messageID, userID)
		} else {
			_, err = tx.exec(ctx, `INSERT INTO message_reactions (message_id, user_id, reaction, created_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (message_id, user_id) DO UPDATE SET reaction = excluded.reaction, created_at = excluded.created_at`,
				messageID, userID, reaction, parley.Millis(at))
		}
		if err != nil {
			return err
		}
		return tx.addChanges(ctx, ch)
	})
}

// EditMessage implements parley.MessageStore.
func (db *DB) EditMessage(ctx context.Context, messageID, content, contentHash string, at time.Time, ch *parley.Change) error {
	return db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE messages SET content = ?, content_hash = ?, edited_at = ? WHERE id = ? AND deleted_for_everyone = ?`,
			content, contentHash, parley.Millis(at), messageID, false)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return parley.Errorf(parley.ENOTFOUND, "message not found")
		}
		return tx.addChanges(ctx, ch)
	})
}

// DeleteForEveryone implements parley.MessageStore.
func (db *DB) DeleteForEveryone(ctx context.Context, messageID string, ch *parley.Change) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if err := tx.releaseMedia(ctx, `?`, messageID); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `UPDATE messages SET content = '', content_hash = '', media_id = '', deleted_for_everyone = ? WHERE id = ?`,
			true, messageID); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM message_reactions WHERE message_id = ?`, messageID); err != nil {
			return err
		}
		// Edits carry the content they set: they leave the sync log with
		// it, so that the content is nowhere once deleted for everyone.
		if _, err := tx.exec(ctx, `DELETE FROM changes WHERE message_id = ? AND event = ?`, messageID, parley.EventMessageEdited); err != nil {
			return err
		}
		return tx.addChanges(ctx, ch)
	})
}

// HideMessage implements parley.MessageStore.
func (db *DB) HideMessage(ctx context.Context, messageID, userID string, ch *parley.Change) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `INSERT INTO message_hidden (message_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, messageID, userID); err != nil {
			return err
		}
		return tx.addChanges(ctx, ch)
	})
}

// HiddenBy implements parley.MessageStore.
func (db *DB) HiddenBy(ctx context.Context, messageID string) ([]string, error) {
	rows, err := db.query(ctx, `SELECT user_id FROM message_hidden WHERE message_id = ?`, messageID)
	return collect(rows, err, scanString)
}
