package sqlstore

// Communities, their members and channels, channel keys and pins
// (parley.CommunityStore). A channel is a conversation of kind channel;
// its readers are that conversation's members, with role admin for the
// community's owner and admins (the send policy reads it) and member for
// the others. Every change of who reads a channel, or of a reader's role,
// bumps the channel's members_version under its lock, as for groups.

import (
	"context"
	"database/sql"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/parley-chat/parley"
)

const communityColumns = `c.id, c.name, c.description, c.avatar, c.cover_image, c.created_by, c.owner_id, c.is_private,
	c.community_key, c.default_channel, c.members_count, c.created_at, c.updated_at`

func scanCommunity(s scanner) (*parley.Community, error) {
	var c parley.Community
	var created, updated int64
	if err := s.Scan(&c.ID, &c.Name, &c.Description, &c.Avatar, &c.CoverImage, &c.CreatedBy, &c.OwnerID, &c.IsPrivate,
		&c.CommunityKey, &c.DefaultChannel, &c.MembersCount, &created, &updated); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = parley.FromMillis(created), parley.FromMillis(updated)
	return &c, nil
}

const channelColumns = `ch.conversation_id, ch.community_id, ch.name, ch.description, ch.type, ch.is_private, ch.created_by,
	ch.created_at, ch.updated_at, (SELECT COUNT(*) FROM conversation_members n WHERE n.conversation_id = ch.conversation_id)`

func scanChannel(s scanner) (*parley.Channel, error) {
	var ch parley.Channel
	var created, updated int64
	if err := s.Scan(&ch.ID, &ch.CommunityID, &ch.Name, &ch.Description, &ch.Type, &ch.IsPrivate, &ch.CreatedBy,
		&created, &updated, &ch.MembersCount); err != nil {
		return nil, err
	}
	ch.CreatedAt, ch.UpdatedAt = parley.FromMillis(created), parley.FromMillis(updated)
	return &ch, nil
}

const communityMemberColumns = `community_id, user_id, role, status, encrypted_key, joined_at`

func scanCommunityMember(s scanner) (*parley.CommunityMember, error) {
	var m parley.CommunityMember
	var joined int64
	if err := s.Scan(&m.CommunityID, &m.UserID, &m.Role, &m.Status, &m.EncryptedKey, &joined); err != nil {
		return nil, err
	}
	m.JoinedAt = parley.FromMillis(joined)
	return &m, nil
}

// channelRole is the role a community member has in its channels'
// conversations.
func channelRole(role string) string {
	if parley.IsAdminRole(role) {
		return parley.RoleAdmin
	}
	return parley.RoleMember
}

// CreateCommunity implements parley.CommunityStore.
func (db *DB) CreateCommunity(ctx context.Context, c *parley.Community, creatorKey string, general *parley.Channel) error {
	at := parley.Millis(c.CreatedAt)
	return db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `INSERT INTO communities (id, name, name_lower, description, avatar, cover_image, created_by, owner_id,
			is_private, community_key, default_channel, members_count, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
			c.ID, c.Name, strings.ToLower(c.Name), c.Description, c.Avatar, c.CoverImage, c.CreatedBy, c.OwnerID, c.IsPrivate,
			c.CommunityKey, general.ID, at, at); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO community_members (community_id, user_id, role, status, encrypted_key, joined_at)
			VALUES (?, ?, ?, ?, ?, ?)`, c.ID, c.OwnerID, parley.RoleOwner, parley.MemberActive, creatorKey, at); err != nil {
			return err
		}
		c.DefaultChannel, c.MembersCount = general.ID, 1
		return tx.insertChannel(ctx, general, []string{c.OwnerID}, nil)
	})
}

