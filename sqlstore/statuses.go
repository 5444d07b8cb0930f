package sqlstore

// Statuses (parley.StatusStore): 24-hour stories, the users each was sent
// to with their wrapped keys, their views, and the purge of expired ones.

import (
	"context"
	"strings"
	"time"

	"github.com/parley-chat/parley"
)

const statusColumns = `s.id, s.owner_id, s.type, s.content, s.media_id, s.background_color, s.font_style, s.visible_to, s.owner_key,
	s.created_at, s.expires_at`

// mayView is the condition under which viewer row v's user sees status s:
// still one of the owner's contacts, and no block either way. Expiry is
// checked beside it, against the caller's clock.
const mayView = `EXISTS (SELECT 1 FROM contacts c WHERE c.user_id = s.owner_id AND c.contact_id = v.user_id)
	AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.user_id = s.owner_id AND b.blocked_id = v.user_id)
		OR (b.user_id = v.user_id AND b.blocked_id = s.owner_id))`

// statusReturning is statusColumns without the table's alias, for the
// RETURNING clause of a DELETE (SQLite takes no alias there).
var statusReturning = strings.ReplaceAll(statusColumns, "s.", "")

func scanStatus(s scanner) (*parley.Status, error) {
	var st parley.Status
	var created, expires int64
	err := s.Scan(&st.ID, &st.OwnerID, &st.Type, &st.Content, &st.MediaID, &st.BackgroundColor, &st.FontStyle, &st.VisibleTo,
		&st.OwnerKey, &created, &expires)
	st.CreatedAt, st.ExpiresAt = parley.FromMillis(created), parley.FromMillis(expires)
	return &st, err
}

// scanStatusFor reads statusColumns followed by the viewer's key and view time.
func scanStatusFor(s scanner) (*parley.StatusFor, error) {
	var st parley.Status
	var seen parley.StatusFor
	var created, expires, viewed int64
	err := s.Scan(&st.ID, &st.OwnerID, &st.Type, &st.Content, &st.MediaID, &st.BackgroundColor, &st.FontStyle, &st.VisibleTo,
		&st.OwnerKey, &created, &expires, &seen.Key, &viewed)
	st.CreatedAt, st.ExpiresAt = parley.FromMillis(created), parley.FromMillis(expires)
	seen.Status, seen.ViewedAt = &st, parley.FromMillis(viewed)
	return &seen, err
}

// CreateStatus implements parley.StatusStore. The media row is locked by
// the update that marks it used, so the collector (which locks it first
// too) either deleted it before (and the create fails) or sees the status.
func (db *DB) CreateStatus(ctx context.Context, st *parley.Status, viewers []parley.StatusViewer, changes ...*parley.Change) error {
	return db.inTx(ctx, func(tx *Tx) error {
		var live int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM statuses WHERE owner_id = ? AND expires_at > ?`,
			st.OwnerID, parley.Millis(st.CreatedAt)).Scan(&live); err != nil {
			return err
		}
		if live >= parley.MaxLiveStatuses {
			return parley.Errorf(parley.ECONFLICT, "you have %d statuses already (at most %d at a time); delete one or wait for one to expire",
				live, parley.MaxLiveStatuses)
		}
		if st.MediaID != "" {
			res, err := tx.exec(ctx, `UPDATE media SET used_at = CASE WHEN used_at = 0 THEN ? ELSE used_at END, check_after = 0
				WHERE id = ? AND owner_id = ? AND file_type IN ('image', 'video')`, parley.Millis(st.CreatedAt), st.MediaID, st.OwnerID)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				return parley.Errorf(parley.EINVALID, "mediaId does not name an image or video you uploaded")
			}
		}
		if _, err := tx.exec(ctx, `INSERT INTO statuses (id, owner_id, type, content, media_id, background_color, font_style, visible_to,
			owner_key, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			st.ID, st.OwnerID, st.Type, st.Content, st.MediaID, st.BackgroundColor, st.FontStyle, st.VisibleTo, st.OwnerKey,
			parley.Millis(st.CreatedAt), parley.Millis(st.ExpiresAt)); err != nil {
			return err
		}
		const cols = 3
		row := "(" + placeholders(cols) + ")"
		for list := viewers; len(list) > 0; {
			n := chunk(len(list))
			args := make([]any, 0, n*cols)
			for _, v := range list[:n] {
				args = append(args, st.ID, v.UserID, v.EncryptedKey)
			}
			if _, err := tx.exec(ctx, `INSERT INTO status_viewers (status_id, user_id, encrypted_key) VALUES `+
				strings.TrimSuffix(strings.Repeat(row+",", n), ","), args...); err != nil {
				return err
			}
			list = list[n:]
		}
		return tx.addChanges(ctx, changes...)
	})
}

