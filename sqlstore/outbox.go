package sqlstore

// Push devices, shared server keys and the push outbox
// (parley.NotifyStore).

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
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
		_, err := tx.exec(ctx, `INSERT INTO push_devices (user_id, device_id, platform, token, subscription, session_hash, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (user_id, device_id) DO UPDATE SET platform = excluded.platform, token = excluded.token,
				subscription = excluded.subscription, session_hash = excluded.session_hash`,
			d.UserID, d.DeviceID, d.Platform, d.Token, d.Subscription, d.SessionHash, parley.Millis(d.CreatedAt))
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

// addressedEvents are the changes to one user (to_user) that notify them.
const addressedEvents = `('` + parley.EventCallIncoming + `', '` + parley.EventCommunityJoinRequest + `', '` + parley.EventChannelKeyNeeded + `')`

// pushEvents are all the changes the outbox reads.
const pushEvents = `('` + parley.EventNewMessage + `', '` + parley.EventNewGroupMessage + `', '` + parley.EventNewChannelMessage +
	`', '` + parley.EventCallIncoming + `', '` + parley.EventCommunityJoinRequest + `', '` + parley.EventChannelKeyNeeded + `')`

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
	rows, err := db.query(ctx, `SELECT id, created_at FROM changes WHERE id > ? AND event IN `+pushEvents+`
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
	rows, err = db.query(ctx, `SELECT c.id, c.event, mm.user_id, d.device_id, d.platform, c.conversation_id,
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
		err := s.Scan(&p.ChangeID, &p.Event, &p.UserID, &p.DeviceID, &p.Platform, &p.ConversationID, &p.SenderName, &last)
		p.LastPushAt = parley.FromMillis(last)
		return &p, err
	})
	if err != nil {
		return nil, 0, 0, err
	}
	// Calls, join requests and key requests are addressed to one user;
	// what they are about is in the payload, which the service reads.
	rows, err = db.query(ctx, `SELECT c.id, c.event, c.to_user, d.device_id, d.platform, c.conversation_id, u.push_previews,
			c.payload, d.last_push_at
		FROM changes c
		JOIN push_devices d ON d.user_id = c.to_user
		JOIN users u ON u.id = c.to_user
		WHERE c.id > ? AND c.id <= ? AND c.event IN `+addressedEvents+` AND c.to_user <> ''
		ORDER BY c.id, d.device_id`, from, to)
	addressed, err := collect(rows, err, func(s scanner) (*parley.PushCandidate, error) {
		var p parley.PushCandidate
		var last int64
		var payload string
		err := s.Scan(&p.ChangeID, &p.Event, &p.UserID, &p.DeviceID, &p.Platform, &p.ConversationID, &p.Previews, &payload, &last)
		p.LastPushAt, p.Payload = parley.FromMillis(last), []byte(payload)
		return &p, err
	})
	if err != nil {
		return nil, 0, 0, err
	}
	if len(addressed) > 0 {
		out = append(out, addressed...)
		slices.SortStableFunc(out, func(a, b *parley.PushCandidate) int { return cmp.Compare(a.ChangeID, b.ChangeID) })
	}
	return out, from, to, nil
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
		for _, p := range pushes {
			if _, err := tx.queuePush(ctx, p, p.Device.UserID, p.Device.DeviceID); err != nil {
				return err
			}
		}
		return nil
	})
	return moved, err
}