// insertChannel stores a channel and its conversation with readers (for
// a public channel: every approved member, whatever readers says).
func (tx *Tx) insertChannel(ctx context.Context, ch *parley.Channel, readers []string, keys map[string]string) error {
	at := parley.Millis(ch.CreatedAt)
	if _, err := tx.exec(ctx, `INSERT INTO conversations (id, kind, created_at) VALUES (?, ?, ?)`, ch.ID, parley.KindChannel, at); err != nil {
		return err
	}
	if _, err := tx.exec(ctx, `INSERT INTO channels (conversation_id, community_id, name, description, type, is_private, created_by,
		created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ch.ID, ch.CommunityID, ch.Name, ch.Description, ch.Type, ch.IsPrivate, ch.CreatedBy, at, at); err != nil {
		return err
	}
	head, err := tx.headChange(ctx)
	if err != nil {
		return err
	}
	if !ch.IsPrivate {
		if _, err := tx.exec(ctx, `INSERT INTO conversation_members (conversation_id, user_id, role, joined_at, joined_change)
			SELECT ?, user_id, CASE WHEN role = 'member' THEN 'member' ELSE 'admin' END, ?, ? FROM community_members
			WHERE community_id = ? AND status = 'member'`, ch.ID, at, head, ch.CommunityID); err != nil {
			return err
		}
	} else if len(readers) > 0 {
		args := []any{ch.ID, at, head, ch.CommunityID}
		for _, u := range readers {
			args = append(args, u)
		}
		res, err := tx.exec(ctx, `INSERT INTO conversation_members (conversation_id, user_id, role, joined_at, joined_change)
			SELECT ?, user_id, CASE WHEN role = 'member' THEN 'member' ELSE 'admin' END, ?, ? FROM community_members
			WHERE community_id = ? AND status = 'member' AND user_id IN (`+placeholders(len(readers))+`)`, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); int(n) != len(readers) {
			return parley.Errorf(parley.EINVALID, "allowedMembers must be members of the community")
		}
	}
	return tx.setChannelKeys(ctx, ch.ID, keys, ch.CreatedAt)
}

// ids runs a query of one string column in the transaction.
func (tx *Tx) ids(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := tx.query(ctx, query, args...)
	return collect(rows, err, scanString)
}

// headChange returns the id of the newest change: a reader added now sees
// the changes recorded after it (and every message of the channel).
func (tx *Tx) headChange(ctx context.Context) (int64, error) {
	var last int64
	err := tx.queryRow(ctx, `SELECT last FROM change_counter WHERE id = 1`).Scan(&last)
	return last, err
}

// Community implements parley.CommunityStore.
func (db *DB) Community(ctx context.Context, id string) (*parley.Community, error) {
	c, err := scanCommunity(db.queryRow(ctx, `SELECT `+communityColumns+` FROM communities c WHERE c.id = ?`, id))
	return c, notFound(err, "community")
}

// CommunitiesByIDs implements parley.CommunityStore.
func (db *DB) CommunitiesByIDs(ctx context.Context, ids []string) ([]*parley.Community, error) {
	return collectIn(ctx, db, `SELECT `+communityColumns+` FROM communities c WHERE c.id IN (%s)`, ids, scanCommunity)
}

// CommunityMember implements parley.CommunityStore.
func (db *DB) CommunityMember(ctx context.Context, communityID, userID string) (*parley.CommunityMember, error) {
	m, err := scanCommunityMember(db.queryRow(ctx, `SELECT `+communityMemberColumns+` FROM community_members
		WHERE community_id = ? AND user_id = ?`, communityID, userID))
	return m, notFound(err, "community")
}

// CommunityMembers implements parley.CommunityStore.
func (db *DB) CommunityMembers(ctx context.Context, communityID, status string) ([]*parley.CommunityMember, error) {
	rows, err := db.query(ctx, `SELECT `+communityMemberColumns+` FROM community_members WHERE community_id = ? AND status = ?
		ORDER BY joined_at, user_id`, communityID, status)
	return collect(rows, err, scanCommunityMember)
}

// ChannelReaders implements parley.CommunityStore: a range of the
// conversation_members primary key.
func (db *DB) ChannelReaders(ctx context.Context, channelID, after string, limit int) ([]string, error) {
	return db.ids(ctx, `SELECT user_id FROM conversation_members WHERE conversation_id = ? AND user_id > ?
		ORDER BY user_id LIMIT ?`, channelID, after, limit)
}

// CommunityMembersPage implements parley.CommunityStore; the page is a
// range of the community_members_active index.
func (db *DB) CommunityMembersPage(ctx context.Context, communityID, after string, limit int) ([]*parley.CommunityMember, error) {
	if after == "" {
		rows, err := db.query(ctx, `SELECT `+communityMemberColumns+` FROM community_members
			WHERE community_id = ? AND status = 'member' ORDER BY joined_at, user_id LIMIT ?`, communityID, limit)
		return collect(rows, err, scanCommunityMember)
	}
	rows, err := db.query(ctx, `SELECT m.community_id, m.user_id, m.role, m.status, m.encrypted_key, m.joined_at FROM community_members m
		JOIN community_members a ON a.community_id = m.community_id AND a.user_id = ? AND a.status = 'member'
		WHERE m.community_id = ? AND m.status = 'member'
			AND (m.joined_at > a.joined_at OR (m.joined_at = a.joined_at AND m.user_id > a.user_id))
		ORDER BY m.joined_at, m.user_id LIMIT ?`, after, communityID, limit)
	return collect(rows, err, scanCommunityMember)
}

// CommunityAdmins implements parley.CommunityStore.
func (db *DB) CommunityAdmins(ctx context.Context, communityID string) ([]string, error) {
	return db.ids(ctx, `SELECT user_id FROM community_members WHERE community_id = ? AND status = 'member' AND role <> 'member'
		ORDER BY joined_at, user_id`, communityID)
}

// UserCommunities implements parley.CommunityStore.
func (db *DB) UserCommunities(ctx context.Context, userID string) ([]*parley.Community, error) {
	rows, err := db.query(ctx, `SELECT `+communityColumns+` FROM communities c
		JOIN community_members m ON m.community_id = c.id AND m.user_id = ? AND m.status = 'member'
		ORDER BY c.created_at DESC, c.id`, userID)
	return collect(rows, err, scanCommunity)
}

// SearchCommunities implements parley.CommunityStore.
func (db *DB) SearchCommunities(ctx context.Context, query string, limit int) ([]*parley.Community, error) {
	pattern := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(strings.ToLower(query)) + "%"
	rows, err := db.query(ctx, `SELECT `+communityColumns+` FROM communities c WHERE c.is_private = ? AND c.name_lower LIKE ? ESCAPE '\'
		ORDER BY c.name_lower, c.id LIMIT ?`, false, pattern, limit)
	return collect(rows, err, scanCommunity)
}

// lockCommunity takes the community's row lock for the rest of the
// transaction and returns whether it is private and its member count.
func (tx *Tx) lockCommunity(ctx context.Context, id string) (private bool, members int, err error) {
	err = tx.queryRow(ctx, `UPDATE communities SET updated_at = updated_at WHERE id = ? RETURNING is_private, members_count`, id).
		Scan(&private, &members)
	return private, members, notFound(err, "community")
}

// bumpChannels takes the locks of a community's channels (in id order)
// and bumps their members_version: who reads them, or a role, changes.
func (tx *Tx) bumpChannels(ctx context.Context, communityID string) error {
	ids, err := tx.ids(ctx, `SELECT conversation_id FROM channels WHERE community_id = ? ORDER BY conversation_id`, communityID)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := tx.lockConversation(ctx, id, parley.KindChannel); err != nil {
			return err
		}
	}
	return nil
}

// addToChannels makes an approved member a reader of every public
// channel of the community.
func (tx *Tx) addToChannels(ctx context.Context, communityID, userID, role string, now time.Time) error {
	if err := tx.bumpChannels(ctx, communityID); err != nil {
		return err
	}
	head, err := tx.headChange(ctx)
	if err != nil {
		return err
	}
	// Cursors start at the channel's last message: its history is there
	// to read, but not counted as unread.
	_, err = tx.exec(ctx, `INSERT INTO conversation_members (conversation_id, user_id, role, joined_at, joined_change, delivered_seq,
		read_seq, shown_read_seq) SELECT ch.conversation_id, ?, ?, ?, ?, c.last_seq, c.last_seq, c.last_seq
		FROM channels ch JOIN conversations c ON c.id = ch.conversation_id
		WHERE ch.community_id = ? AND ch.is_private = ?`, userID, channelRole(role), parley.Millis(now), head, communityID, false)
	return err
}

// JoinCommunity implements parley.CommunityStore.
func (db *DB) JoinCommunity(ctx context.Context, communityID, userID, status string, now time.Time, changes ...*parley.Change) error {
	return db.inTx(ctx, func(tx *Tx) error {
		_, count, err := tx.lockCommunity(ctx, communityID)
		if err != nil {
			return err
		}
		var existing string
		err = tx.queryRow(ctx, `SELECT status FROM community_members WHERE community_id = ? AND user_id = ?`, communityID, userID).Scan(&existing)
		if err == nil {
			if existing == parley.MemberPending {
				return parley.Errorf(parley.ECONFLICT, "your request to join is waiting for an admin")
			}
			return parley.Errorf(parley.ECONFLICT, "you are already a member of this community")
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if status == parley.MemberActive && count >= parley.MaxCommunityMembers {
			return parley.Errorf(parley.ECONFLICT, "a community has at most %d members", parley.MaxCommunityMembers)
		}
		if _, err := tx.exec(ctx, `INSERT INTO community_members (community_id, user_id, role, status, joined_at) VALUES (?, ?, ?, ?, ?)`,
			communityID, userID, parley.RoleMember, status, parley.Millis(now)); err != nil {
			return err
		}
		if status == parley.MemberActive {
			if err := tx.activate(ctx, communityID, userID, now); err != nil {
				return err
			}
		}
		return tx.addChanges(ctx, changes...)
	})
}

// activate counts a new approved member and adds them to the public channels.
func (tx *Tx) activate(ctx context.Context, communityID, userID string, now time.Time) error {
	if _, err := tx.exec(ctx, `UPDATE communities SET members_count = members_count + 1 WHERE id = ?`, communityID); err != nil {
		return err
	}
	return tx.addToChannels(ctx, communityID, userID, parley.RoleMember, now)
}

// ApproveMember implements parley.CommunityStore.
func (db *DB) ApproveMember(ctx context.Context, communityID, userID string, now time.Time, changes ...*parley.Change) error {
	return db.inTx(ctx, func(tx *Tx) error {
		_, count, err := tx.lockCommunity(ctx, communityID)
		if err != nil {
			return err
		}
		if count >= parley.MaxCommunityMembers {
			return parley.Errorf(parley.ECONFLICT, "a community has at most %d members", parley.MaxCommunityMembers)
		}
		res, err := tx.exec(ctx, `UPDATE community_members SET status = 'member', joined_at = ? WHERE community_id = ? AND user_id = ?
			AND status = 'pending'`, parley.Millis(now), communityID, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return parley.Errorf(parley.ENOTFOUND, "join request not found")
		}
		if err := tx.activate(ctx, communityID, userID, now); err != nil {
			return err
		}
		return tx.addChanges(ctx, changes...)
	})
}

// RejectMember implements parley.CommunityStore.
func (db *DB) RejectMember(ctx context.Context, communityID, userID string, changes ...*parley.Change) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if _, _, err := tx.lockCommunity(ctx, communityID); err != nil {
			return err
		}
		res, err := tx.exec(ctx, `DELETE FROM community_members WHERE community_id = ? AND user_id = ? AND status = 'pending'`,
			communityID, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return parley.Errorf(parley.ENOTFOUND, "join request not found")
		}
		return tx.addChanges(ctx, changes...)
	})
}

// RemoveCommunityMember implements parley.CommunityStore.
func (db *DB) RemoveCommunityMember(ctx context.Context, communityID, userID string, changes ...*parley.Change) (parley.CommunityRemoval, error) {
	var r parley.CommunityRemoval
	err := db.inTx(ctx, func(tx *Tx) error {
		r = parley.CommunityRemoval{}
		if _, _, err := tx.lockCommunity(ctx, communityID); err != nil {
			return err
		}
		var role string
		err := tx.queryRow(ctx, `SELECT role FROM community_members WHERE community_id = ? AND user_id = ? AND status = 'member'`,
			communityID, userID).Scan(&role)
		if err != nil {
			return notFound(err, "member")
		}
		if err := tx.bumpChannels(ctx, communityID); err != nil {
			return err
		}
		if r.PrivateChannels, err = tx.ids(ctx, `SELECT ch.conversation_id FROM channels ch
			JOIN conversation_members mm ON mm.conversation_id = ch.conversation_id AND mm.user_id = ?
			WHERE ch.community_id = ? AND ch.is_private = ? ORDER BY ch.conversation_id`, userID, communityID, true); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM channel_keys WHERE user_id = ? AND channel_id IN (SELECT conversation_id FROM channels WHERE community_id = ?)`,
			`DELETE FROM conversation_members WHERE user_id = ? AND conversation_id IN (SELECT conversation_id FROM channels WHERE community_id = ?)`,
			`DELETE FROM community_members WHERE user_id = ? AND community_id = ?`,
		} {
			if _, err := tx.exec(ctx, q, userID, communityID); err != nil {
				return err
			}
		}
		if _, err := tx.exec(ctx, `UPDATE communities SET members_count = members_count - 1 WHERE id = ?`, communityID); err != nil {
			return err
		}
		if err := tx.queryRow(ctx, `SELECT owner_id FROM communities WHERE id = ?`, communityID).Scan(&r.OwnerID); err != nil {
			return err
		}
		if parley.IsAdminRole(role) {
			if err := tx.succeed(ctx, communityID, role == parley.RoleOwner, &r); err != nil {
				return err
			}
		}
		return tx.addChanges(ctx, changes...)
	})
	return r, err
}

