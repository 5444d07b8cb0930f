package sqlstore

// Uploaded files (parley.MediaStore): their metadata, who may read them,
// and when nothing uses them any more.

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/parley-chat/parley"
)

const mediaColumns = `id, owner_id, file_type, mime_type, original_name, size, sha256, file_iv, thumb_iv, encrypted_key,
	thumb_size, thumb_sha256, uploaded_at, used_at`

func scanMedia(s scanner) (*parley.Media, error) {
	var m parley.Media
	var up, used int64
	err := s.Scan(&m.ID, &m.OwnerID, &m.FileType, &m.MimeType, &m.OriginalName, &m.Size, &m.SHA256, &m.FileIV, &m.ThumbIV,
		&m.EncryptedKey, &m.ThumbSize, &m.ThumbSHA256, &up, &used)
	m.UploadedAt, m.UsedAt = parley.FromMillis(up), parley.FromMillis(used)
	return &m, err
}

// CreateMedia implements parley.MediaStore.
func (db *DB) CreateMedia(ctx context.Context, m *parley.Media) error {
	_, err := db.exec(ctx, `INSERT INTO media (`+mediaColumns+`, check_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.OwnerID, m.FileType, m.MimeType, m.OriginalName, m.Size, m.SHA256, m.FileIV, m.ThumbIV, m.EncryptedKey,
		m.ThumbSize, m.ThumbSHA256, parley.Millis(m.UploadedAt), parley.Millis(m.UsedAt), parley.Millis(m.UploadedAt.Add(parley.MediaGrace)))
	return err
}

// MediaByID implements parley.MediaStore.
func (db *DB) MediaByID(ctx context.Context, id string) (*parley.Media, error) {
	m, err := scanMedia(db.queryRow(ctx, `SELECT `+mediaColumns+` FROM media WHERE id = ?`, id))
	return m, notFound(err, "file")
}

// CanReadMedia implements parley.MediaStore: the uploader, anyone when it
// is a profile's avatar (profiles are public), a member who can see a
// message using the file (sent after they joined, not hidden for them), or
// a former member who saw one while a member.
func (db *DB) CanReadMedia(ctx context.Context, id, userID string) (bool, error) {
	var one int
	err := db.queryRow(ctx, `SELECT 1 FROM media WHERE id = ? AND owner_id = ?
		UNION ALL
		SELECT 1 FROM (SELECT 1 AS one FROM users WHERE avatar = ? LIMIT 1) v
		UNION ALL
		SELECT 1 FROM (SELECT 1 AS one FROM messages x
			JOIN conversation_members cm ON cm.conversation_id = x.conversation_id AND cm.user_id = ?
			WHERE x.media_id = ? AND x.seq > cm.joined_seq
				AND NOT EXISTS (SELECT 1 FROM message_hidden h WHERE h.user_id = cm.user_id AND h.message_id = x.id)
			LIMIT 1) a
		UNION ALL
		SELECT 1 FROM (SELECT 1 AS one FROM messages x
			JOIN former_members f ON f.conversation_id = x.conversation_id AND f.user_id = ?
			WHERE x.media_id = ? AND x.seq > f.joined_seq AND x.seq <= f.left_seq
				AND NOT EXISTS (SELECT 1 FROM message_hidden h WHERE h.user_id = f.user_id AND h.message_id = x.id)
			LIMIT 1) b
		LIMIT 1`, id, userID, id, userID, id, userID, id).Scan(&one)
	if err := notFound(err, "file"); parley.ErrorCode(err) == parley.ENOTFOUND {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return true, nil
}

// UnusedMediaBytes implements parley.MediaStore.
func (db *DB) UnusedMediaBytes(ctx context.Context, ownerID string) (int64, error) {
	var n int64
	err := db.queryRow(ctx, `SELECT COALESCE(SUM(size + thumb_size), 0) FROM media WHERE owner_id = ? AND used_at = 0`, ownerID).Scan(&n)
	return n, err
}

// CollectableMedia implements parley.MediaStore: the files whose time to
// be looked at has come (DeleteMediaIfUnused decides).
func (db *DB) CollectableMedia(ctx context.Context, now time.Time, limit int) ([]*parley.Media, error) {
	rows, err := db.query(ctx, `SELECT `+mediaColumns+` FROM media WHERE check_after > 0 AND check_after <= ?
		ORDER BY check_after LIMIT ?`, parley.Millis(now), limit)
	return collect(rows, err, scanMedia)
}

// DeleteMediaIfUnused implements parley.MediaStore; a status (expired or
// not, until it is purged) keeps its file too. The file's row is
// locked first (a send that uses the file locks it too); the check that
// follows is a new statement, which under PostgreSQL's read committed sees
// a send that committed while this waited. A file still in use is not
// looked at again until a message using it is deleted.
func (db *DB) DeleteMediaIfUnused(ctx context.Context, id string, now time.Time) (bool, error) {
	deleted := false
	err := db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE media SET check_after = check_after WHERE id = ? AND check_after > 0 AND check_after <= ?`,
			id, parley.Millis(now))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // gone, or in use again
		}
		res, err = tx.exec(ctx, `DELETE FROM media WHERE id = ?
			AND NOT EXISTS (SELECT 1 FROM messages x WHERE x.media_id = media.id)
			AND NOT EXISTS (SELECT 1 FROM scheduled_messages s WHERE s.media_id = media.id AND s.status IN ('pending', 'sending'))
			AND NOT EXISTS (SELECT 1 FROM users u WHERE u.avatar = media.id)
			AND NOT EXISTS (SELECT 1 FROM statuses st WHERE st.media_id = media.id)`, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			deleted = true
			return nil
		}
		_, err = tx.exec(ctx, `UPDATE media SET check_after = 0 WHERE id = ?`, id)
		return err
	})
	return deleted, err
}