// queuePush writes p for the device (or for every device of the user when
// deviceID is empty) and reports how many rows it wrote or collapsed into.
// Selected from the devices, so a device removed meanwhile gets no row; a
// pending push of the same device and topic takes p in.
func (tx *Tx) queuePush(ctx context.Context, p *parley.Push, userID, deviceID string) (int64, error) {
	data, err := json.Marshal(p.Data)
	if err != nil {
		return 0, err
	}
	q := `INSERT INTO push_outbox (user_id, device_id, topic, kind, notification_id, conversation_id, sender_name, data,
			count, version, attempts, next_at, created_at)
		SELECT user_id, device_id, ?, ?, ?, ?, ?, ?, ?, 1, 0, ?, ? FROM push_devices WHERE user_id = ?`
	args := []any{p.Topic, p.Kind, p.NotificationID, p.ConversationID, p.SenderName, string(data), p.Count,
		parley.Millis(p.NextAt), parley.Millis(timeNow()), userID}
	if deviceID != "" {
		q += ` AND device_id = ?`
		args = append(args, deviceID)
	}
	res, err := tx.exec(ctx, q+`
		ON CONFLICT (user_id, device_id, topic) DO UPDATE SET notification_id = excluded.notification_id,
			conversation_id = excluded.conversation_id, sender_name = excluded.sender_name, data = excluded.data,
			count = push_outbox.count + excluded.count, version = push_outbox.version + 1`, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// QueueUserPush implements parley.NotifyStore.
func (db *DB) QueueUserPush(ctx context.Context, userID string, p *parley.Push) (int, error) {
	var n int64
	err := db.inTx(ctx, func(tx *Tx) error {
		var err error
		n, err = tx.queuePush(ctx, p, userID, "")
		return err
	})
	return int(n), err
}

// DuePushes implements parley.NotifyStore.
func (db *DB) DuePushes(ctx context.Context, now time.Time, limit int) ([]*parley.Push, error) {
	rows, err := db.query(ctx, `SELECT o.user_id, o.device_id, d.platform, d.token, d.subscription, o.topic, o.kind, o.notification_id,
			o.conversation_id, o.sender_name, o.data, o.count, o.version, o.attempts, o.next_at
		FROM push_outbox o JOIN push_devices d ON d.user_id = o.user_id AND d.device_id = o.device_id
		WHERE o.next_at <= ? AND o.claim_until <= ? ORDER BY o.next_at LIMIT ?`, parley.Millis(now), parley.Millis(now), limit)
	return collect(rows, err, func(s scanner) (*parley.Push, error) {
		var p parley.Push
		var next int64
		var data string
		err := s.Scan(&p.Device.UserID, &p.Device.DeviceID, &p.Device.Platform, &p.Device.Token, &p.Device.Subscription,
			&p.Topic, &p.Kind, &p.NotificationID, &p.ConversationID, &p.SenderName, &data, &p.Count, &p.Version, &p.Attempts, &next)
		if err == nil && data != "" {
			err = json.Unmarshal([]byte(data), &p.Data)
		}
		p.NextAt = parley.FromMillis(next)
		return &p, err
	})
}

// ClaimPush implements parley.NotifyStore.
func (db *DB) ClaimPush(ctx context.Context, p *parley.Push, now, until time.Time) (bool, error) {
	res, err := db.exec(ctx, `UPDATE push_outbox SET claim_until = ?
		WHERE user_id = ? AND device_id = ? AND topic = ? AND version = ? AND claim_until <= ?`,
		parley.Millis(until), p.Device.UserID, p.Device.DeviceID, p.Topic, p.Version, parley.Millis(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// PushSent implements parley.NotifyStore.
func (db *DB) PushSent(ctx context.Context, p *parley.Push, now, next time.Time) error {
	return db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `DELETE FROM push_outbox WHERE user_id = ? AND device_id = ? AND topic = ? AND version = ?`,
			p.Device.UserID, p.Device.DeviceID, p.Topic, p.Version)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			// Events came in while it was being sent: they go out as
			// one more push, not before next.
			if _, err := tx.exec(ctx, `UPDATE push_outbox SET attempts = 0, count = count - ?, next_at = ?, claim_until = 0
				WHERE user_id = ? AND device_id = ? AND topic = ?`,
				p.Count, parley.Millis(next), p.Device.UserID, p.Device.DeviceID, p.Topic); err != nil {
				return err
			}
		}
		if p.Kind != parley.PushMessage {
			return nil // only message pushes are spaced out
		}
		_, err = tx.exec(ctx, `UPDATE push_devices SET last_push_at = ? WHERE user_id = ? AND device_id = ?`,
			parley.Millis(now), p.Device.UserID, p.Device.DeviceID)
		return err
	})
}

// PushFailed implements parley.NotifyStore.
func (db *DB) PushFailed(ctx context.Context, p *parley.Push, next time.Time) error {
	if next.IsZero() {
		_, err := db.exec(ctx, `DELETE FROM push_outbox WHERE user_id = ? AND device_id = ? AND topic = ? AND version = ?`,
			p.Device.UserID, p.Device.DeviceID, p.Topic, p.Version)
		return err
	}
	_, err := db.exec(ctx, `UPDATE push_outbox SET attempts = attempts + 1, next_at = ?, claim_until = 0
		WHERE user_id = ? AND device_id = ? AND topic = ?`,
		parley.Millis(next), p.Device.UserID, p.Device.DeviceID, p.Topic)
	return err
}

// dropSessionDevices removes the push devices a revoked session
// registered, with their pending pushes (part of the revoking transaction).
func (tx *Tx) dropSessionDevices(ctx context.Context, tokenHash string) error {
	if tokenHash == "" {
		return nil
	}
	if _, err := tx.exec(ctx, `DELETE FROM push_outbox WHERE EXISTS (SELECT 1 FROM push_devices d
		WHERE d.user_id = push_outbox.user_id AND d.device_id = push_outbox.device_id AND d.session_hash = ?)`, tokenHash); err != nil {
		return err
	}
	_, err := tx.exec(ctx, `DELETE FROM push_devices WHERE session_hash = ?`, tokenHash)
	return err
}

// dropUserDevices removes every push device of a user whose sessions were
// all revoked, with their pending pushes.
func (tx *Tx) dropUserDevices(ctx context.Context, userID string) error {
	if _, err := tx.exec(ctx, `DELETE FROM push_outbox WHERE user_id = ?`, userID); err != nil {
		return err
	}
	_, err := tx.exec(ctx, `DELETE FROM push_devices WHERE user_id = ?`, userID)
	return err
}
