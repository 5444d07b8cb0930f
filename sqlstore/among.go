package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/parley-chat/parley"
)

// Set lookups over many ids at once, for pages that would otherwise ask
// one question per row (the chat list).

// inList calls run once per statement needed to look up ids, with what
// goes inside "IN (...)" and its arguments. PostgreSQL takes every id in
// one array parameter: one round trip for any number of ids, and one
// statement text that pgx prepares once per connection (a chat list of 200
// chats was 30-odd round trips in chunks). SQLite has no arrays and no
// round trips: the ids go as placeholders in chunks of a few fixed sizes
// (chunk), each size one cached prepared statement.
func (db *DB) inList(ids []string, run func(list string, args []any) error) error {
	if len(ids) == 0 {
		return nil
	}
	if db.dialect == Postgres {
		return run("SELECT unnest(CAST(? AS text[]))", []any{ids})
	}
	for len(ids) > 0 {
		n := chunk(len(ids))
		if err := run(placeholders(n), anys(ids[:n])); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// among runs query (whose "%s" is the list of ids) after args, for every
// id (inList), and returns the first column's values as a set.
func (db *DB) among(ctx context.Context, query string, args []any, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	err := db.inList(ids, func(list string, a []any) error {
		rows, err := db.query(ctx, fmt.Sprintf(query, list), append(append([]any{}, args...), a...)...)
		return each(rows, err, func(s scanner) error {
			id, err := scanString(s)
			out[id] = true
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// collectIn runs query (whose "%s" is the list of ids) for every id
// (inList) and scans each row with scan.
func collectIn[T any](ctx context.Context, db *DB, query string, ids []string, scan func(scanner) (T, error)) ([]T, error) {
	var out []T
	err := db.inList(ids, func(list string, args []any) error {
		rows, err := db.query(ctx, fmt.Sprintf(query, list), args...)
		items, err := collect(rows, err, scan)
		out = append(out, items...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func anys(ids []string) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

// MutedAmong implements parley.SocialStore.
func (db *DB) MutedAmong(ctx context.Context, userID string, others []string, now time.Time) (map[string]bool, error) {
	return db.among(ctx, `SELECT muted_id FROM mutes WHERE user_id = ? AND (until = 0 OR until > ?) AND muted_id IN (%s)`,
		[]any{userID, parley.Millis(now)}, others)
}

// BlockedAmong implements parley.SocialStore.
func (db *DB) BlockedAmong(ctx context.Context, userID string, others []string) (map[string]bool, error) {
	by, err := db.among(ctx, `SELECT blocked_id FROM blocks WHERE user_id = ? AND blocked_id IN (%s)`, []any{userID}, others)
	if err != nil {
		return nil, err
	}
	of, err := db.among(ctx, `SELECT user_id FROM blocks WHERE blocked_id = ? AND user_id IN (%s)`, []any{userID}, others)
	for id := range of {
		by[id] = true
	}
	return by, err
}

// ContactOfAmong implements parley.SocialStore.
func (db *DB) ContactOfAmong(ctx context.Context, contactID string, owners []string) (map[string]bool, error) {
	return db.among(ctx, `SELECT user_id FROM contacts WHERE contact_id = ? AND user_id IN (%s)`, []any{contactID}, owners)
}

// OnlineAmong implements parley.PresenceStore.
func (db *DB) OnlineAmong(ctx context.Context, ids []string) (map[string]bool, error) {
	return db.among(ctx, `SELECT user_id FROM presence_users WHERE user_id IN (%s)`, nil, ids)
}

// GroupsByIDs implements parley.GroupStore.
func (db *DB) GroupsByIDs(ctx context.Context, ids []string) ([]*parley.Group, error) {
	return collectIn(ctx, db, `SELECT `+groupColumns+` FROM group_chats g WHERE g.conversation_id IN (%s)`, ids, scanGroup)
}
