package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"github.com/parley-chat/parley"
)

// Presence records (parley.PresenceStore). Every change of a user's
// presence_users row happens in a transaction that first locks that row
// (on PostgreSQL; SQLite runs one writer at a time), and the conditional
// DELETE that follows is a new statement, so it sees every socket row
// committed by the transaction it waited for. Without the lock, two nodes
// losing a user's last sockets at once could each still see the other's
// row, and the user would stay online for good.

// liveSocketOf is true when a node with a live lease holds sockets of the
// user named by the first argument; the second is now.
const liveSocketOf = `EXISTS (SELECT 1 FROM presence_sockets s JOIN presence_nodes n ON n.node_id = s.node_id
	WHERE s.user_id = ? AND n.expires_at > ?)`

// forUpdate locks the selected rows on PostgreSQL.
func (db *DB) forUpdate() string {
	if db.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// lockPresence locks userID's presence_users row, if there is one.
func (db *DB) lockPresence(ctx context.Context, tx *Tx, userID string) error {
	var since int64
	err := tx.queryRow(ctx, `SELECT online_since FROM presence_users WHERE user_id = ?`+db.forUpdate(), userID).Scan(&since)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	return err
}

// RenewNodeLease implements parley.PresenceStore.
func (db *DB) RenewNodeLease(ctx context.Context, node string, now, until time.Time) (bool, error) {
	res, err := db.exec(ctx, `UPDATE presence_nodes SET expires_at = ? WHERE node_id = ? AND expires_at > ?`,
		parley.Millis(until), node, parley.Millis(now))
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return n > 0, err
	}
	_, err = db.exec(ctx, `INSERT INTO presence_nodes (node_id, expires_at) VALUES (?, ?)
		ON CONFLICT (node_id) DO UPDATE SET expires_at = excluded.expires_at`, node, parley.Millis(until))
	return false, err
}

// JoinPresence implements parley.PresenceStore.
func (db *DB) JoinPresence(ctx context.Context, node, userID string, now time.Time) (bool, error) {
	came := false
	err := db.inTx(ctx, func(tx *Tx) error {
		if err := db.lockPresence(ctx, tx, userID); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO presence_sockets (user_id, node_id) VALUES (?, ?) ON CONFLICT DO NOTHING`,
			userID, node); err != nil {
			return err
		}
		res, err := tx.exec(ctx, `INSERT INTO presence_users (user_id, online_since) VALUES (?, ?) ON CONFLICT DO NOTHING`,
			userID, parley.Millis(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		came = n > 0
		return err
	})
	return came, err
}

// LeavePresence implements parley.PresenceStore.
func (db *DB) LeavePresence(ctx context.Context, node, userID string, now time.Time) (bool, error) {
	went := false
	err := db.inTx(ctx, func(tx *Tx) error {
		if err := db.lockPresence(ctx, tx, userID); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM presence_sockets WHERE user_id = ? AND node_id = ?`, userID, node); err != nil {
			return err
		}
		var err error
		went, err = db.offlineIfNoLiveSocket(ctx, tx, userID, now)
		return err
	})
	return went, err
}

