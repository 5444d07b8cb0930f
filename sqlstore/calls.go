package sqlstore

// Calls (parley.CallStore): the state every node reads, moved only by
// conditional updates so that two nodes never both win the same move.

import (
	"context"
	"time"

	"github.com/parley-chat/parley"
)

const callColumns = `id, caller_id, callee_id, type, state, reason, caller_device, callee_device, created_at, answered_at, ended_at`

func scanCall(s scanner) (*parley.Call, error) {
	var c parley.Call
	var created, answered, ended int64
	err := s.Scan(&c.ID, &c.CallerID, &c.CalleeID, &c.Type, &c.State, &c.Reason, &c.CallerDevice, &c.CalleeDevice,
		&created, &answered, &ended)
	c.CreatedAt, c.AnsweredAt, c.EndedAt = parley.FromMillis(created), parley.FromMillis(answered), parley.FromMillis(ended)
	return &c, err
}

// CreateCall implements parley.CallStore. The busy check and the insert
// share a transaction; a callee who accepts another call at the same
// moment on PostgreSQL may still ring once, and the call then stays
// ringing until it is answered, ended or missed like any other.
func (db *DB) CreateCall(ctx context.Context, c *parley.Call, build func(c *parley.Call) []*parley.Change) error {
	return db.inTx(ctx, func(tx *Tx) error {
		var n int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM calls WHERE state = 'accepted' AND (caller_id = ? OR callee_id = ?)`,
			c.CalleeID, c.CalleeID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			c.State, c.Reason, c.EndedAt = parley.CallBusy, parley.CallBusy, c.CreatedAt
		}
		if _, err := tx.exec(ctx, `INSERT INTO calls (`+callColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.CallerID, c.CalleeID, c.Type, c.State, c.Reason, c.CallerDevice, c.CalleeDevice,
			parley.Millis(c.CreatedAt), parley.Millis(c.AnsweredAt), parley.Millis(c.EndedAt)); err != nil {
			return err
		}
		return tx.addChanges(ctx, build(c)...)
	})
}

// CallByID implements parley.CallStore.
func (db *DB) CallByID(ctx context.Context, id string) (*parley.Call, error) {
	c, err := scanCall(db.queryRow(ctx, `SELECT `+callColumns+` FROM calls WHERE id = ?`, id))
	return c, notFound(err, "call")
}

// MoveCall implements parley.CallStore: one UPDATE conditioned on the
// state read before; the row lock makes a concurrent mover wait and then
// find the state changed (PostgreSQL re-checks the WHERE clause on the
// new row version), so it updates nothing.
func (db *DB) MoveCall(ctx context.Context, c *parley.Call, from string, changes ...*parley.Change) (bool, error) {
	won := false
	err := db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE calls SET state = ?, reason = ?, callee_device = ?, answered_at = ?, ended_at = ?
			WHERE id = ? AND state = ?`, c.State, c.Reason, c.CalleeDevice, parley.Millis(c.AnsweredAt), parley.Millis(c.EndedAt), c.ID, from)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		won = true
		return tx.addChanges(ctx, changes...)
	})
	return won, err
}

// CallHistory implements parley.CallStore.
func (db *DB) CallHistory(ctx context.Context, userID string, before time.Time, limit int) ([]*parley.Call, error) {
	b := parley.Millis(before)
	rows, err := db.query(ctx, `SELECT `+callColumns+` FROM (
		SELECT * FROM (SELECT `+callColumns+` FROM calls WHERE caller_id = ? AND created_at < ? ORDER BY created_at DESC, id DESC LIMIT ?) a
		UNION ALL
		SELECT * FROM (SELECT `+callColumns+` FROM calls WHERE callee_id = ? AND caller_id <> ? AND created_at < ? ORDER BY created_at DESC, id DESC LIMIT ?) b
		) x ORDER BY created_at DESC, id DESC LIMIT ?`, userID, b, limit, userID, userID, b, limit, limit)
	return collect(rows, err, scanCall)
}

// RingingSince implements parley.CallStore.
func (db *DB) RingingSince(ctx context.Context, since time.Time, limit int) ([]*parley.Call, error) {
	rows, err := db.query(ctx, `SELECT `+callColumns+` FROM calls WHERE state = 'ringing' AND created_at <= ?
		ORDER BY created_at LIMIT ?`, parley.Millis(since), limit)
	return collect(rows, err, scanCall)
}

// RingingCall implements parley.CallStore.
func (db *DB) RingingCall(ctx context.Context, callerID, calleeID string) (*parley.Call, error) {
	c, err := scanCall(db.queryRow(ctx, `SELECT `+callColumns+` FROM calls WHERE caller_id = ? AND callee_id = ? AND state = 'ringing'
		ORDER BY created_at DESC LIMIT 1`, callerID, calleeID))
	return c, notFound(err, "ringing call")
}
