package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/parley-chat/parley"
)

func timeNow() time.Time { return time.Now() }

const userColumns = `id, username, name, email, password_hash, about, avatar,
	last_seen_visibility, read_receipts, push_previews, last_seen_at, created_at, updated_at`

func scanUser(s scanner) (*parley.User, error) {
	var u parley.User
	var lastSeen, created, updated int64
	err := s.Scan(&u.ID, &u.Username, &u.Name, &u.Email, &u.PasswordHash, &u.About, &u.Avatar,
		&u.Settings.LastSeenVisibility, &u.Settings.ReadReceipts, &u.Settings.PushPreviews,
		&lastSeen, &created, &updated)
	if err != nil {
		return nil, err
	}
	u.LastSeenAt, u.CreatedAt, u.UpdatedAt = parley.FromMillis(lastSeen), parley.FromMillis(created), parley.FromMillis(updated)
	return &u, nil
}

// CreateUser implements parley.UserStore.
func (db *DB) CreateUser(ctx context.Context, u *parley.User, d *parley.Device) error {
	err := db.inTx(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, `INSERT INTO users (id, username, username_lower, name, name_lower, email, email_lower,
			password_hash, about, avatar, last_seen_visibility, read_receipts, push_previews, last_seen_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.ID, u.Username, strings.ToLower(u.Username), u.Name, strings.ToLower(u.Name), u.Email, strings.ToLower(u.Email),
			u.PasswordHash, u.About, u.Avatar, u.Settings.LastSeenVisibility, u.Settings.ReadReceipts, u.Settings.PushPreviews,
			parley.Millis(u.LastSeenAt), parley.Millis(u.CreatedAt), parley.Millis(u.UpdatedAt))
		if isUniqueViolation(err) && strings.Contains(err.Error(), "email") {
			return parley.Errorf(parley.EEMAILTAKEN, "this e-mail address is already used by another account")
		} else if isUniqueViolation(err) {
			return parley.Errorf(parley.EUSERNAMETAKEN, "username %q is taken", u.Username)
		} else if err != nil {
			return err
		}
		if d != nil {
			_, err = tx.exec(ctx, `INSERT INTO devices (user_id, device_id, public_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
				d.UserID, d.DeviceID, d.PublicKey, parley.Millis(d.CreatedAt), parley.Millis(d.UpdatedAt))
		}
		return err
	})
	return err
}

// UserByID implements parley.UserStore.
func (db *DB) UserByID(ctx context.Context, id string) (*parley.User, error) {
	u, err := scanUser(db.queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	return u, notFound(err, "user")
}

// UserByUsername implements parley.UserStore.
func (db *DB) UserByUsername(ctx context.Context, username string) (*parley.User, error) {
	u, err := scanUser(db.queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE username_lower = ?`, strings.ToLower(username)))
	return u, notFound(err, "user")
}

// UserByEmail implements parley.UserStore.
func (db *DB) UserByEmail(ctx context.Context, email string) (*parley.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return nil, parley.Errorf(parley.ENOTFOUND, "user not found")
	}
	u, err := scanUser(db.queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email_lower = ?`, email))
	return u, notFound(err, "user")
}