func (db *DB) offlineIfNoLiveSocket(ctx context.Context, tx *Tx, userID string, now time.Time) (bool, error) {
	res, err := tx.exec(ctx, `DELETE FROM presence_users WHERE user_id = ? AND NOT `+liveSocketOf, userID, userID, parley.Millis(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// SweepPresence implements parley.PresenceStore. Each dead node is swept
// in a transaction holding its lease row, so a node that was only late and
// renews at that moment either keeps everything or finds its lease gone
// (RenewNodeLease reports false) and joins its users again.
func (db *DB) SweepPresence(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := db.query(ctx, `SELECT node_id FROM presence_nodes WHERE expires_at <= ?`, parley.Millis(now))
	dead, err := collect(rows, err, scanString)
	if err != nil {
		return nil, err
	}
	var offline []string
	for _, node := range dead {
		var went []string
		err := db.inTx(ctx, func(tx *Tx) error {
			went = went[:0]
			var until int64
			err := tx.queryRow(ctx, `SELECT expires_at FROM presence_nodes WHERE node_id = ?`+db.forUpdate(), node).Scan(&until)
			if errors.Is(err, sql.ErrNoRows) || (err == nil && until > parley.Millis(now)) {
				return nil // swept by another node, or renewed
			} else if err != nil {
				return err
			}
			users, err := db.deleteNodeSockets(ctx, tx, node)
			if err != nil {
				return err
			}
			for _, u := range users {
				if err := db.lockPresence(ctx, tx, u); err != nil {
					return err
				}
				ok, err := db.offlineIfNoLiveSocket(ctx, tx, u, now)
				if err != nil {
					return err
				}
				if ok {
					went = append(went, u)
				}
			}
			_, err = tx.exec(ctx, `DELETE FROM presence_nodes WHERE node_id = ?`, node)
			return err
		})
		if err != nil {
			return offline, err
		}
		offline = append(offline, went...)
	}
	return offline, nil
}

// deleteNodeSockets removes node's socket rows and returns their users,
// sorted so that concurrent sweeps lock presence rows in the same order.
func (db *DB) deleteNodeSockets(ctx context.Context, tx *Tx, node string) ([]string, error) {
	rows, err := tx.query(ctx, `DELETE FROM presence_sockets WHERE node_id = ? RETURNING user_id`, node)
	users, err := collect(rows, err, scanString)
	if err != nil {
		return nil, err
	}
	slices.Sort(users)
	return users, nil
}

// IsOnline implements parley.PresenceStore.
func (db *DB) IsOnline(ctx context.Context, userID string) (bool, error) {
	var n int
	err := db.queryRow(ctx, `SELECT COUNT(*) FROM presence_users WHERE user_id = ?`, userID).Scan(&n)
	return n > 0, err
}

// TakeToken implements parley.RateStore. The bucket row is locked for the
// read-modify-write (on SQLite the single writer does that).
func (db *DB) TakeToken(ctx context.Context, key string, now time.Time, perMinute, burst int) (bool, time.Duration, error) {
	if perMinute <= 0 {
		return true, 0, nil
	}
	nowMs := parley.Millis(now)
	perMs := float64(perMinute) / 60000
	ok, wait := false, time.Duration(0)
	err := db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `INSERT INTO rate_buckets (bucket, tokens, updated_at) VALUES (?, ?, ?) ON CONFLICT (bucket) DO NOTHING`,
			key, float64(burst), nowMs); err != nil {
			return err
		}
		var tokens float64
		var at int64
		if err := tx.queryRow(ctx, `SELECT tokens, updated_at FROM rate_buckets WHERE bucket = ?`+db.forUpdate(), key).Scan(&tokens, &at); err != nil {
			return err
		}
		// Clocks of nodes differ a little: time never runs backwards here.
		if nowMs > at {
			tokens = min(float64(burst), tokens+float64(nowMs-at)*perMs)
			at = nowMs
		}
		if tokens < 1 {
			wait = time.Duration((1 - tokens) / perMs * float64(time.Millisecond))
			return nil
		}
		ok = true
		_, err := tx.exec(ctx, `UPDATE rate_buckets SET tokens = ?, updated_at = ? WHERE bucket = ?`, tokens-1, at, key)
		return err
	})
	if err != nil {
		return false, 0, err
	}
	return ok, wait, nil
}

// PruneTokens implements parley.RateStore.
func (db *DB) PruneTokens(ctx context.Context, before time.Time) error {
	_, err := db.exec(ctx, `DELETE FROM rate_buckets WHERE updated_at < ?`, parley.Millis(before))
	return err
}

// TakeLease implements jobs.Leases: one statement takes a free or expired
// lease, or renews holder's own.
func (db *DB) TakeLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error) {
	res, err := db.exec(ctx, `INSERT INTO job_leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE job_leases.holder = excluded.holder OR job_leases.expires_at <= ?`,
		name, holder, parley.Millis(until), parley.Millis(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// ReleaseLease implements jobs.Leases.
func (db *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := db.exec(ctx, `DELETE FROM job_leases WHERE name = ? AND holder = ?`, name, holder)
	return err
}