// succeed fills the places an admin leaving empties: with no admin left
// the longest-standing member becomes one, and when the owner left the
// longest-standing admin becomes owner.
func (tx *Tx) succeed(ctx context.Context, communityID string, ownerLeft bool, r *parley.CommunityRemoval) error {
	next := func(roleCond string) (string, error) {
		var id string
		err := tx.queryRow(ctx, `SELECT user_id FROM community_members WHERE community_id = ? AND status = 'member' AND `+roleCond+`
			ORDER BY joined_at, user_id LIMIT 1`, communityID).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil
		}
		return id, err
	}
	admin, err := next(`role <> 'member'`)
	if err != nil {
		return err
	}
	if admin == "" {
		if admin, err = next(`role = 'member'`); err != nil || admin == "" {
			return err // nobody is left
		}
		r.Promoted = admin
	}
	newRole := parley.RoleAdmin
	if ownerLeft {
		newRole, r.OwnerID = parley.RoleOwner, admin
		if _, err := tx.exec(ctx, `UPDATE communities SET owner_id = ? WHERE id = ?`, admin, communityID); err != nil {
			return err
		}
	} else if r.Promoted == "" {
		return nil
	}
	return tx.setRole(ctx, communityID, admin, newRole)
}

// setRole sets a member's role in the community and in its channels.
func (tx *Tx) setRole(ctx context.Context, communityID, userID, role string) error {
	if _, err := tx.exec(ctx, `UPDATE community_members SET role = ? WHERE community_id = ? AND user_id = ?`, role, communityID, userID); err != nil {
		return err
	}
	_, err := tx.exec(ctx, `UPDATE conversation_members SET role = ? WHERE user_id = ?
		AND conversation_id IN (SELECT conversation_id FROM channels WHERE community_id = ?)`, channelRole(role), userID, communityID)
	return err
}