// UsersByIDs implements parley.UserStore.
func (db *DB) UsersByIDs(ctx context.Context, ids []string) ([]*parley.User, error) {
	return collectIn(ctx, db, `SELECT `+userColumns+` FROM users WHERE id IN (%s)`, ids, scanUser)
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// escapeLike escapes LIKE wildcards so user input matches literally.
func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// SearchUsers implements parley.UserStore.
func (db *DB) SearchUsers(ctx context.Context, prefix string, limit int) ([]*parley.User, error) {
	p := escapeLike(strings.ToLower(prefix)) + "%"
	rows, err := db.query(ctx, `SELECT `+userColumns+` FROM users
		WHERE username_lower LIKE ? ESCAPE '\' OR name_lower LIKE ? ESCAPE '\'
		ORDER BY username_lower LIMIT ?`, p, p, limit)
	return collect(rows, err, scanUser)
}

// UpdateProfile implements parley.UserStore.
func (db *DB) UpdateProfile(ctx context.Context, id string, upd parley.ProfileUpdate, now time.Time) (*parley.User, error) {
	var u *parley.User
	err := db.inTx(ctx, func(tx *Tx) error {
		var err error
		u, err = scanUser(tx.queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
		if err != nil {
			return notFound(err, "user")
		}
		if upd.Name != nil {
			u.Name = *upd.Name
		}
		if upd.About != nil {
			u.About = *upd.About
		}
		if upd.Avatar != nil {
			if err := tx.useAvatar(ctx, id, u.Avatar, *upd.Avatar, now); err != nil {
				return err
			}
			u.Avatar = *upd.Avatar
		}
		u.UpdatedAt = now
		_, err = tx.exec(ctx, `UPDATE users SET name = ?, name_lower = ?, about = ?, avatar = ?, updated_at = ? WHERE id = ?`,
			u.Name, strings.ToLower(u.Name), u.About, u.Avatar, parley.Millis(now), id)
		return err
	})
	return u, err
}

// UpdateSettings implements parley.UserStore.
func (db *DB) UpdateSettings(ctx context.Context, id string, s parley.Settings, now time.Time) (*parley.User, error) {
	res, err := db.exec(ctx, `UPDATE users SET last_seen_visibility = ?, read_receipts = ?, push_previews = ?, updated_at = ? WHERE id = ?`,
		s.LastSeenVisibility, s.ReadReceipts, s.PushPreviews, parley.Millis(now), id)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, parley.Errorf(parley.ENOTFOUND, "user not found")
	}
	return db.UserByID(ctx, id)
}

// SetLastSeen implements parley.UserStore.
func (db *DB) SetLastSeen(ctx context.Context, id string, t time.Time) error {
	_, err := db.exec(ctx, `UPDATE users SET last_seen_at = ? WHERE id = ?`, parley.Millis(t), id)
	return err
}

// Devices implements parley.UserStore.
func (db *DB) Devices(ctx context.Context, userID string) ([]*parley.Device, error) {
	rows, err := db.query(ctx, `SELECT user_id, device_id, public_key, created_at, updated_at FROM devices
		WHERE user_id = ? ORDER BY created_at, device_id`, userID)
	return collect(rows, err, func(s scanner) (*parley.Device, error) {
		var d parley.Device
		var c, u int64
		err := s.Scan(&d.UserID, &d.DeviceID, &d.PublicKey, &c, &u)
		d.CreatedAt, d.UpdatedAt = parley.FromMillis(c), parley.FromMillis(u)
		return &d, err
	})
}

// UpsertDevice implements parley.UserStore. The insert resolves a
// conflict on (user_id, device_id) itself, so concurrent upserts of one
// new device never fail with a duplicate key: exactly one creates the row
// and the others update it.
func (db *DB) UpsertDevice(ctx context.Context, d *parley.Device) (bool, error) {
	created := false
	err := db.inTx(ctx, func(tx *Tx) error {
		var err error
		created, err = tx.upsertDevice(ctx, d)
		return err
	})
	return created, err
}

func (tx *Tx) upsertDevice(ctx context.Context, d *parley.Device) (bool, error) {
	res, err := tx.exec(ctx, `INSERT INTO devices (user_id, device_id, public_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (user_id, device_id) DO NOTHING`,
		d.UserID, d.DeviceID, d.PublicKey, parley.Millis(d.CreatedAt), parley.Millis(d.UpdatedAt))
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, err
	} else if n > 0 {
		return true, nil
	}
	_, err = tx.exec(ctx, `UPDATE devices SET public_key = ?, updated_at = ? WHERE user_id = ? AND device_id = ?`,
		d.PublicKey, parley.Millis(d.UpdatedAt), d.UserID, d.DeviceID)
	return false, err
}