// StatusByID implements parley.StatusStore.
func (db *DB) StatusByID(ctx context.Context, id string) (*parley.Status, error) {
	st, err := scanStatus(db.queryRow(ctx, `SELECT `+statusColumns+` FROM statuses s WHERE s.id = ?`, id))
	return st, notFound(err, "status")
}

// VisibleStatus implements parley.StatusStore.
func (db *DB) VisibleStatus(ctx context.Context, id, viewerID string, now time.Time) (*parley.StatusFor, error) {
	seen, err := scanStatusFor(db.queryRow(ctx, `SELECT `+statusColumns+`, v.encrypted_key, v.viewed_at
		FROM statuses s JOIN status_viewers v ON v.status_id = s.id AND v.user_id = ?
		WHERE s.id = ? AND s.expires_at > ? AND `+mayView, viewerID, id, parley.Millis(now)))
	return seen, notFound(err, "status")
}

// StatusesOf implements parley.StatusStore.
func (db *DB) StatusesOf(ctx context.Context, ownerID, viewerID string, now time.Time) ([]*parley.StatusFor, error) {
	if ownerID == viewerID {
		rows, err := db.query(ctx, `SELECT `+statusColumns+`, '', 0 FROM statuses s
			WHERE s.owner_id = ? AND s.expires_at > ? ORDER BY s.created_at DESC, s.id DESC`, ownerID, parley.Millis(now))
		return collect(rows, err, scanStatusFor)
	}
	rows, err := db.query(ctx, `SELECT `+statusColumns+`, v.encrypted_key, v.viewed_at
		FROM statuses s JOIN status_viewers v ON v.status_id = s.id AND v.user_id = ?
		WHERE s.owner_id = ? AND s.expires_at > ? AND `+mayView+`
		ORDER BY s.created_at DESC, s.id DESC`, viewerID, ownerID, parley.Millis(now))
	return collect(rows, err, scanStatusFor)
}

// StatusFeed implements parley.StatusStore.
func (db *DB) StatusFeed(ctx context.Context, viewerID string, now time.Time) ([]*parley.StatusFor, error) {
	rows, err := db.query(ctx, `SELECT `+statusColumns+`, v.encrypted_key, v.viewed_at
		FROM status_viewers v JOIN statuses s ON s.id = v.status_id
		WHERE v.user_id = ? AND s.owner_id <> v.user_id AND s.expires_at > ? AND `+mayView,
		viewerID, parley.Millis(now))
	return collect(rows, err, scanStatusFor)
}

