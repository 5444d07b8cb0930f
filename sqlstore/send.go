package sqlstore

// The send path: a batch of messages of any conversation kind committed in
// one transaction (parley.MessageStore.SendMessages).

import (
	"context"
	"sort"

	"github.com/parley-chat/parley"
)

// SendMessages implements parley.MessageStore.
//
// A batch is one transaction. If it fails as a whole, each send is retried
// in its own transaction, so that one bad send (or another node winning a
// clientMessageId race) fails only itself: its error is in its Err and the
// others commit. The error returned is then nil.
func (db *DB) SendMessages(ctx context.Context, batch []*parley.Send) error {
	err := db.inPipelinedTx(ctx, func(tx *Tx) error { return tx.sendMessages(ctx, batch) })
	if err != nil && len(batch) > 1 {
		for _, s := range batch {
			s.Duplicate, s.Err = false, nil
			if err := db.SendMessages(ctx, []*parley.Send{s}); err != nil {
				s.Err, s.Recipients, s.Audience = err, nil, nil
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
// batch rather than per message or per conversation: one duplicate lookup,
// what each kind's send policy reads, one seq update of all the
// conversations (locked in id order, so concurrent committers lock rows in
// the same order), the analytics counters that read back what they add
// (countSends), then one statement on PostgreSQL (addChangesAfter) with
// the insert of the messages, the day's totals and the changes, whose
// counter row every writer shares. See rowSet. On PostgreSQL the
// transaction is pipelined (inPipelinedTx) and a direct batch is three
// round trips: BEGIN with the duplicate lookup and the blocks; the seqs
// with the user counters; the messages, counters and changes with COMMIT.
func (tx *Tx) sendMessages(ctx context.Context, batch []*parley.Send) error {
	// The reads that need nothing but the batch go together (on
	// PostgreSQL with BEGIN, one round trip): the repeated
	// clientMessageIds, and the blocks between the direct senders and
	// recipients, which the direct policy admits by (sendReads).
	prev, err := tx.existingClientIDs(ctx, batch)
	if err != nil {
		return err
	}
	var direct []*parley.Send
	for _, s := range batch {
		if parley.KindOf(s.Message.ConversationID) == parley.KindDirect {
			direct = append(direct, s)
		}
	}
	var reads sendReads
	if reads.blocked, err = tx.blockedPairs(ctx, direct); err != nil {
		return err
	}
	if err := tx.flush(ctx); err != nil {
		return err
	}
	seen := map[string]*parley.Send{} // first send of each clientMessageId in the batch
	reused := map[*parley.Send]bool{} // clientMessageId already used in another conversation
	byConv := map[string][]*parley.Send{}
	var convs []string
	for _, s := range batch {
		m := s.Message
		s.Err, s.Recipients, s.Audience, s.Duplicate = nil, nil, nil, false
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
	if err := tx.admit(ctx, convs, byConv, &reads); err != nil {
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
	posted := map[string][]*parley.Send{} // by conversation: the sends that get a seq
	seqs := newRowSet("text", "bigint", "bigint").reserve(len(convs))
	for _, convID := range convs {
		var sends []*parley.Send
		for _, s := range byConv[convID] {
			if s.Err == nil {
				sends = append(sends, s)
			}
		}
		if len(sends) > 0 {
			posted[convID] = sends
			seqs.add(convID, int64(len(sends)), parley.Millis(sends[len(sends)-1].Message.SentAt))
		}
	}
	// The seqs go with the user counters' upsert, whose result is read
	// at once (on PostgreSQL one round trip for both); the day's totals
	// are written last, with the sync log.
	last, err := tx.advanceSeqs(ctx, seqs)
	if err != nil {
		return err
	}
	dayTotals, err := tx.countSends(ctx, batch)
	if err != nil {
		return err
	}
	if err := tx.flush(ctx); err != nil {
		return err
	}
	for _, convID := range convs {
		sends := posted[convID]
		if len(sends) == 0 {
			continue
		}
		end, ok := last[convID]
		if !ok {
			return parley.Errorf(parley.ENOTFOUND, "conversation not found")
		}
		event := parley.MessageEvent(parley.KindOf(convID))
		for i, s := range sends {
			s.Message.Seq = end - int64(len(sends)-1-i)
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
	// Then the rest in one statement on PostgreSQL (addChangesAfter): the
	// messages, the day's totals and, last in the transaction, the sync
	// log, whose counter row is the lock every writer shares.
	if err := tx.countConversationDays(ctx, batch); err != nil {
		return err
	}
	return tx.addChangesAfter(ctx, append(insertMessages(tx.db.dialect, msgs), dayTotals...), changes...)
}

// errClientIDReused refuses a send whose clientMessageId the sender already
// used in another conversation: the key makes a retry safe, it never
// answers with (or reveals) a message of another conversation.
var errClientIDReused = parley.Errorf(parley.ECONFLICT, "clientMessageId was already used for a message in another conversation")

// existingClientIDs returns the stored messages that the batch's
// clientMessageIds repeat, by sender and clientMessageId. The read is
// queued (Tx.later): the map is complete after the next flush.
func (tx *Tx) existingClientIDs(ctx context.Context, batch []*parley.Send) (map[string]*parley.Message, error) {
	keys := newRowSet("text", "text").reserve(len(batch)) // sender, clientMessageId
	for _, s := range batch {
		if s.Message.ClientMessageID != "" {
			keys.add(s.Message.SenderID, s.Message.ClientMessageID)
		}
	}
	out := map[string]*parley.Message{}
	err := keys.each(tx.db.dialect, func(table string, args []any) error {
		return tx.laterCustom(ctx, `SELECT `+messageColumns+` FROM `+table+`
			JOIN messages m ON m.sender_id = v.column1 AND m.client_message_id = v.column2`, args, func(s scanner) error {
			m, err := scanMessage(s)
			if err == nil {
				out[m.SenderID+"\x00"+m.ClientMessageID] = m
			}
			return err
		})
	})
	return out, err
}

// advanceSeqs adds to each conversation's last_seq the number of messages
// the batch posts to it and sets its last_message_at (rows: id, count,
// time in ms), returning the new last_seq of each (queued: Tx.later; the
// map is complete after the next flush). On PostgreSQL the rows
// are locked in id order, the order every committer takes them in (see
// sendMessages), since one UPDATE over many rows locks them in whatever
// order its plan visits them: the UPDATE joins a CTE that locks them
// (FOR UPDATE after ORDER BY, so in that order), so it only reaches a row
// that CTE has already locked, and the rows before it in id order with it.
// Lock and update are one statement, one round trip. A batch to one
// conversation, the usual one at low load, needs no CTE: the UPDATE's own
// lock is all there is. SQLite has one writer.
func (tx *Tx) advanceSeqs(ctx context.Context, rows *rowSet) (map[string]int64, error) {
	last := map[string]int64{}
	err := rows.each(tx.db.dialect, func(table string, args []any) error {
		query := `UPDATE conversations SET last_seq = last_seq + v.column2, last_message_at = v.column3
			FROM ` + table + ` WHERE conversations.id = v.column1 RETURNING id, last_seq`
		if tx.db.dialect == Postgres && rows.len() > 1 {
			// COLLATE "C": the byte order of sort.Strings. The table's
			// arrays are read twice, from the same parameters.
			query = `WITH l AS MATERIALIZED (SELECT id FROM conversations WHERE id = ANY(CAST(? AS text[]))
				ORDER BY id COLLATE "C" FOR UPDATE)
			UPDATE conversations SET last_seq = last_seq + v.column2, last_message_at = v.column3
			FROM ` + table + ` JOIN l ON l.id = v.column1 WHERE conversations.id = v.column1 RETURNING conversations.id, last_seq`
			args = append([]any{args[0]}, args...)
		}
		return tx.later(ctx, query, args, func(s scanner) error {
			var id string
			var seq int64
			err := s.Scan(&id, &seq)
			last[id] = seq
			return err
		})
	})
	return last, err
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

// insertMessages returns the writes that store msgs, one per rowSet chunk.
func insertMessages(d Dialect, msgs []*parley.Message) []write {
	rows := newRowSet("text", "text", "bigint", "text", "text", "text", "text", "text", "text", "text", "text", "text", "bigint").reserve(len(msgs))
	for _, m := range msgs {
		rows.add(m.ID, m.ConversationID, m.Seq, m.SenderID, m.RecipientID, m.ClientMessageID, m.Content, m.ContentHash, m.Type,
			m.MediaID, m.ReplyToID, m.ReplyToStatusID, parley.Millis(m.SentAt))
	}
	var out []write
	_ = rows.each(d, func(table string, args []any) error {
		// No clientMessageId is stored as NULL: the unique key
		// (sender_id, client_message_id) then never compares it.
		out = append(out, write{`INSERT INTO messages (id, conversation_id, seq, sender_id, recipient_id, client_message_id, content,
			content_hash, type, media_id, reply_to_id, reply_to_status_id, sent_at)
			SELECT v.column1, v.column2, v.column3, v.column4, v.column5, NULLIF(v.column6, ''), v.column7, v.column8, v.column9,
				v.column10, v.column11, v.column12, v.column13 FROM ` + table, args})
		return nil
	})
	return out
}
