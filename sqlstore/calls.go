package sqlstore

// Calls (parley.CallStore): the state every node reads, moved only by
// conditional updates so that two nodes never both win the same move.

import (
	"context"
	"time"

	"github.com/parley-chat/parley"
)

const callColumns = `id, caller_id, callee_id, type, state, reason, caller_device, callee_device, created_at, answered_at, ended_at,
	caller_lost_at, callee_lost_at`

func scanCall(s scanner) (*parley.Call, error) {
	var c parley.Call
	var created, answered, ended, callerLost, calleeLost int64
	err := s.Scan(&c.ID, &c.CallerID, &c.CalleeID, &c.Type, &c.State, &c.Reason, &c.CallerDevice, &c.CalleeDevice,
		&created, &answered, &ended, &callerLost, &calleeLost)
	c.CreatedAt, c.AnsweredAt, c.EndedAt = parley.FromMillis(created), parley.FromMillis(answered), parley.FromMillis(ended)
	c.CallerLostAt, c.CalleeLostAt = parley.FromMillis(callerLost), parley.FromMillis(calleeLost)
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
		if _, err := tx.exec(ctx, `INSERT INTO calls (`+callColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.CallerID, c.CalleeID, c.Type, c.State, c.Reason, c.CallerDevice, c.CalleeDevice,
			parley.Millis(c.CreatedAt), parley.Millis(c.AnsweredAt), parley.Millis(c.EndedAt),
			parley.Millis(c.CallerLostAt), parley.Millis(c.CalleeLostAt)); err != nil {
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
	return db.moveCall(ctx, c, from, ``, nil, changes)
}

// EndLostCall implements parley.CallStore: MoveCall with the lost mark in
// the condition, so a device that reconnected after the job read the call
// keeps it.
func (db *DB) EndLostCall(ctx context.Context, c *parley.Call, from string, since time.Time, changes ...*parley.Change) (bool, error) {
	b := parley.Millis(since)
	return db.moveCall(ctx, c, from, ` AND (caller_lost_at BETWEEN 1 AND ? OR callee_lost_at BETWEEN 1 AND ?)`, []any{b, b}, changes)
}

// moveCall moves c from state from, under the further condition cond
// (with its arguments), and records changes if it did.
func (db *DB) moveCall(ctx context.Context, c *parley.Call, from, cond string, condArgs []any, changes []*parley.Change) (bool, error) {
	won := false
	args := append([]any{c.State, c.Reason, c.CalleeDevice, parley.Millis(c.AnsweredAt), parley.Millis(c.EndedAt), c.ID, from}, condArgs...)
	err := db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE calls SET state = ?, reason = ?, callee_device = ?, answered_at = ?, ended_at = ?
			WHERE id = ? AND state = ?`+cond, args...)
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

// liveCalls is the condition of a call still ringing or live, written as
// the partial indexes calls_live_caller and calls_live_callee are, so that
// both databases use them.
const liveCalls = `state IN ('ringing', 'accepted')`

// MarkDeviceLost implements parley.CallStore. The callee's device is
// empty until the call is answered, so a ringing call is marked for its
// caller's device only.
func (db *DB) MarkDeviceLost(ctx context.Context, userID, deviceID string, at time.Time) (int, error) {
	if deviceID == "" {
		return 0, nil
	}
	ms := parley.Millis(at)
	n := 0
	err := db.inTx(ctx, func(tx *Tx) error {
		for _, side := range []string{"caller", "callee"} {
			res, err := tx.exec(ctx, `UPDATE calls SET `+side+`_lost_at = ? WHERE `+side+`_id = ? AND `+liveCalls+`
				AND `+side+`_device = ? AND `+side+`_lost_at = 0`, ms, userID, deviceID)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += int(k)
		}
		return nil
	})
	return n, err
}

// ClearDeviceLost implements parley.CallStore.
func (db *DB) ClearDeviceLost(ctx context.Context, userID, deviceID string) error {
	if deviceID == "" {
		return nil
	}
	return db.inTx(ctx, func(tx *Tx) error {
		for _, side := range []string{"caller", "callee"} {
			if _, err := tx.exec(ctx, `UPDATE calls SET `+side+`_lost_at = 0 WHERE `+side+`_id = ? AND `+liveCalls+`
				AND `+side+`_device = ? AND `+side+`_lost_at <> 0`, userID, deviceID); err != nil {
				return err
			}
		}
		return nil
	})
}

// MarkPartyLost implements parley.CallStore.
func (db *DB) MarkPartyLost(ctx context.Context, id, userID, state string, at time.Time) (bool, error) {
	ms := parley.Millis(at)
	res, err := db.exec(ctx, `UPDATE calls SET
		caller_lost_at = CASE WHEN caller_id = ? AND caller_lost_at = 0 THEN ? ELSE caller_lost_at END,
		callee_lost_at = CASE WHEN callee_id = ? AND callee_lost_at = 0 THEN ? ELSE callee_lost_at END
		WHERE id = ? AND state = ? AND ((caller_id = ? AND caller_lost_at = 0) OR (callee_id = ? AND callee_lost_at = 0))`,
		userID, ms, userID, ms, id, state, userID, userID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// LiveCallsOf implements parley.CallStore.
func (db *DB) LiveCallsOf(ctx context.Context, userID string) ([]*parley.Call, error) {
	rows, err := db.query(ctx, `SELECT `+callColumns+` FROM calls WHERE caller_id = ? AND `+liveCalls+`
		UNION ALL
		SELECT `+callColumns+` FROM calls WHERE callee_id = ? AND `+liveCalls+``, userID, userID)
	return collect(rows, err, scanCall)
}

// CallsIn implements parley.CallStore.
func (db *DB) CallsIn(ctx context.Context, state, after string, limit int) ([]*parley.Call, error) {
	rows, err := db.query(ctx, `SELECT `+callColumns+` FROM calls WHERE state = ? AND id > ? ORDER BY id LIMIT ?`, state, after, limit)
	return collect(rows, err, scanCall)
}

// LostSince implements parley.CallStore.
func (db *DB) LostSince(ctx context.Context, since time.Time, limit int) ([]*parley.Call, error) {
	b := parley.Millis(since)
	rows, err := db.query(ctx, `SELECT `+callColumns+` FROM calls WHERE `+liveCalls+`
		AND (caller_lost_at BETWEEN 1 AND ? OR callee_lost_at BETWEEN 1 AND ?) ORDER BY created_at LIMIT ?`, b, b, limit)
	return collect(rows, err, scanCall)
}