// useMedia marks the files of a batch's admitted sends used, under their
// row locks (taken in id order, as every batch does); a send whose mediaId
// names no file of its sender fails alone.
func (tx *Tx) useMedia(ctx context.Context, sends []*parley.Send) error {
	slices.SortStableFunc(sends, func(a, b *parley.Send) int { return strings.Compare(a.Message.MediaID, b.Message.MediaID) })
	for _, s := range sends {
		m := s.Message
		if s.Err != nil || m.MediaID == "" {
			continue
		}
		res, err := tx.exec(ctx, `UPDATE media SET used_at = CASE WHEN used_at = 0 THEN ? ELSE used_at END, check_after = 0
			WHERE id = ? AND owner_id = ?`, parley.Millis(m.SentAt), m.MediaID, m.SenderID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			s.Err = parley.Errorf(parley.EINVALID, "mediaId does not name a file you uploaded")
		}
	}
	return nil
}

// useAvatar marks the file a profile's new avatar names used, under its
// row lock, and the old one's for a look; a media id that is not an image
// of the user fails the update.
func (tx *Tx) useAvatar(ctx context.Context, userID, old, avatar string, now time.Time) error {
	if old == avatar {
		return nil
	}
	if parley.IsMediaID(old) {
		if _, err := tx.exec(ctx, `UPDATE media SET check_after = 1 WHERE id = ? AND check_after = 0`, old); err != nil {
			return err
		}
	}
	if !parley.IsMediaID(avatar) {
		return nil
	}
	res, err := tx.exec(ctx, `UPDATE media SET used_at = CASE WHEN used_at = 0 THEN ? ELSE used_at END, check_after = 0
		WHERE id = ? AND owner_id = ? AND file_type = 'image'`, parley.Millis(now), avatar, userID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return parley.Errorf(parley.EINVALID, "avatar must be a URL or an image you uploaded")
	}
	return nil
}

// releaseMedia marks for a look at once the files used by the messages
// that where selects (a query of message ids with its args): they are
// about to be deleted.
func (tx *Tx) releaseMedia(ctx context.Context, where string, args ...any) error {
	_, err := tx.exec(ctx, `UPDATE media SET check_after = 1 WHERE check_after = 0
		AND id IN (SELECT media_id FROM messages WHERE media_id <> '' AND id IN (`+where+`))`, args...)
	return err
}