// SetCommunityRole implements parley.CommunityStore.
func (db *DB) SetCommunityRole(ctx context.Context, communityID, userID, role string, changes ...*parley.Change) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if _, _, err := tx.lockCommunity(ctx, communityID); err != nil {
			return err
		}
		var current string
		if err := tx.queryRow(ctx, `SELECT role FROM community_members WHERE community_id = ? AND user_id = ? AND status = 'member'`,
			communityID, userID).Scan(&current); err != nil {
			return notFound(err, "member")
		}
		if current == parley.RoleOwner {
			return parley.Errorf(parley.EFORBIDDEN, "the owner's role cannot change")
		}
		if err := tx.bumpChannels(ctx, communityID); err != nil {
			return err
		}
		if err := tx.setRole(ctx, communityID, userID, role); err != nil {
			return err
		}
		return tx.addChanges(ctx, changes...)
	})
}

// UpdateCommunity implements parley.CommunityStore.
func (db *DB) UpdateCommunity(ctx context.Context, c *parley.Community, changes ...*parley.Change) error {
	return db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE communities SET name = ?, name_lower = ?, description = ?, avatar = ?, cover_image = ?, updated_at = ?
			WHERE id = ?`, c.Name, strings.ToLower(c.Name), c.Description, c.Avatar, c.CoverImage, parley.Millis(c.UpdatedAt), c.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return parley.Errorf(parley.ENOTFOUND, "community not found")
		}
		return tx.addChanges(ctx, changes...)
	})
}

// DeleteCommunity implements parley.CommunityStore.
func (db *DB) DeleteCommunity(ctx context.Context, communityID string, changes ...*parley.Change) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if _, _, err := tx.lockCommunity(ctx, communityID); err != nil {
			return err
		}
		channels, err := tx.ids(ctx, `SELECT conversation_id FROM channels WHERE community_id = ? ORDER BY conversation_id`, communityID)
		if err != nil {
			return err
		}
		for _, id := range channels {
			if err := tx.deleteChannel(ctx, id); err != nil {
				return err
			}
		}
		if _, err := tx.exec(ctx, `DELETE FROM communities WHERE id = ?`, communityID); err != nil {
			return err
		}
		return tx.addChanges(ctx, changes...)
	})
}

// deleteChannel deletes a locked or unlocked channel with its messages,
// log, pins and keys; its files are looked at by the next collection.
func (tx *Tx) deleteChannel(ctx context.Context, id string) error {
	if _, err := tx.lockConversation(ctx, id, parley.KindChannel); err != nil {
		return err
	}
	if err := tx.releaseMedia(ctx, `SELECT id FROM messages WHERE conversation_id = ?`, id); err != nil {
		return err
	}
	for _, q := range []string{
		`DELETE FROM changes WHERE conversation_id = ? AND to_user = ''`,
		`DELETE FROM receipt_marks WHERE conversation_id = ?`,
		`DELETE FROM conversations WHERE id = ?`, // cascades to the channel, readers, messages, keys and pins
	} {
		if _, err := tx.exec(ctx, q, id); err != nil {
			return err
		}
	}
	return nil
}

// CreateChannel implements parley.CommunityStore.
func (db *DB) CreateChannel(ctx context.Context, ch *parley.Channel, allowed []string, keys map[string]string, now time.Time,
	changes ...*parley.Change) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if _, _, err := tx.lockCommunity(ctx, ch.CommunityID); err != nil {
			return err
		}
		var n int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM channels WHERE community_id = ?`, ch.CommunityID).Scan(&n); err != nil {
			return err
		}
		if n >= parley.MaxCommunityChannels {
			return parley.Errorf(parley.ECONFLICT, "a community has at most %d channels", parley.MaxCommunityChannels)
		}
		ch.CreatedAt, ch.UpdatedAt = now, now
		if err := tx.insertChannel(ctx, ch, allowed, keys); err != nil {
			return err
		}
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM conversation_members WHERE conversation_id = ?`, ch.ID).Scan(&ch.MembersCount); err != nil {
			return err
		}
		return tx.addChanges(ctx, changes...)
	})
}

// Channel implements parley.CommunityStore.
func (db *DB) Channel(ctx context.Context, id string) (*parley.Channel, error) {
	ch, err := scanChannel(db.queryRow(ctx, `SELECT `+channelColumns+` FROM channels ch WHERE ch.conversation_id = ?`, id))
	return ch, notFound(err, "channel")
}

// ChannelsByIDs implements parley.CommunityStore.
func (db *DB) ChannelsByIDs(ctx context.Context, ids []string) ([]*parley.Channel, error) {
	return collectIn(ctx, db, `SELECT `+channelColumns+` FROM channels ch WHERE ch.conversation_id IN (%s)`, ids, scanChannel)
}

// CommunityChannels implements parley.CommunityStore.
func (db *DB) CommunityChannels(ctx context.Context, communityID string) ([]*parley.Channel, error) {
	rows, err := db.query(ctx, `SELECT `+channelColumns+` FROM channels ch WHERE ch.community_id = ? ORDER BY ch.created_at, ch.conversation_id`,
		communityID)
	return collect(rows, err, scanChannel)
}

// UserChannels implements parley.CommunityStore.
func (db *DB) UserChannels(ctx context.Context, communityID, userID string) ([]string, error) {
	return db.ids(ctx, `SELECT ch.conversation_id FROM channels ch
		JOIN conversation_members mm ON mm.conversation_id = ch.conversation_id AND mm.user_id = ?
		WHERE ch.community_id = ? ORDER BY ch.created_at, ch.conversation_id`, userID, communityID)
}

// UpdateChannel implements parley.CommunityStore.
func (db *DB) UpdateChannel(ctx context.Context, ch *parley.Channel, changes ...*parley.Change) error {
	return db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE channels SET name = ?, description = ?, updated_at = ? WHERE conversation_id = ?`,
			ch.Name, ch.Description, parley.Millis(ch.UpdatedAt), ch.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return parley.Errorf(parley.ENOTFOUND, "channel not found")
		}
		return tx.addChanges(ctx, changes...)
	})
}

