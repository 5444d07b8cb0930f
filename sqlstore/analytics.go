package sqlstore

// Analytics counters (parley.AnalyticsStore): kept by the send path, one
// upsert per (sender, day), per (direct recipient, day), per (group or
// channel, day) and per day for each committed batch, and read without
// touching the messages table. A post to a group or channel costs no row
// per member: a member's "received" there is computed at read time from
// the conversation's daily counts and the member's windows of seqs
// (migration 0021).

import (
	"context"
	"database/sql"
	"sort"

	"github.com/parley-chat/parley"
)

// userDay is one (user, day) row of a batch's counts.
type userDay struct {
	user       string
	day        parley.Day
	sent       int64
	sentShared int64 // of sent, to groups and channels
	received   int64 // direct messages only
	lastSent   int64 // epoch ms
}

// convDay is one (conversation, day) row of a batch's group and channel
// posts.
type convDay struct {
	conv        string
	day         parley.Day
	messages    int64
	first, last int64 // seqs
}

// userDayKey names a row of user_daily_stats.
type userDayKey struct {
	user string
	day  int64
}

// countSends adds a batch's new messages to the daily counters: sent for
// each sender; received for the recipient of a direct message (as the
// direct send policy filled Recipients: none when blocked); messages_sent
// and active_users for each day. (A group or channel post's count of the
// day, whose members' share UserCounts derives, needs its seq:
// countConversationDays.) Repeats and refused sends count nothing. It
// reads no seq, so it may run before the batch has them.
//
// Rows are written in key order so that concurrent batches (other nodes)
// lock them in the same order. The day's rows of daily_stats, which every
// batch updates, are not written here but returned, for the caller to
// write at the end of the transaction (with the sync log, addChangesAfter),
// so they are held for as short a time as possible.
func (tx *Tx) countSends(ctx context.Context, batch []*parley.Send) ([]write, error) {
	rows := map[[2]string]*userDay{}
	row := func(user string, day parley.Day) *userDay {
		k := [2]string{user, day.String()}
		r := rows[k]
		if r == nil {
			r = &userDay{user: user, day: day}
			rows[k] = r
		}
		return r
	}
	days := map[parley.Day]int64{} // messages sent per day
	for _, s := range batch {
		if s.Err != nil || s.Duplicate {
			continue
		}
		m := s.Message
		day := parley.DayOf(m.SentAt)
		r := row(m.SenderID, day)
		r.sent++
		r.lastSent = max(r.lastSent, parley.Millis(m.SentAt))
		days[day]++
		if parley.KindOf(m.ConversationID) == parley.KindDirect {
			for _, u := range s.Recipients {
				if u != m.SenderID {
					row(u, day).received++
				}
			}
			continue
		}
		r.sentShared++
	}
	if len(rows) == 0 {
		return nil, nil
	}
	list := make([]*userDay, 0, len(rows))
	for _, r := range rows {
		list = append(list, r)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].user != list[j].user {
			return list[i].user < list[j].user
		}
		return list[i].day < list[j].day
	})
	newlyActive := map[parley.Day]int64{}
	firsts := newRowSet("text", "bigint") // user, day: the rows that are their user's first send of the day
	upserts := newRowSet("text", "bigint", "bigint", "bigint", "bigint", "bigint").reserve(len(list))
	added := make(map[userDayKey]int64, len(list)) // what the upsert adds to each row's sent
	for _, r := range list {
		upserts.add(r.user, int64(r.day), r.sent, r.received, r.lastSent, r.sentShared)
		added[userDayKey{r.user, int64(r.day)}] = r.sent
	}
	// RETURNING the new sent: a row whose sent equals what this statement
	// added had none before, so its user became active that day. The
	// upsert holds the row's lock, so two batches cannot both see it as
	// new. (WHERE true: SQLite's parser needs it before ON CONFLICT after
	// a SELECT.)
	err := upserts.each(tx.db.dialect, func(table string, args []any) error {
		rs, err := tx.queryAll(ctx, `INSERT INTO user_daily_stats (user_id, day, sent, received, last_sent_at, sent_shared)
			SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6 FROM `+table+` WHERE true
			ON CONFLICT (user_id, day) DO UPDATE SET sent = user_daily_stats.sent + excluded.sent,
				received = user_daily_stats.received + excluded.received,
				sent_shared = user_daily_stats.sent_shared + excluded.sent_shared,
				last_sent_at = CASE WHEN excluded.last_sent_at > user_daily_stats.last_sent_at
					THEN excluded.last_sent_at ELSE user_daily_stats.last_sent_at END
			RETURNING user_id, day, sent`, args...)
		return each(rs, err, func(s scanner) error {
			var user string
			var day, sent int64
			if err := s.Scan(&user, &day, &sent); err != nil {
				return err
			}
			if add := added[userDayKey{user, day}]; add > 0 && sent == add {
				newlyActive[parley.Day(day)]++
				firsts.add(user, day)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if err := tx.countSenderGaps(ctx, firsts); err != nil {
		return nil, err
	}
	order := make([]parley.Day, 0, len(days))
	for d := range days {
		order = append(order, d)
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	totals := make([]write, 0, len(order))
	for _, d := range order {
		totals = append(totals, write{`INSERT INTO daily_stats (day, messages_sent, active_users) VALUES (?, ?, ?)
			ON CONFLICT (day) DO UPDATE SET messages_sent = daily_stats.messages_sent + excluded.messages_sent,
				active_users = daily_stats.active_users + excluded.active_users`,
			[]any{int64(d), days[d], newlyActive[d]}})
	}
	return totals, nil
}

// countConversationDays adds a batch's group and channel posts, once they
// have their seqs, to conversation_daily_stats, in key order (queued:
// Tx.later). Repeats and refused sends count nothing. The batch holds each
// conversation's lock (its seqs were taken under it), so these rows add
// no wait of their own.
func (tx *Tx) countConversationDays(ctx context.Context, batch []*parley.Send) error {
	convs := map[[2]string]*convDay{}
	for _, s := range batch {
		m := s.Message
		if s.Err != nil || s.Duplicate || parley.KindOf(m.ConversationID) == parley.KindDirect {
			continue
		}
		day := parley.DayOf(m.SentAt)
		k := [2]string{m.ConversationID, day.String()}
		c := convs[k]
		if c == nil {
			c = &convDay{conv: m.ConversationID, day: day, first: m.Seq, last: m.Seq}
			convs[k] = c
		}
		c.messages++
		c.first, c.last = min(c.first, m.Seq), max(c.last, m.Seq)
	}
	if len(convs) == 0 {
		return nil
	}
	list := make([]*convDay, 0, len(convs))
	for _, c := range convs {
		list = append(list, c)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].conv != list[j].conv {
			return list[i].conv < list[j].conv
		}
		return list[i].day < list[j].day
	})
	rows := newRowSet("text", "bigint", "bigint", "bigint", "bigint")
	for _, c := range list {
		rows.add(c.conv, int64(c.day), c.messages, c.first, c.last)
	}
	return rows.each(tx.db.dialect, func(table string, args []any) error {
		return tx.later(ctx, `INSERT INTO conversation_daily_stats (conversation_id, day, messages, first_seq, last_seq)
			SELECT v.column1, v.column2, v.column3, v.column4, v.column5 FROM `+table+` WHERE true
			ON CONFLICT (conversation_id, day) DO UPDATE SET messages = conversation_daily_stats.messages + excluded.messages,
				first_seq = CASE WHEN excluded.first_seq < conversation_daily_stats.first_seq
					THEN excluded.first_seq ELSE conversation_daily_stats.first_seq END,
				last_seq = CASE WHEN excluded.last_seq > conversation_daily_stats.last_seq
					THEN excluded.last_seq ELSE conversation_daily_stats.last_seq END`, args, nil)
	})
}

// maxGap is the gap of daily_sender_gaps that stands for "more than the
// longest range of days asked for, or never".
const maxGap = 367

// countSenderGaps adds the users who sent for the first time on a day
// (rows: user, day) to daily_sender_gaps, by the days since their
// previous day with a send. It runs after this batch's upserts, so a user
// whose first sends of two days are in the same batch gets a gap of one
// day for the second. (Two nodes committing a user's last message of a
// day and first of the next at the same moment may both see no previous
// send; that user is then counted twice in ranges holding both days.)
func (tx *Tx) countSenderGaps(ctx context.Context, firsts *rowSet) error {
	gaps := map[[2]int64]int64{} // (day, gap) -> senders
	err := firsts.each(tx.db.dialect, func(table string, args []any) error {
		rows, err := tx.queryAll(ctx, `SELECT v.column2, (SELECT MAX(s.day) FROM user_daily_stats s
				WHERE s.user_id = v.column1 AND s.day < v.column2 AND s.sent > 0)
			FROM `+table, args...)
		return each(rows, err, func(s scanner) error {
			var day int64
			var prev sql.NullInt64
			if err := s.Scan(&day, &prev); err != nil {
				return err
			}
			gap := int64(maxGap)
			if prev.Valid && day-prev.Int64 < maxGap {
				gap = day - prev.Int64
			}
			gaps[[2]int64{day, gap}]++
			return nil
		})
	})
	if err != nil {
		return err
	}
	keys := make([][2]int64, 0, len(gaps))
	for k := range gaps {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		if _, err := tx.exec(ctx, `INSERT INTO daily_sender_gaps (day, gap, senders) VALUES (?, ?, ?)
			ON CONFLICT (day, gap) DO UPDATE SET senders = daily_sender_gaps.senders + excluded.senders`, k[0], k[1], gaps[k]); err != nil {
			return err
		}
	}
	return nil
}

// UserCounts implements parley.AnalyticsStore. Received is what
// user_daily_stats holds (direct messages) plus, for each group and
// channel, the messages of the days in range whose seqs fall in one of the
// user's windows there, less the user's own posts to groups and channels
// (sent_shared: each of them is in one of the user's windows).
//
// A day's seqs are taken as the range first_seq..last_seq, capped at the
// day's count: exact while a conversation's seqs follow its messages'
// sending times over midnight. Sends racing over midnight (or two nodes'
// clocks a few milliseconds apart) can give a later seq an earlier day;
// a member whose window starts or ends inside such a day's range may then
// be counted a message off, never below zero.
func (db *DB) UserCounts(ctx context.Context, userID string, from, to parley.Day) (parley.UserCounts, error) {
	var c parley.UserCounts
	var last, sentShared, shared int64
	err := db.queryRow(ctx, `SELECT COALESCE(SUM(sent), 0), COALESCE(SUM(received), 0), COALESCE(MAX(last_sent_at), 0),
			COALESCE(SUM(sent_shared), 0)
		FROM user_daily_stats WHERE user_id = ? AND day >= ? AND day <= ?`, userID, int64(from), int64(to)).Scan(&c.Sent, &c.Received, &last, &sentShared)
	if err != nil {
		return c, err
	}
	// n = hi - lo + 1 with lo = max(first_seq, from_seq + 1) and
	// hi = min(last_seq, to_seq); the join keeps n >= 1.
	err = db.queryRow(ctx, `SELECT COALESCE(SUM(CASE WHEN n > messages THEN messages ELSE n END), 0) FROM (
			SELECT d.messages,
				CASE WHEN w.to_seq IS NOT NULL AND w.to_seq < d.last_seq THEN w.to_seq ELSE d.last_seq END
				- CASE WHEN w.from_seq + 1 > d.first_seq THEN w.from_seq + 1 ELSE d.first_seq END + 1 AS n
			FROM member_windows w JOIN conversation_daily_stats d ON d.conversation_id = w.conversation_id
			WHERE w.user_id = ? AND d.day >= ? AND d.day <= ? AND d.last_seq > w.from_seq
				AND (w.to_seq IS NULL OR d.first_seq <= w.to_seq)
		) o`, userID, int64(from), int64(to)).Scan(&shared)
	c.Received += max(shared-sentShared, 0)
	c.LastSentAt = parley.FromMillis(last)
	return c, err
}

// ActiveChatsCount implements parley.AnalyticsStore.
func (db *DB) ActiveChatsCount(ctx context.Context, userID string) (int64, error) {
	var n int64
	err := db.queryRow(ctx, `SELECT COUNT(*) FROM conversation_members cm JOIN conversations c ON c.id = cm.conversation_id
		WHERE cm.user_id = ? AND c.last_seq > cm.joined_seq`, userID).Scan(&n)
	return n, err
}

// DailyStats implements parley.AnalyticsStore: the days from daily_stats,
// the distinct senders from daily_sender_gaps (each sender counted on
// their first day in the range: the day whose gap reaches back before
// from). Ranges longer than 366 days would need a larger maxGap.
func (db *DB) DailyStats(ctx context.Context, from, to parley.Day) ([]parley.DayStats, int64, error) {
	rows, err := db.query(ctx, `SELECT day, messages_sent, active_users FROM daily_stats WHERE day >= ? AND day <= ? ORDER BY day`,
		int64(from), int64(to))
	days, err := collect(rows, err, func(s scanner) (parley.DayStats, error) {
		var d parley.DayStats
		var day int64
		err := s.Scan(&day, &d.MessagesSent, &d.ActiveUsers)
		d.Day = parley.Day(day)
		return d, err
	})
	if err != nil {
		return nil, 0, err
	}
	var users int64
	if len(days) > 0 {
		err = db.queryRow(ctx, `SELECT COALESCE(SUM(senders), 0) FROM daily_sender_gaps WHERE day >= ? AND day <= ? AND gap > day - ?`,
			int64(from), int64(to), int64(from)).Scan(&users)
	}
	return days, users, err
}
