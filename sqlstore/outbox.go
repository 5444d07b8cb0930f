package sqlstore

// Push devices, shared server keys and the push outbox
// (parley.NotifyStore).

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/parley-chat/parley"
)

// SavePushDevice implements parley.NotifyStore.
func (db *DB) SavePushDevice(ctx context.Context, d *parley.PushDevice) error {
	return db.inTx(ctx, func(tx *Tx) error {
		var n int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM push_devices WHERE user_id = ? AND device_id <> ?`,
			d.UserID, d.DeviceID).Scan(&n); err != nil {
			return err
		}
		if n >= parley.MaxPushDevices {
			return parley.Errorf(parley.ECONFLICT, "at most %d devices may receive pushes; remove one first", parley.MaxPushDevices)
		}
		_, err := tx.exec(ctx, `INSERT INTO push_devices (user_id, device_id, platform, token, subscription, created_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (user_id, device_id) DO UPDATE SET platform = excluded.platform, token = excluded.token,
				subscription = excluded.subscription`,
			d.UserID, d.DeviceID, d.Platform, d.Token, d.Subscription, parley.Millis(d.CreatedAt))
		return err
	})
}

// DeletePushDevice implements parley.NotifyStore.
func (db *DB) DeletePushDevice(ctx context.Context, userID, deviceID string) (bool, error) {
	var n int64
	err := db.inTx(ctx, func(tx *Tx) error {
		// The outbox row goes first: SQLite enforces foreign keys only
		// when asked to, so the cascade is not relied on.
		if _, err := tx.exec(ctx, `DELETE FROM push_outbox WHERE user_id = ? AND device_id = ?`, userID, deviceID); err != nil {
			return err
		}
		res, err := tx.exec(ctx, `DELETE FROM push_devices WHERE user_id = ? AND device_id = ?`, userID, deviceID)
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	return n > 0, err
}

// PushDevices implements parley.NotifyStore.
func (db *DB) PushDevices(ctx context.Context, userID string) ([]*parley.PushDevice, error) {
	rows, err := db.query(ctx, `SELECT user_id, device_id, platform, token, subscription, created_at FROM push_devices
		WHERE user_id = ? ORDER BY created_at, device_id`, userID)
	return collect(rows, err, func(s scanner) (*parley.PushDevice, error) {
		var d parley.PushDevice
		var created int64
		err := s.Scan(&d.UserID, &d.DeviceID, &d.Platform, &d.Token, &d.Subscription, &created)
		d.CreatedAt = parley.FromMillis(created)
		return &d, err
	})
}

// ServerKey implements parley.NotifyStore.
func (db *DB) ServerKey(ctx context.Context, name string, generate func() (string, error)) (string, error) {
	var v string
	err := db.queryRow(ctx, `SELECT value FROM server_keys WHERE name = ?`, name).Scan(&v)
	if !errors.Is(err, sql.ErrNoRows) {
		return v, err
	}
	if v, err = generate(); err != nil {
		return "", err
	}
	// Nodes starting together may both generate: the first insert wins
	// and every node reads it back.
	if _, err := db.exec(ctx, `INSERT INTO server_keys (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, v); err != nil {
		return "", err
	}
	err = db.queryRow(ctx, `SELECT value FROM server_keys WHERE name = ?`, name).Scan(&v)
	return v, err
}

const newMessageEvents = `('` + parley.EventNewMessage + `', '` + parley.EventNewGroupMessage + `', '` + parley.EventNewChannelMessage + `')`

// PushCandidates implements parley.NotifyStore.
func (db *DB) PushCandidates(ctx context.Context, upTo, now time.Time, limit int) ([]*parley.PushCandidate, int64, int64, error) {
	var from int64
	if err := db.queryRow(ctx, `SELECT last FROM push_cursor WHERE id = 1`).Scan(&from); err != nil {
		return nil, 0, 0, err
	}
	// Change ids are given in commit order (see addChanges), so nothing
	// can later appear below the cursor. The batch ends before the first
	// change made after upTo, which is read again next time.
	to := from
	type idAt struct{ id, at int64 }
	rows, err := db.query(ctx, `SELECT id, created_at FROM changes WHERE id > ? AND event IN `+newMessageEvents+`
		ORDER BY id LIMIT ?`, from, limit)
	list, err := collect(rows, err, func(s scanner) (idAt, error) {
		var v idAt
		return v, s.Scan(&v.id, &v.at)
	})
	if err != nil {
		return nil, 0, 0, err
	}
	for _, c := range list {
		if c.at > parley.Millis(upTo) {
			break
		}
		to = c.id
	}
	if to == from {
		return nil, from, to, nil
	}
	rows, err = db.query(ctx, `SELECT c.id, mm.user_id, d.device_id, d.platform, c.conversation_id,
			CASE WHEN u.push_previews THEN COALESCE(NULLIF(su.name, ''), su.username, '') ELSE '' END, d.last_push_at
		FROM changes c
		JOIN messages m ON m.id = c.message_id
		JOIN conversation_members mm ON mm.conversation_id = c.conversation_id AND mm.user_id <> m.sender_id AND c.seq > mm.joined_seq
		JOIN push_devices d ON d.user_id = mm.user_id
		JOIN users u ON u.id = mm.user_id
		LEFT JOIN users su ON su.id = m.sender_id
		WHERE c.id > ? AND c.id <= ? AND c.event IN `+newMessageEvents+` AND c.only_user = '' AND mm.muted_until <= ?
			AND NOT EXISTS (SELECT 1 FROM mutes x WHERE x.user_id = mm.user_id AND x.muted_id = m.sender_id
				AND (x.until = 0 OR x.until > ?))
		ORDER BY c.id, mm.user_id, d.device_id`, from, to, parley.Millis(now), parley.Millis(now))
	out, err := collect(rows, err, func(s scanner) (*parley.PushCandidate, error) {
		var p parley.PushCandidate
		var last int64
		err := s.Scan(&p.ChangeID, &p.UserID, &p.DeviceID, &p.Platform, &p.ConversationID, &p.SenderName, &last)
		p.LastPushAt = parley.FromMillis(last)
		return &p, err
	})
	return out, from, to, err
}

// EnqueuePushes implements parley.NotifyStore.
func (db *DB) EnqueuePushes(ctx context.Context, from, to int64, pushes []*parley.Push) (bool, error) {
	moved := false
	err := db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE push_cursor SET last = ? WHERE id = 1 AND last = ?`, to, from)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		moved = true
		now := parley.Millis(timeNow())
		for _, p := range pushes {
			// Selected from the device, so a device removed meanwhile
			// gets no row; an existing pending push takes the message in.
			if _, err := tx.exec(ctx, `INSERT INTO push_outbox (user_id, device_id, notification_id, conversation_id, sender_name,
					count, version, attempts, next_at, created_at)
				SELECT user_id, device_id, ?, ?, ?, ?, 1, 0, ?, ? FROM push_devices WHERE user_id = ? AND device_id = ?
				ON CONFLICT (user_id, device_id) DO UPDATE SET notification_id = excluded.notification_id,
					conversation_id = excluded.conversation_id, sender_name = excluded.sender_name,
					count = push_outbox.count + excluded.count, version = push_outbox.version + 1`,
				p.NotificationID, p.ConversationID, p.SenderName, p.Count, parley.Millis(p.NextAt), now,
				p.Device.UserID, p.Device.DeviceID); err != nil {
				return err
			}
		}
		return nil
	})
	return moved, err
}

// DuePushes implements parley.NotifyStore.
func (db *DB) DuePushes(ctx context.Context, now time.Time, limit int) ([]*parley.Push, error) {
	rows, err := db.query(ctx, `SELECT o.user_id, o.device_id, d.platform, d.token, d.subscription, o.notification_id,
			o.conversation_id, o.sender_name, o.count, o.version, o.attempts, o.next_at
		FROM push_outbox o JOIN push_devices d ON d.user_id = o.user_id AND d.device_id = o.device_id
		WHERE o.next_at <= ? ORDER BY o.next_at LIMIT ?`, parley.Millis(now), limit)
	return collect(rows, err, func(s scanner) (*parley.Push, error) {
		var p parley.Push
		var next int64
		err := s.Scan(&p.Device.UserID, &p.Device.DeviceID, &p.Device.Platform, &p.Device.Token, &p.Device.Subscription,
			&p.NotificationID, &p.ConversationID, &p.SenderName, &p.Count, &p.Version, &p.Attempts, &next)
		p.NextAt = parley.FromMillis(next)
		return &p, err
	})
}

// PushSent implements parley.NotifyStore.
func (db *DB) PushSent(ctx context.Context, p *parley.Push, now, next time.Time) error {
	return db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `DELETE FROM push_outbox WHERE user_id = ? AND device_id = ? AND version = ?`,
			p.Device.UserID, p.Device.DeviceID, p.Version)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			// Messages came in while it was being sent: they go out as
			// one more push, not before next.
			if _, err := tx.exec(ctx, `UPDATE push_outbox SET attempts = 0, count = count - ?, next_at = ? WHERE user_id = ? AND device_id = ?`,
				p.Count, parley.Millis(next), p.Device.UserID, p.Device.DeviceID); err != nil {
				return err
			}
		}
		_, err = tx.exec(ctx, `UPDATE push_devices SET last_push_at = ? WHERE user_id = ? AND device_id = ?`,
			parley.Millis(now), p.Device.UserID, p.Device.DeviceID)
		return err
	})
}

// PushFailed implements parley.NotifyStore.
func (db *DB) PushFailed(ctx context.Context, p *parley.Push, next time.Time) error {
	if next.IsZero() {
		_, err := db.exec(ctx, `DELETE FROM push_outbox WHERE user_id = ? AND device_id = ? AND version = ?`,
			p.Device.UserID, p.Device.DeviceID, p.Version)
		return err
	}
	_, err := db.exec(ctx, `UPDATE push_outbox SET attempts = attempts + 1, next_at = ? WHERE user_id = ? AND device_id = ?`,
		parley.Millis(next), p.Device.UserID, p.Device.DeviceID)
	return err
}