// DeleteChannel implements parley.CommunityStore.
func (db *DB) DeleteChannel(ctx context.Context, channelID string, changes ...*parley.Change) error {
	return db.inTx(ctx, func(tx *Tx) error {
		var communityID string
		if err := tx.queryRow(ctx, `SELECT community_id FROM channels WHERE conversation_id = ?`, channelID).Scan(&communityID); err != nil {
			return notFound(err, "channel")
		}
		if _, _, err := tx.lockCommunity(ctx, communityID); err != nil {
			return err
		}
		if err := tx.deleteChannel(ctx, channelID); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `UPDATE communities SET default_channel = '' WHERE id = ? AND default_channel = ?`, communityID, channelID)
		if err != nil {
			return err
		}
		return tx.addChanges(ctx, changes...)
	})
}

// AddChannelReaders implements parley.CommunityStore.
func (db *DB) AddChannelReaders(ctx context.Context, channelID string, users []string, now time.Time, changes ...*parley.Change) ([]string, error) {
	var added []string
	err := db.inTx(ctx, func(tx *Tx) error {
		added = nil
		last, err := tx.lockConversation(ctx, channelID, parley.KindChannel)
		if err != nil {
			return err
		}
		var communityID string
		if err := tx.queryRow(ctx, `SELECT community_id FROM channels WHERE conversation_id = ?`, channelID).Scan(&communityID); err != nil {
			return notFound(err, "channel")
		}
		_, roles, err := tx.memberRoles(ctx, channelID)
		if err != nil {
			return err
		}
		head, err := tx.headChange(ctx)
		if err != nil {
			return err
		}
		for _, u := range users {
			if _, ok := roles[u]; ok {
				continue
			}
			var role string
			err := tx.queryRow(ctx, `SELECT role FROM community_members WHERE community_id = ? AND user_id = ? AND status = 'member'`,
				communityID, u).Scan(&role)
			if errors.Is(err, sql.ErrNoRows) {
				return parley.Errorf(parley.EINVALID, "user %s is not a member of the community", u)
			} else if err != nil {
				return err
			}
			if _, err := tx.exec(ctx, `INSERT INTO conversation_members (conversation_id, user_id, role, joined_at, joined_change,
				delivered_seq, read_seq, shown_read_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				channelID, u, channelRole(role), parley.Millis(now), head, last, last, last); err != nil {
				return err
			}
			roles[u] = role
			added = append(added, u)
		}
		if len(added) == 0 {
			return nil
		}
		return tx.addChanges(ctx, changes...)
	})
	return added, err
}

// RemoveChannelReader implements parley.CommunityStore.
func (db *DB) RemoveChannelReader(ctx context.Context, channelID, userID string, changes ...*parley.Change) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.lockConversation(ctx, channelID, parley.KindChannel); err != nil {
			return err
		}
		res, err := tx.exec(ctx, `DELETE FROM conversation_members WHERE conversation_id = ? AND user_id = ?`, channelID, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return parley.Errorf(parley.ENOTFOUND, "member not found")
		}
		if _, err := tx.exec(ctx, `DELETE FROM channel_keys WHERE channel_id = ? AND user_id = ?`, channelID, userID); err != nil {
			return err
		}
		return tx.addChanges(ctx, changes...)
	})
}

// ChannelKey implements parley.CommunityStore.
func (db *DB) ChannelKey(ctx context.Context, channelID, userID string) (string, error) {
	var key string
	err := db.queryRow(ctx, `SELECT wrapped_key FROM channel_keys WHERE channel_id = ? AND user_id = ?`, channelID, userID).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return key, err
}

// SetChannelKeys implements parley.CommunityStore.
func (db *DB) SetChannelKeys(ctx context.Context, channelID string, keys map[string]string, now time.Time) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.lockConversation(ctx, channelID, parley.KindChannel); err != nil {
			return err
		}
		return tx.setChannelKeys(ctx, channelID, keys, now)
	})
}

// setChannelKeys stores the keys of readers of a channel, refusing anyone else.
func (tx *Tx) setChannelKeys(ctx context.Context, channelID string, keys map[string]string, now time.Time) error {
	if len(keys) == 0 {
		return nil
	}
	users := make([]string, 0, len(keys))
	for u := range keys {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		var one int
		err := tx.queryRow(ctx, `SELECT 1 FROM conversation_members WHERE conversation_id = ? AND user_id = ?`, channelID, u).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return parley.Errorf(parley.EINVALID, "keys: user %s cannot read this channel", u)
		} else if err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO channel_keys (channel_id, user_id, wrapped_key, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (channel_id, user_id) DO UPDATE SET wrapped_key = excluded.wrapped_key, updated_at = excluded.updated_at`,
			channelID, u, keys[u], parley.Millis(now)); err != nil {
			return err
		}
	}
	return nil
}

// WithoutChannelKey implements parley.CommunityStore.
func (db *DB) WithoutChannelKey(ctx context.Context, userID string, channelIDs []string) ([]string, error) {
	held := map[string]bool{}
	err := db.inList(channelIDs, func(list string, args []any) error {
		got, err := db.ids(ctx, `SELECT channel_id FROM channel_keys WHERE user_id = ? AND channel_id IN (`+list+`)`,
			append([]any{userID}, args...)...)
		for _, id := range got {
			held[id] = true
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range channelIDs {
		if !held[id] {
			out = append(out, id)
		}
	}
	return out, nil
}

// Pin implements parley.CommunityStore.
func (db *DB) Pin(ctx context.Context, p *parley.Pin, changes ...*parley.Change) (bool, error) {
	var added bool
	err := db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `INSERT INTO channel_pins (channel_id, message_id, pinned_by, pinned_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (channel_id, message_id) DO NOTHING`, p.ChannelID, p.MessageID, p.PinnedBy, parley.Millis(p.PinnedAt))
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		if added = n > 0; !added {
			return nil
		}
		return tx.addChanges(ctx, changes...)
	})
	return added, err
}

// Unpin implements parley.CommunityStore.
func (db *DB) Unpin(ctx context.Context, channelID, messageID string, changes ...*parley.Change) (bool, error) {
	var removed bool
	err := db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `DELETE FROM channel_pins WHERE channel_id = ? AND message_id = ?`, channelID, messageID)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		if removed = n > 0; !removed {
			return nil
		}
		return tx.addChanges(ctx, changes...)
	})
	return removed, err
}

// Pins implements parley.CommunityStore.
func (db *DB) Pins(ctx context.Context, channelID string) ([]*parley.Pin, error) {
	rows, err := db.query(ctx, `SELECT channel_id, message_id, pinned_by, pinned_at FROM channel_pins WHERE channel_id = ?
		ORDER BY pinned_at DESC, message_id`, channelID)
	return collect(rows, err, func(s scanner) (*parley.Pin, error) {
		var p parley.Pin
		var at int64
		err := s.Scan(&p.ChannelID, &p.MessageID, &p.PinnedBy, &at)
		p.PinnedAt = parley.FromMillis(at)
		return &p, err
	})
}

// RecordChanges implements parley.CommunityStore.
func (db *DB) RecordChanges(ctx context.Context, changes ...*parley.Change) error {
	return db.inTx(ctx, func(tx *Tx) error { return tx.addChanges(ctx, changes...) })
}
