package sqlstore

// Conversations and their members: what every kind of conversation shares
// (parley.ConversationStore).

import (
	"context"
	"time"

	"github.com/parley-chat/parley"
)

func directKey(a, b string) string {
	if a > b {
		a, b = b, a
	}
	return a + "|" + b
}

// FindDirectConversation implements parley.ConversationStore.
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

// DirectConversation implements parley.ConversationStore.
func (db *DB) DirectConversation(ctx context.Context, a, b string, now time.Time) (*parley.Conversation, error) {
	c, err := db.FindDirectConversation(ctx, a, b)
	if err == nil || parley.ErrorCode(err) != parley.ENOTFOUND {
		return c, err
	}
	key := directKey(a, b)
	id := parley.NewConversationID(parley.KindDirect)
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

// Member implements parley.ConversationStore.
func (db *DB) Member(ctx context.Context, conversationID, userID string) (*parley.Member, error) {
	m, err := scanMember(db.queryRow(ctx, `SELECT `+memberColumns+` FROM conversation_members WHERE conversation_id = ? AND user_id = ?`,
		conversationID, userID))
	return m, notFound(err, "conversation")
}

// Members implements parley.ConversationStore.
func (db *DB) Members(ctx context.Context, conversationID string) ([]*parley.Member, error) {
	rows, err := db.query(ctx, `SELECT `+memberColumns+` FROM conversation_members WHERE conversation_id = ? ORDER BY joined_at, user_id`, conversationID)
	return collect(rows, err, scanMember)
}

// Chats implements parley.ConversationStore.
func (db *DB) Chats(ctx context.Context, userID string, limit int) ([]*parley.Chat, error) {
	// One statement for the page with each chat's peer (in a direct chat
	// the peer's whole membership, whose cursors the viewer reads), last
	// visible message id and unread count (index probes per row, no round
	// trip per row), and one for those last messages: a fixed number of
	// queries for any page size. The page is chosen first (p) and only its
	// rows run the per-row subqueries: a sort computes every column of
	// every row it sorts, so with them in the same SELECT a page of 200
	// chats of a user with 1,000 conversations ran them 1,000 times. As in
	// History, hidden messages are looked for only if the user hid any
	// (the uncorrelated EXISTS runs once). The page's ids are sorted with
	// their activity alone, read by one probe of conversations per
	// membership, and an empty direct chat (hidden) sorts last with
	// activity -1: the first limit rows hold every visible chat before
	// any hidden one, so dropping the hidden ones after the LIMIT leaves
	// the page. As a join, PostgreSQL planned that pick as a scan of the
	// whole conversations table (4.5 of 9.3 ms with 20,000 conversations);
	// the scalar subquery is an index probe per membership on both
	// databases.
	rows, err := db.query(ctx, `SELECT pc.id, pc.kind, pc.last_seq, pc.last_message_at, pc.created_at,
		p.conversation_id, p.user_id, p.role, p.joined_at, p.joined_seq, p.joined_change, p.delivered_seq, p.read_seq, p.shown_read_seq,
		COALESCE(d.user_id, (SELECT o.user_id FROM conversation_members o WHERE o.conversation_id = pc.id AND o.user_id <> p.user_id LIMIT 1), ''),
		COALESCE(d.role, ''), COALESCE(d.joined_at, 0), COALESCE(d.joined_seq, 0), COALESCE(d.joined_change, 0),
		COALESCE(d.delivered_seq, 0), COALESCE(d.read_seq, 0), COALESCE(d.shown_read_seq, 0),
		COALESCE((SELECT m.id FROM messages m WHERE m.conversation_id = pc.id AND m.seq > p.joined_seq
			AND (NOT EXISTS (SELECT 1 FROM message_hidden WHERE user_id = ?)
				OR NOT EXISTS (SELECT 1 FROM message_hidden h WHERE h.user_id = p.user_id AND h.message_id = m.id))
			ORDER BY m.seq DESC LIMIT 1), ''),
		(SELECT COUNT(*) FROM messages m WHERE m.conversation_id = pc.id
			AND m.seq > CASE WHEN p.read_seq > p.joined_seq THEN p.read_seq ELSE p.joined_seq END
			AND m.sender_id <> p.user_id AND m.deleted_for_everyone = ?),
		p.muted_until
		FROM (SELECT s.conversation_id AS id,
				(SELECT CASE WHEN c.kind <> 'direct' OR c.last_seq > 0
					THEN CASE WHEN c.last_message_at > 0 THEN c.last_message_at ELSE c.created_at END ELSE -1 END
					FROM conversations c WHERE c.id = s.conversation_id) AS activity
			FROM conversation_members s WHERE s.user_id = ?
			ORDER BY activity DESC, s.conversation_id LIMIT ?) sel
		JOIN conversations pc ON pc.id = sel.id
		JOIN conversation_members p ON p.conversation_id = sel.id AND p.user_id = ?
		LEFT JOIN conversation_members d ON pc.kind = 'direct' AND d.conversation_id = sel.id AND d.user_id <> p.user_id
		WHERE pc.kind <> 'direct' OR pc.last_seq > 0
		ORDER BY sel.activity DESC, sel.id`, userID, false, userID, limit, userID)
	if err != nil {
		return nil, err
	}
	var out []*parley.Chat
	lastOf := map[string]*parley.Chat{}
	var ids []string
	err = each(rows, err, func(s scanner) error {
		var c parley.Conversation
		var m, peer parley.Member
		var last, created, joined, peerJoined, muted int64
		var lastID string
		ch := &parley.Chat{Conversation: &c, Member: &m}
		if err := s.Scan(&c.ID, &c.Kind, &c.LastSeq, &last, &created, &m.ConversationID, &m.UserID, &m.Role, &joined,
			&m.JoinedSeq, &m.JoinedChange, &m.DeliveredSeq, &m.ReadSeq, &m.ShownReadSeq, &ch.PeerID,
			&peer.Role, &peerJoined, &peer.JoinedSeq, &peer.JoinedChange, &peer.DeliveredSeq, &peer.ReadSeq, &peer.ShownReadSeq,
			&lastID, &ch.Unread, &muted); err != nil {
			return err
		}
		c.LastMessageAt, c.CreatedAt, m.JoinedAt = parley.FromMillis(last), parley.FromMillis(created), parley.FromMillis(joined)
		if c.Kind == parley.KindDirect {
			// Both members of a direct chat, for the viewer (the peer's
			// row is absent only in a chat with oneself).
			own := m
			ch.Members = []*parley.Member{&own}
			if peer.Role != "" {
				peer.ConversationID, peer.UserID, peer.JoinedAt = c.ID, ch.PeerID, parley.FromMillis(peerJoined)
				ch.Members = append(ch.Members, &peer)
			}
		}
		if muted != 0 {
			ch.MutedUntil = parley.FromMillis(muted)
		}
		out = append(out, ch)
		if lastID != "" {
			lastOf[lastID] = ch
			ids = append(ids, lastID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var lasts []*parley.Message
	// Each last message comes with the marks that date it for its
	// recipient (ReceiptMarks of its seq alone: the first at or after it),
	// so viewing the page reads no mark per row.
	err = db.inList(ids, func(list string, args []any) error {
		rows, err := db.query(ctx, `SELECT `+messageColumns+`,
			COALESCE((SELECT r.at FROM receipt_marks r WHERE r.conversation_id = m.conversation_id AND r.user_id = m.recipient_id
				AND r.kind = ? AND r.seq >= m.seq ORDER BY r.seq LIMIT 1), 0),
			COALESCE((SELECT r.at FROM receipt_marks r WHERE r.conversation_id = m.conversation_id AND r.user_id = m.recipient_id
				AND r.kind = ? AND r.seq >= m.seq ORDER BY r.seq LIMIT 1), 0)
			FROM messages m WHERE m.id IN (`+list+`)`, append([]any{parley.StatusDelivered, parley.StatusSeen}, args...)...)
		return each(rows, err, func(s scanner) error {
			var m parley.Message
			var sent, edited, delivered, seen int64
			if err := s.Scan(&m.ID, &m.ConversationID, &m.Seq, &m.SenderID, &m.RecipientID, &m.ClientMessageID, &m.Content,
				&m.ContentHash, &m.Type, &m.MediaID, &m.ReplyToID, &sent, &edited, &m.DeletedForEveryone, &m.ReplyToStatusID,
				&delivered, &seen); err != nil {
				return err
			}
			m.SentAt, m.EditedAt = parley.FromMillis(sent), parley.FromMillis(edited)
			if ch := lastOf[m.ID]; ch != nil {
				ch.LastMessage = &m
				ch.LastDeliveredAt, ch.LastSeenAt = parley.FromMillis(delivered), parley.FromMillis(seen)
				lasts = append(lasts, &m)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, db.withReactions(ctx, lasts)
}

// DirectPeers implements parley.ConversationStore.
func (db *DB) DirectPeers(ctx context.Context, userID string) ([]string, error) {
	return db.ids(ctx, `SELECT o.user_id FROM conversation_members mm
		JOIN conversations c ON c.id = mm.conversation_id AND c.kind = 'direct' AND c.last_seq > 0
		JOIN conversation_members o ON o.conversation_id = mm.conversation_id AND o.user_id <> mm.user_id
		WHERE mm.user_id = ? ORDER BY o.user_id`, userID)
}

// MuteConversation implements parley.ConversationStore.
func (db *DB) MuteConversation(ctx context.Context, conversationID, userID string, until time.Time) error {
	var ms int64
	if !until.IsZero() {
		ms = parley.Millis(until)
	}
	res, err := db.exec(ctx, `UPDATE conversation_members SET muted_until = ? WHERE conversation_id = ? AND user_id = ?`, ms, conversationID, userID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return parley.Errorf(parley.ENOTFOUND, "conversation not found")
	}
	return nil
}