// StatusViewers implements parley.StatusStore.
func (db *DB) StatusViewers(ctx context.Context, ids []string) (map[string][]parley.StatusViewer, error) {
	out := map[string][]parley.StatusViewer{}
	err := db.inList(ids, func(list string, args []any) error {
		rows, err := db.query(ctx, `SELECT status_id, user_id, encrypted_key, viewed_at FROM status_viewers
			WHERE status_id IN (`+list+`) ORDER BY viewed_at = 0, viewed_at, user_id`, args...)
		return each(rows, err, func(s scanner) error {
			var id string
			var v parley.StatusViewer
			var viewed int64
			if err := s.Scan(&id, &v.UserID, &v.EncryptedKey, &viewed); err != nil {
				return err
			}
			v.ViewedAt = parley.FromMillis(viewed)
			out[id] = append(out[id], v)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CanReadStatusMedia implements parley.StatusStore.
func (db *DB) CanReadStatusMedia(ctx context.Context, mediaID, userID string, now time.Time) (bool, error) {
	var n int
	err := db.queryRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 AS one FROM statuses s
		JOIN status_viewers v ON v.status_id = s.id AND v.user_id = ?
		WHERE s.media_id = ? AND s.expires_at > ? AND `+mayView+` LIMIT 1) x`, userID, mediaID, parley.Millis(now)).Scan(&n)
	return n > 0, err
}

// RecordStatusView implements parley.StatusStore.
func (db *DB) RecordStatusView(ctx context.Context, id, viewerID string, now time.Time, ch *parley.Change) (bool, error) {
	first := false
	err := db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE status_viewers SET viewed_at = ? WHERE status_id = ? AND user_id = ? AND viewed_at = 0`,
			parley.Millis(now), id, viewerID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		first = true
		return tx.addChanges(ctx, ch)
	})
	return first, err
}

// DeleteStatus implements parley.StatusStore.
func (db *DB) DeleteStatus(ctx context.Context, id, ownerID string) (*parley.Status, error) {
	var st *parley.Status
	err := db.inTx(ctx, func(tx *Tx) error {
		rows, err := tx.query(ctx, `DELETE FROM statuses WHERE id = ? AND owner_id = ? RETURNING `+statusReturning, id, ownerID)
		list, err := collect(rows, err, scanStatus)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			return parley.Errorf(parley.ENOTFOUND, "status not found")
		}
		st = list[0]
		return tx.forgetStatuses(ctx, list)
	})
	return st, err
}

// DeleteExpiredStatuses implements parley.StatusStore.
func (db *DB) DeleteExpiredStatuses(ctx context.Context, now time.Time, limit int) ([]*parley.Status, error) {
	var out []*parley.Status
	err := db.inTx(ctx, func(tx *Tx) error {
		rows, err := tx.query(ctx, `SELECT s.id FROM statuses s WHERE s.expires_at <= ? ORDER BY s.expires_at, s.id LIMIT ?`,
			parley.Millis(now), limit)
		ids, err := collect(rows, err, scanString)
		if err != nil || len(ids) == 0 {
			return err
		}
		rows, err = tx.query(ctx, `DELETE FROM statuses WHERE id IN (`+placeholders(len(ids))+`) RETURNING `+statusReturning,
			anys(ids)...)
		if out, err = collect(rows, err, scanStatus); err != nil {
			return err
		}
		return tx.forgetStatuses(ctx, out)
	})
	return out, err
}

// forgetStatuses removes what refers to statuses just deleted: who they
// were sent to (with the views), their entries in the sync log, and marks
// their files for the collector at once.
func (tx *Tx) forgetStatuses(ctx context.Context, list []*parley.Status) error {
	if len(list) == 0 {
		return nil
	}
	ids := make([]any, len(list))
	var media []any
	for i, st := range list {
		ids[i] = st.ID
		if st.MediaID != "" {
			media = append(media, st.MediaID)
		}
	}
	in := placeholders(len(ids))
	if _, err := tx.exec(ctx, `DELETE FROM status_viewers WHERE status_id IN (`+in+`)`, ids...); err != nil {
		return err
	}
	if _, err := tx.exec(ctx, `DELETE FROM changes WHERE message_id IN (`+in+`)`, ids...); err != nil {
		return err
	}
	if len(media) == 0 {
		return nil
	}
	_, err := tx.exec(ctx, `UPDATE media SET check_after = 1 WHERE check_after = 0 AND id IN (`+placeholders(len(media))+`)`, media...)
	return err
}
