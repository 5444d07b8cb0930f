package sqlstore

import (
	"context"
	"database/sql"
	"sort"
	"strings"
	"time"

	"github.com/parley-chat/parley"
)

const messageColumns = `m.id, m.conversation_id, m.seq, m.sender_id, m.recipient_id, COALESCE(m.client_message_id, ''), m.content,
	m.content_hash, m.type, m.media_id, m.reply_to_id, m.sent_at, m.edited_at, m.deleted_for_everyone`

func scanMessage(s scanner) (*parley.Message, error) {
	var m parley.Message
	var sent, edited int64
	err := s.Scan(&m.ID, &m.ConversationID, &m.Seq, &m.SenderID, &m.RecipientID, &m.ClientMessageID, &m.Content,
		&m.ContentHash, &m.Type, &m.MediaID, &m.ReplyToID, &sent, &edited, &m.DeletedForEveryone)
	if err != nil {
		return nil, err
	}
	m.SentAt, m.EditedAt = parley.FromMillis(sent), parley.FromMillis(edited)
	return &m, nil
}

func collectMessages(rows *sql.Rows, err error) ([]*parley.Message, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*parley.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func directKey(a, b string) string {
	if a > b {
		a, b = b, a
	}
	return a + "|" + b
}

// FindDirectConversation implements parley.MessageStore.
func (db *DB) FindDirectConversation(ctx context.Context, a, b string) (*parley.Conversation, error) {
	var c parley.Conversation
	var last, created int64
	err := db.queryRow(ctx, `SELECT id, kind, last_seq, last_message_at, created_at FROM conversations WHERE direct_key = ?`, directKey(a, b)).
		Scan(&c.ID, &c.Kind, &c.LastSeq, &last, &created)
	if err != nil {
		return nil, notFound(err, "conversation")
	}
	c.LastMessageAt, c.CreatedAt = parley.FromMillis(last), parley.FromMillis(created)
	return &c, nil
}

// DirectConversation implements parley.MessageStore.
func (db *DB) DirectConversation(ctx context.Context, a, b string, now time.Time) (*parley.Conversation, error) {
	c, err := db.FindDirectConversation(ctx, a, b)
	if err == nil || parley.ErrorCode(err) != parley.ENOTFOUND {
		return c, err
	}
	key := directKey(a, b)
	id := parley.NewID("conv")
	err = db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `INSERT INTO conversations (id, kind, direct_key, created_at) VALUES (?, ?, ?, ?)`,
			id, parley.KindDirect, key, parley.Millis(now)); err != nil {
			return err
		}
		for _, u := range []string{a, b} {
			if _, err := tx.exec(ctx, `INSERT INTO conversation_members (conversation_id, user_id, joined_at) VALUES (?, ?, ?)`,
				id, u, parley.Millis(now)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && !isUniqueViolation(err) { // a concurrent first message created it: read theirs
		return nil, err
	}
	return db.FindDirectConversation(ctx, a, b)
}

// SendMessages implements parley.MessageStore.
//
// A batch is one transaction. If it fails as a whole, each send is retried
// in its own transaction, so that one bad send (or another node winning a
// clientMessageId race) fails only itself: its error is in its Err and the
// others commit. The error returned is then nil.
func (db *DB) SendMessages(ctx context.Context, batch []*parley.Send) error {
	err := db.inTx(ctx, func(tx *Tx) error { return tx.sendMessages(ctx, batch) })
	if err != nil && len(batch) > 1 {
		for _, s := range batch {
			s.Duplicate, s.Err = false, nil
			if err := db.SendMessages(ctx, []*parley.Send{s}); err != nil {
				s.Err, s.Recipients = err, nil
			}
		}
		return nil
	}
	if err != nil && isUniqueViolation(err) && len(batch) == 1 {
		// Lost the race for a clientMessageId: answer with the winner.
		s := batch[0]
		m, err2 := scanMessage(db.queryRow(ctx, `SELECT `+messageColumns+` FROM messages m WHERE sender_id = ? AND client_message_id = ?`,
			s.Message.SenderID, s.Message.ClientMessageID))
		if err2 != nil {
			return err
		}
		if m.ConversationID != s.Message.ConversationID {
			s.Err = errClientIDReused
			return nil
		}
		*s.Message, s.Duplicate = *m, true
		return nil
	}
	return err
}

// sendMessages commits a batch with a fixed number of statements per
// batch rather than per message: one block lookup, one duplicate lookup,
// one seq update per conversation (in id order, so concurrent committers
// lock rows in the same order), and multi-row inserts of the messages and
// their changes.
func (tx *Tx) sendMessages(ctx context.Context, batch []*parley.Send) error {
	blocked, err := tx.blockedPairs(ctx, batch)
	if err != nil {
		return err
	}
	prev, err := tx.existingClientIDs(ctx, batch)
	if err != nil {
		return err
	}
	seen := map[string]*parley.Send{} // first send of each clientMessageId in the batch
	reused := map[*parley.Send]bool{} // clientMessageId already used in another conversation
	byConv := map[string][]*parley.Send{}
	var convs []string
	for _, s := range batch {
		m := s.Message
		s.Err, s.Recipients, s.Duplicate = nil, nil, false
		if m.RecipientID != "" && blocked[pairKey(m.SenderID, m.RecipientID)] {
			s.Err = parley.Errorf(parley.EBLOCKED, "you cannot message this user")
			continue
		}
		if m.ClientMessageID != "" {
			key := m.SenderID + "\x00" + m.ClientMessageID
			if first := prev[key]; first != nil && first.ConversationID == m.ConversationID {
				*m, s.Duplicate = *first, true
				continue
			}
			if first := seen[key]; first != nil && first.Message.ConversationID == m.ConversationID {
				s.Duplicate = true // filled once the first one has its seq
				continue
			}
			if prev[key] != nil || seen[key] != nil {
				// Refused below, after the access checks, so that a
				// conflict is never what answers someone without access.
				reused[s] = true
			} else {
				seen[key] = s
			}
		}
		if byConv[m.ConversationID] == nil {
			convs = append(convs, m.ConversationID)
		}
		byConv[m.ConversationID] = append(byConv[m.ConversationID], s)
	}
	sort.Strings(convs)
	var msgs []*parley.Message
	var changes []*parley.Change
	for _, convID := range convs {
		sends := byConv[convID]
		event := parley.EventNewMessage
		if sends[0].Message.RecipientID == "" { // group messages: checked under the group's lock
			st, err := tx.groupSendState(ctx, convID)
			if err != nil {
				return err
			}
			ok := sends[:0:0]
			for _, s := range sends {
				if s.Err = st.check(s.Message.SenderID); s.Err == nil {
					s.Recipients = st.members
					ok = append(ok, s)
				}
			}
			sends, event = ok, parley.EventNewGroupMessage
		}
		if len(reused) > 0 {
			ok := sends[:0:0]
			for _, s := range sends {
				if reused[s] {
					s.Err = errClientIDReused
				} else {
					ok = append(ok, s)
				}
			}
			sends = ok
		}
		if len(sends) == 0 {
			continue
		}
		var last int64
		lastAt := sends[len(sends)-1].Message.SentAt
		if err := tx.queryRow(ctx, `UPDATE conversations SET last_seq = last_seq + ?, last_message_at = ? WHERE id = ? RETURNING last_seq`,
			len(sends), parley.Millis(lastAt), convID).Scan(&last); err != nil {
			return notFound(err, "conversation")
		}
		for i, s := range sends {
			s.Message.Seq = last - int64(len(sends)-1-i)
			msgs = append(msgs, s.Message)
			changes = append(changes, &parley.Change{ConversationID: convID, Seq: s.Message.Seq, Event: event,
				MessageID: s.Message.ID, CreatedAt: s.Message.SentAt})
		}
	}
	// Repeats within the batch answer as the first one did, now complete.
	for _, s := range batch {
		m := s.Message
		if first := seen[m.SenderID+"\x00"+m.ClientMessageID]; s.Duplicate && m.Seq == 0 && first != nil {
			if first.Err != nil {
				s.Duplicate, s.Err = false, first.Err
			} else {
				*m = *first.Message
			}
		}
	}
	if err := tx.insertMessages(ctx, msgs); err != nil {
		return err
	}
	return tx.addChanges(ctx, changes...)
}

// errClientIDReused refuses a send whose clientMessageId the sender already
// used in another conversation: the key makes a retry safe, it never
// answers with (or reveals) a message of another conversation.
var errClientIDReused = parley.Errorf(parley.ECONFLICT, "clientMessageId was already used for a message in another conversation")

// pairKey names the unordered pair of users a and b.
func pairKey(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return a + "\x00" + b
}

// blockedPairs returns the pairs (by pairKey) of the batch's direct senders
// and recipients where either blocked the other.
func (tx *Tx) blockedPairs(ctx context.Context, batch []*parley.Send) (map[string]bool, error) {
	var pairs []any // blocker, blocked, ...: both directions of each pair
	asked := map[string]bool{}
	for _, s := range batch {
		m := s.Message
		if m.RecipientID == "" || asked[pairKey(m.SenderID, m.RecipientID)] {
			continue
		}
		asked[pairKey(m.SenderID, m.RecipientID)] = true
		pairs = append(pairs, m.SenderID, m.RecipientID, m.RecipientID, m.SenderID)
	}
	out := map[string]bool{}
	for len(pairs) > 0 {
		n := chunk(len(pairs) / 2)
		rows, err := tx.query(ctx, `SELECT user_id, blocked_id FROM blocks WHERE (user_id, blocked_id) IN (VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, ?),", n), ",")+`)`, pairs[:2*n]...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var a, b string
			if err := rows.Scan(&a, &b); err != nil {
				rows.Close()
				return nil, err
			}
			out[pairKey(a, b)] = true
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		pairs = pairs[2*n:]
	}
	return out, nil
}

// existingClientIDs returns the stored messages that the batch's
// clientMessageIds repeat, by sender and clientMessageId.
func (tx *Tx) existingClientIDs(ctx context.Context, batch []*parley.Send) (map[string]*parley.Message, error) {
	var pairs []any // sender, clientMessageId, ...
	for _, s := range batch {
		if s.Message.ClientMessageID != "" {
			pairs = append(pairs, s.Message.SenderID, s.Message.ClientMessageID)
		}
	}
	out := map[string]*parley.Message{}
	for len(pairs) > 0 {
		n := chunk(len(pairs) / 2)
		rows, err := tx.query(ctx, `SELECT `+messageColumns+` FROM messages m WHERE (m.sender_id, m.client_message_id) IN (VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, ?),", n), ",")+`)`, pairs[:2*n]...)
		if err != nil {
			return nil, err
		}
		list, err := collectMessages(rows, nil)
		if err != nil {
			return nil, err
		}
		for _, m := range list {
			out[m.SenderID+"\x00"+m.ClientMessageID] = m
		}
		pairs = pairs[2*n:]
	}
	return out, nil
}

// chunk picks how many of n rows one multi-row statement takes. A few
// fixed sizes keep the number of distinct statement texts (each prepared
// and cached once) small.
func chunk(n int) int {
	for _, size := range []int{128, 32, 8} {
		if n >= size {
			return size
		}
	}
	return 1
}

// insertMessages stores msgs with multi-row inserts.
func (tx *Tx) insertMessages(ctx context.Context, msgs []*parley.Message) error {
	const cols = 12
	row := "(" + placeholders(cols) + ")"
	for len(msgs) > 0 {
		n := chunk(len(msgs))
		args := make([]any, 0, n*cols)
		for _, m := range msgs[:n] {
			var cmid any
			if m.ClientMessageID != "" {
				cmid = m.ClientMessageID
			}
			args = append(args, m.ID, m.ConversationID, m.Seq, m.SenderID, m.RecipientID, cmid, m.Content, m.ContentHash, m.Type,
				m.MediaID, m.ReplyToID, parley.Millis(m.SentAt))
		}
		if _, err := tx.exec(ctx, `INSERT INTO messages (id, conversation_id, seq, sender_id, recipient_id, client_message_id, content,
			content_hash, type, media_id, reply_to_id, sent_at) VALUES `+strings.TrimSuffix(strings.Repeat(row+",", n), ","), args...); err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

// addChanges appends to the sync log. The ids come from one counter row
// updated last, so on PostgreSQL concurrent writers commit their changes in
// id order (the row lock is held until commit) and a reader that has seen
// id N has seen every id below N.
func (tx *Tx) addChanges(ctx context.Context, changes ...*parley.Change) error {
	n := 0
	for _, c := range changes {
		if c != nil {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	var last int64
	if err := tx.queryRow(ctx, `UPDATE change_counter SET last = last + ? WHERE id = 1 RETURNING last`, n).Scan(&last); err != nil {
		return err
	}
	id := last - int64(n)
	list := make([]*parley.Change, 0, n)
	for _, c := range changes {
		if c != nil {
			id++
			c.ID = id
			list = append(list, c)
		}
	}
	const cols = 9
	row := "(" + placeholders(cols) + ")"
	for len(list) > 0 {
		k := chunk(len(list))
		args := make([]any, 0, k*cols)
		for _, c := range list[:k] {
			args = append(args, c.ID, c.ConversationID, c.Seq, c.Event, c.MessageID, c.OnlyUser, c.ToUser, string(c.Payload), parley.Millis(c.CreatedAt))
		}
		if _, err := tx.exec(ctx, `INSERT INTO changes (id, conversation_id, seq, event, message_id, only_user, to_user, payload, created_at)
			VALUES `+strings.TrimSuffix(strings.Repeat(row+",", k), ","), args...); err != nil {
			return err
		}
		list = list[k:]
	}
	return nil
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
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var mid string
		var r parley.Reaction
		if err := rows.Scan(&mid, &r.UserID, &r.Reaction); err != nil {
			return err
		}
		if m := byID[mid]; m != nil {
			m.Reactions = append(m.Reactions, r)
		}
	}
	return rows.Err()
}

// MessageByID implements parley.MessageStore.
func (db *DB) MessageByID(ctx context.Context, id string) (*parley.Message, error) {
	m, err := scanMessage(db.queryRow(ctx, `SELECT `+messageColumns+` FROM messages m WHERE id = ?`, id))
	if err != nil {
		return nil, notFound(err, "message")
	}
	return m, db.withReactions(ctx, []*parley.Message{m})
}

const memberColumns = `conversation_id, user_id, role, joined_at, joined_seq, joined_change, delivered_seq, read_seq, shown_read_seq`

func scanMember(s scanner) (*parley.Member, error) {
	var m parley.Member
	var joined int64
	if err := s.Scan(&m.ConversationID, &m.UserID, &m.Role, &joined, &m.JoinedSeq, &m.JoinedChange, &m.DeliveredSeq, &m.ReadSeq, &m.ShownReadSeq); err != nil {
		return nil, err
	}
	m.JoinedAt = parley.FromMillis(joined)
	return &m, nil
}

// Member implements parley.MessageStore.
func (db *DB) Member(ctx context.Context, conversationID, userID string) (*parley.Member, error) {
	m, err := scanMember(db.queryRow(ctx, `SELECT `+memberColumns+` FROM conversation_members WHERE conversation_id = ? AND user_id = ?`,
		conversationID, userID))
	return m, notFound(err, "conversation")
}

// Members implements parley.MessageStore.
func (db *DB) Members(ctx context.Context, conversationID string) ([]*parley.Member, error) {
	rows, err := db.query(ctx, `SELECT `+memberColumns+` FROM conversation_members WHERE conversation_id = ? ORDER BY joined_at, user_id`, conversationID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*parley.Member
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

const notHidden = `NOT EXISTS (SELECT 1 FROM message_hidden h WHERE h.user_id = ? AND h.message_id = m.id)`

// History implements parley.MessageStore.
func (db *DB) History(ctx context.Context, conversationID, viewer string, beforeSeq int64, before time.Time, limit int) ([]*parley.Message, error) {
	// A member reads from where they joined; a former member (removed
	// from a group, not back) reads the messages of their last membership.
	from, upTo := int64(0), int64(1<<62)
	mem, err := db.Member(ctx, conversationID, viewer)
	switch {
	case err == nil:
		from = mem.JoinedSeq
	case parley.ErrorCode(err) == parley.ENOTFOUND:
		if err := db.queryRow(ctx, `SELECT joined_seq, left_seq FROM former_members WHERE user_id = ? AND conversation_id = ?
			ORDER BY left_change DESC LIMIT 1`, viewer, conversationID).Scan(&from, &upTo); err != nil {
			return nil, notFound(err, "conversation")
		}
	default:
		return nil, err
	}
	if beforeSeq <= 0 || beforeSeq > upTo+1 {
		beforeSeq = upTo + 1
	}
	bt := int64(1 << 62)
	if !before.IsZero() {
		bt = parley.Millis(before)
	}
	msgs, err := collectMessages(db.query(ctx, `SELECT `+messageColumns+` FROM messages m
		WHERE m.conversation_id = ? AND m.seq > ? AND m.seq < ? AND m.sent_at < ? AND `+notHidden+`
		ORDER BY m.seq DESC LIMIT ?`, conversationID, from, beforeSeq, bt, viewer, limit))
	if err != nil {
		return nil, err
	}
	return msgs, db.withReactions(ctx, msgs)
}

// ReceiptMarks implements parley.MessageStore.
func (db *DB) ReceiptMarks(ctx context.Context, conversationID, userID, kind string, fromSeq, toSeq int64) ([]parley.ReceiptMark, error) {
	rows, err := db.query(ctx, `SELECT seq, at FROM receipt_marks
		WHERE conversation_id = ? AND user_id = ? AND kind = ? AND seq >= ? AND seq <= ?
		UNION ALL
		SELECT seq, at FROM (SELECT seq, at FROM receipt_marks WHERE conversation_id = ? AND user_id = ? AND kind = ? AND seq > ?
			ORDER BY seq LIMIT 1) AS next_mark
		ORDER BY seq`, conversationID, userID, kind, fromSeq, toSeq, conversationID, userID, kind, toSeq)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []parley.ReceiptMark
	for rows.Next() {
		var m parley.ReceiptMark
		var at int64
		if err := rows.Scan(&m.Seq, &at); err != nil {
			return nil, err
		}
		m.At = parley.FromMillis(at)
		out = append(out, m)
	}
	return out, rows.Err()
}

// AdvanceReceipt implements parley.MessageStore.
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
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// Changes implements parley.MessageStore.
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
	if err != nil {
		return nil, nil, err
	}
	var out []*parley.Change
	var ids []any
	for rows.Next() {
		var c parley.Change
		var payload string
		var created int64
		if err := rows.Scan(&c.ID, &c.ConversationID, &c.Seq, &c.Event, &c.MessageID, &c.OnlyUser, &c.ToUser, &payload, &created); err != nil {
			rows.Close()
			return nil, nil, err
		}
		c.Payload, c.CreatedAt = []byte(payload), parley.FromMillis(created)
		if c.Event == parley.EventNewMessage || c.Event == parley.EventNewGroupMessage {
			ids = append(ids, c.MessageID)
		}
		out = append(out, &c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	msgs := map[string]*parley.Message{}
	if len(ids) > 0 {
		list, err := collectMessages(db.query(ctx, `SELECT `+messageColumns+` FROM messages m WHERE m.id IN (`+placeholders(len(ids))+`)
			AND `+notHidden, append(ids, userID)...))
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

// FirstUndeliveredChange implements parley.MessageStore.
func (db *DB) FirstUndeliveredChange(ctx context.Context, userID string) (int64, error) {
	var id int64
	err := db.queryRow(ctx, `SELECT COALESCE(MIN(c.id), 0) FROM conversation_members mm
		JOIN messages m ON m.conversation_id = mm.conversation_id AND m.seq > mm.delivered_seq AND m.seq > mm.joined_seq
			AND m.sender_id <> mm.user_id
		JOIN changes c ON c.message_id = m.id AND c.event IN ('`+parley.EventNewMessage+`', '`+parley.EventNewGroupMessage+`')
		WHERE mm.user_id = ?`, userID).Scan(&id)
	return id, err
}

// HeadChange implements parley.MessageStore.
func (db *DB) HeadChange(ctx context.Context) (int64, error) {
	var last int64
	err := db.queryRow(ctx, `SELECT last FROM change_counter WHERE id = 1`).Scan(&last)
	return last, err
}

// Chats implements parley.MessageStore.
func (db *DB) Chats(ctx context.Context, userID string, limit int) ([]*parley.Chat, error) {
	// One statement for the page with each chat's peer, last visible
	// message id and unread count (index probes per row, no round trip
	// per row), and one for those last messages: a fixed number of
	// queries for any page size.
	rows, err := db.query(ctx, `SELECT c.id, c.kind, c.last_seq, c.last_message_at, c.created_at,
		mm.conversation_id, mm.user_id, mm.role, mm.joined_at, mm.joined_seq, mm.delivered_seq, mm.read_seq,
		COALESCE((SELECT o.user_id FROM conversation_members o WHERE o.conversation_id = c.id AND o.user_id <> mm.user_id LIMIT 1), ''),
		COALESCE((SELECT m.id FROM messages m WHERE m.conversation_id = c.id AND m.seq > mm.joined_seq
			AND NOT EXISTS (SELECT 1 FROM message_hidden h WHERE h.user_id = mm.user_id AND h.message_id = m.id)
			ORDER BY m.seq DESC LIMIT 1), ''),
		(SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id
			AND m.seq > CASE WHEN mm.read_seq > mm.joined_seq THEN mm.read_seq ELSE mm.joined_seq END
			AND m.sender_id <> mm.user_id AND m.deleted_for_everyone = ?)
		FROM conversation_members mm JOIN conversations c ON c.id = mm.conversation_id
		WHERE mm.user_id = ? AND (c.kind <> 'direct' OR c.last_seq > 0)
		ORDER BY CASE WHEN c.last_message_at > 0 THEN c.last_message_at ELSE c.created_at END DESC, c.id LIMIT ?`, false, userID, limit)
	if err != nil {
		return nil, err
	}
	var out []*parley.Chat
	lastOf := map[string]*parley.Chat{}
	var ids []any
	for rows.Next() {
		var c parley.Conversation
		var m parley.Member
		var last, created, joined int64
		var lastID string
		ch := &parley.Chat{Conversation: &c, Member: &m}
		if err := rows.Scan(&c.ID, &c.Kind, &c.LastSeq, &last, &created, &m.ConversationID, &m.UserID, &m.Role, &joined,
			&m.JoinedSeq, &m.DeliveredSeq, &m.ReadSeq, &ch.PeerID, &lastID, &ch.Unread); err != nil {
			rows.Close()
			return nil, err
		}
		c.LastMessageAt, c.CreatedAt, m.JoinedAt = parley.FromMillis(last), parley.FromMillis(created), parley.FromMillis(joined)
		out = append(out, ch)
		if lastID != "" {
			lastOf[lastID] = ch
			ids = append(ids, lastID)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var lasts []*parley.Message
	for len(ids) > 0 {
		n := chunk(len(ids))
		msgs, err := collectMessages(db.query(ctx, `SELECT `+messageColumns+` FROM messages m WHERE m.id IN (`+placeholders(n)+`)`, ids[:n]...))
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if ch := lastOf[m.ID]; ch != nil {
				ch.LastMessage = m
				lasts = append(lasts, m)
			}
		}
		ids = ids[n:]
	}
	return out, db.withReactions(ctx, lasts)
}

// DirectPeers implements parley.MessageStore.
func (db *DB) DirectPeers(ctx context.Context, userID string) ([]string, error) {
	return db.ids(ctx, `SELECT o.user_id FROM conversation_members mm
		JOIN conversations c ON c.id = mm.conversation_id AND c.kind = 'direct' AND c.last_seq > 0
		JOIN conversation_members o ON o.conversation_id = mm.conversation_id AND o.user_id <> mm.user_id
		WHERE mm.user_id = ? ORDER BY o.user_id`, userID)
}
