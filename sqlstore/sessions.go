package sqlstore

import (
	"context"
	"time"

	"github.com/parley-chat/parley"
)

// CreateSession implements parley.SessionStore.
func (db *DB) CreateSession(ctx context.Context, s *parley.Session) error {
	_, err := db.exec(ctx, `INSERT INTO sessions (token_hash, user_id, device_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		s.TokenHash, s.UserID, s.DeviceID, parley.Millis(s.CreatedAt), parley.Millis(s.ExpiresAt))
	return err
}

// SessionByTokenHash implements parley.SessionStore.
func (db *DB) SessionByTokenHash(ctx context.Context, hash string) (*parley.Session, error) {
	var s parley.Session
	var c, e int64
	err := db.queryRow(ctx, `SELECT token_hash, user_id, device_id, created_at, expires_at FROM sessions
		WHERE token_hash = ? AND revoked_at = 0`, hash).Scan(&s.TokenHash, &s.UserID, &s.DeviceID, &c, &e)
	if err != nil {
		return nil, notFound(err, "session")
	}
	s.CreatedAt, s.ExpiresAt = parley.FromMillis(c), parley.FromMillis(e)
	return &s, nil
}

// RevokeSession implements parley.SessionStore. The push devices the
// session registered go with it (parley.NotifyStore.SavePushDevice).
func (db *DB) RevokeSession(ctx context.Context, hash string) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `UPDATE sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at = 0`,
			parley.Millis(timeNow()), hash); err != nil {
			return err
		}
		return tx.dropSessionDevices(ctx, hash)
	})
}

// CreatePasswordReset implements parley.SessionStore.
func (db *DB) CreatePasswordReset(ctx context.Context, r *parley.PasswordReset) error {
	_, err := db.exec(ctx, `INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		r.TokenHash, r.UserID, parley.Millis(r.CreatedAt), parley.Millis(r.ExpiresAt))
	return err
}

// ResetPassword implements parley.SessionStore.
func (db *DB) ResetPassword(ctx context.Context, tokenHash, passwordHash string, now time.Time) (string, error) {
	var userID string
	err := db.inTx(ctx, func(tx *Tx) error {
		// The conditional UPDATE is what makes the token single-use: of two
		// concurrent resets only one changes the row.
		err := tx.queryRow(ctx, `UPDATE password_resets SET used_at = ?
			WHERE token_hash = ? AND used_at = 0 AND expires_at > ? RETURNING user_id`,
			parley.Millis(now), tokenHash, parley.Millis(now)).Scan(&userID)
		if err != nil {
			return notFound(err, "reset token")
		}
		if _, err := tx.exec(ctx, `UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`,
			passwordHash, parley.Millis(now), userID); err != nil {
			return err
		}
		// Other pending reset tokens of the user die with the old password.
		if _, err := tx.exec(ctx, `UPDATE password_resets SET used_at = ? WHERE user_id = ? AND used_at = 0`,
			parley.Millis(now), userID); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at = 0`, parley.Millis(now), userID); err != nil {
			return err
		}
		// Every session is gone, so are the push devices they registered.
		return tx.dropUserDevices(ctx, userID)
	})
	if err != nil && parley.ErrorCode(err) == parley.ENOTFOUND {
		return "", parley.Errorf(parley.ENOTFOUND, "reset token is invalid, used or expired")
	}
	return userID, err
}
