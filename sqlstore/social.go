package sqlstore

import (
	"context"
	"time"

	"github.com/parley-chat/parley"
)

func (db *DB) ids(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := db.query(ctx, query, args...)
	return collect(rows, err, scanString)
}

// AddContact implements parley.SocialStore.
func (db *DB) AddContact(ctx context.Context, userID, contactID string, now time.Time) error {
	_, err := db.exec(ctx, `INSERT INTO contacts (user_id, contact_id, created_at) VALUES (?, ?, ?)
		ON CONFLICT (user_id, contact_id) DO NOTHING`, userID, contactID, parley.Millis(now))
	return err
}

// RemoveContact implements parley.SocialStore.
func (db *DB) RemoveContact(ctx context.Context, userID, contactID string) error {
	_, err := db.exec(ctx, `DELETE FROM contacts WHERE user_id = ? AND contact_id = ?`, userID, contactID)
	return err
}

// Contacts implements parley.SocialStore.
func (db *DB) Contacts(ctx context.Context, userID string) ([]string, error) {
	return db.ids(ctx, `SELECT contact_id FROM contacts WHERE user_id = ? ORDER BY created_at, contact_id`, userID)
}

// ContactOf implements parley.SocialStore.
func (db *DB) ContactOf(ctx context.Context, userID string) ([]string, error) {
	return db.ids(ctx, `SELECT user_id FROM contacts WHERE contact_id = ? ORDER BY created_at, user_id`, userID)
}

// Block implements parley.SocialStore.
func (db *DB) Block(ctx context.Context, userID, blockedID string, now time.Time) error {
	_, err := db.exec(ctx, `INSERT INTO blocks (user_id, blocked_id, created_at) VALUES (?, ?, ?)
		ON CONFLICT (user_id, blocked_id) DO NOTHING`, userID, blockedID, parley.Millis(now))
	return err
}

// Unblock implements parley.SocialStore.
func (db *DB) Unblock(ctx context.Context, userID, blockedID string) error {
	_, err := db.exec(ctx, `DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?`, userID, blockedID)
	return err
}

// Blocked implements parley.SocialStore.
func (db *DB) Blocked(ctx context.Context, userID string) ([]string, error) {
	return db.ids(ctx, `SELECT blocked_id FROM blocks WHERE user_id = ? ORDER BY created_at, blocked_id`, userID)
}

// BlockedEitherWay implements parley.SocialStore.
func (db *DB) BlockedEitherWay(ctx context.Context, userID string) ([]string, error) {
	return db.ids(ctx, `SELECT blocked_id FROM blocks WHERE user_id = ? UNION SELECT user_id FROM blocks WHERE blocked_id = ?`, userID, userID)
}

// BlockedEither implements parley.SocialStore.
func (db *DB) BlockedEither(ctx context.Context, a, b string) (bool, error) {
	var n int
	err := db.queryRow(ctx, `SELECT COUNT(*) FROM blocks WHERE (user_id = ? AND blocked_id = ?) OR (user_id = ? AND blocked_id = ?)`,
		a, b, b, a).Scan(&n)
	return n > 0, err
}

// Mute implements parley.SocialStore.
func (db *DB) Mute(ctx context.Context, userID, mutedID string, until, now time.Time) error {
	_, err := db.exec(ctx, `INSERT INTO mutes (user_id, muted_id, until, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id, muted_id) DO UPDATE SET until = excluded.until, created_at = excluded.created_at`,
		userID, mutedID, parley.Millis(until), parley.Millis(now))
	return err
}

// Unmute implements parley.SocialStore.
func (db *DB) Unmute(ctx context.Context, userID, mutedID string) error {
	_, err := db.exec(ctx, `DELETE FROM mutes WHERE user_id = ? AND muted_id = ?`, userID, mutedID)
	return err
}

// IsMuted implements parley.SocialStore.
func (db *DB) IsMuted(ctx context.Context, userID, mutedID string, now time.Time) (bool, error) {
	var n int
	err := db.queryRow(ctx, `SELECT COUNT(*) FROM mutes WHERE user_id = ? AND muted_id = ? AND (until = 0 OR until > ?)`,
		userID, mutedID, parley.Millis(now)).Scan(&n)
	return n > 0, err
}
