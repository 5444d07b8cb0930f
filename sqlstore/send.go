package sqlstore

// The send path: a batch of messages of any conversation kind committed in
// one transaction (parley.MessageStore.SendMessages).

import (
	"context"
	"sort"
	"strings"

	"github.com/parley-chat/parley"
)

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
// batch rather than per message: one duplicate lookup, what each kind's
// send policy reads, one seq update per conversation (in id order, so
// concurrent committers lock rows in the same order), and multi-row
// inserts of the messages and their changes, then the analytics counters
// (one upsert per user and day, countSends).
func (tx *Tx) sendMessages(ctx context.Context, batch []*parley.Send) error {
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
				reused[s] = true // refused below, after the send policy
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
	if err := tx.admit(ctx, convs, byConv); err != nil {
		return err
	}
	var withMedia []*parley.Send
	for _, convID := range convs {
		for _, s := range byConv[convID] {
			if s.Err == nil && reused[s] {
				// After the policy: a conflict never answers someone
				// without access.
				s.Err = errClientIDReused
			}
			if s.Err == nil && s.Message.MediaID != "" {
				withMedia = append(withMedia, s)
			}
		}
	}
	if err := tx.useMedia(ctx, withMedia); err != nil {
		return err
	}
	var msgs []*parley.Message
	var changes []*parley.Change
	for _, convID := range convs {
		sends := byConv[convID][:0:0]
		for _, s := range byConv[convID] {
			if s.Err == nil {
				sends = append(sends, s)
			}
		}
		if len(sends) == 0 {
			continue
		}
		event := parley.MessageEvent(parley.KindOf(convID))
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
	if err := tx.addChanges(ctx, changes...); err != nil {
		return err
	}
	return tx.countSends(ctx, batch)
}

// errClientIDReused refuses a send whose clientMessageId the sender already
// used in another conversation: the key makes a retry safe, it never
// answers with (or reveals) a message of another conversation.
var errClientIDReused = parley.Errorf(parley.ECONFLICT, "clientMessageId was already used for a message in another conversation")

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
		list, err := collect(rows, err, scanMessage)
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
	const cols = 13
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
				m.MediaID, m.ReplyToID, m.ReplyToStatusID, parley.Millis(m.SentAt))
		}
		if _, err := tx.exec(ctx, `INSERT INTO messages (id, conversation_id, seq, sender_id, recipient_id, client_message_id, content,
			content_hash, type, media_id, reply_to_id, reply_to_status_id, sent_at) VALUES `+strings.TrimSuffix(strings.Repeat(row+",", n), ","), args...); err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}
