package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/parley-chat/parley"
)

const groupColumns = `g.conversation_id, g.name, g.description, g.avatar, g.created_by, g.owner_id, g.only_admins_send,
	g.only_admins_add, g.created_at, g.updated_at,
	(SELECT COUNT(*) FROM conversation_members n WHERE n.conversation_id = g.conversation_id)`

func scanGroup(s scanner) (*parley.Group, error) {
	var g parley.Group
	var created, updated int64
	if err := s.Scan(&g.ID, &g.Name, &g.Description, &g.Avatar, &g.CreatedBy, &g.OwnerID, &g.Settings.OnlyAdminsCanSend,
		&g.Settings.OnlyAdminsCanAddMembers, &created, &updated, &g.MembersCount); err != nil {
		return nil, err
	}
	g.CreatedAt, g.UpdatedAt = parley.FromMillis(created), parley.FromMillis(updated)
	return &g, nil
}

// lockConversation takes the conversation's row lock for the rest of the
// transaction, bumping its members_version (a change of membership, roles
// or settings follows), and returns its last seq. Sends take the same
// lock, so membership changes and sends are ordered.
func (tx *Tx) lockConversation(ctx context.Context, id, kind string) (int64, error) {
	var last int64
	err := tx.queryRow(ctx, `UPDATE conversations SET members_version = members_version + 1 WHERE id = ? AND kind = ? RETURNING last_seq`,
		id, kind).Scan(&last)
	return last, notFound(err, kind)
}

// memberRoles returns the members of a locked conversation with their
// roles, oldest first: in the order their joining committed (the change
// that added them; 0 for the group's first members), then by time.
func (tx *Tx) memberRoles(ctx context.Context, convID string) ([]string, map[string]string, error) {
	rows, err := tx.query(ctx, `SELECT user_id, role FROM conversation_members WHERE conversation_id = ? ORDER BY joined_change, joined_at, user_id`, convID)
	var ids []string
	roles := map[string]string{}
	err = each(rows, err, func(s scanner) error {
		var id, role string
		err := s.Scan(&id, &role)
		ids = append(ids, id)
		roles[id] = role
		return err
	})
	return ids, roles, err
}

// CreateGroup implements parley.GroupStore.
func (db *DB) CreateGroup(ctx context.Context, g *parley.Group, members []string, now time.Time, changes ...*parley.Change) error {
	at := parley.Millis(now)
	return db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `INSERT INTO conversations (id, kind, created_at) VALUES (?, ?, ?)`, g.ID, parley.KindGroup, at); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO group_chats (conversation_id, name, description, avatar, created_by, owner_id,
			only_admins_send, only_admins_add, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			g.ID, g.Name, g.Description, g.Avatar, g.CreatedBy, g.OwnerID, g.Settings.OnlyAdminsCanSend,
			g.Settings.OnlyAdminsCanAddMembers, at, at); err != nil {
			return err
		}
		add := func(user, role string) error {
			_, err := tx.exec(ctx, `INSERT INTO conversation_members (conversation_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)`,
				g.ID, user, role, at)
			return err
		}
		if err := add(g.OwnerID, parley.RoleAdmin); err != nil {
			return err
		}
		for _, u := range members {
			if err := add(u, parley.RoleMember); err != nil {
				return err
			}
		}
		g.MembersCount = 1 + len(members)
		g.CreatedAt, g.UpdatedAt = parley.FromMillis(at), parley.FromMillis(at)
		return tx.addChanges(ctx, changes...)
	})
}

// Group implements parley.GroupStore.
func (db *DB) Group(ctx context.Context, id string) (*parley.Group, error) {
	g, err := scanGroup(db.queryRow(ctx, `SELECT `+groupColumns+` FROM group_chats g WHERE g.conversation_id = ?`, id))
	return g, notFound(err, "group")
}

// UserGroups implements parley.GroupStore.
func (db *DB) UserGroups(ctx context.Context, userID string) ([]*parley.Group, error) {
	rows, err := db.query(ctx, `SELECT `+groupColumns+` FROM group_chats g
		JOIN conversation_members mm ON mm.conversation_id = g.conversation_id AND mm.user_id = ?
		ORDER BY g.created_at DESC, g.conversation_id`, userID)
	return collect(rows, err, scanGroup)
}

// AddGroupMembers implements parley.GroupStore.
func (db *DB) AddGroupMembers(ctx context.Context, groupID string, users []string, max int, now time.Time,
	build func(added, before []string) ([]*parley.Change, error)) ([]string, error) {
	var added []string
	err := db.inTx(ctx, func(tx *Tx) error {
		added = nil
		last, err := tx.lockConversation(ctx, groupID, parley.KindGroup)
		if err != nil {
			return err
		}
		current, roles, err := tx.memberRoles(ctx, groupID)
		if err != nil {
			return err
		}
		for _, u := range users {
			if _, ok := roles[u]; !ok {
				roles[u] = parley.RoleMember
				added = append(added, u)
			}
		}
		if len(added) == 0 {
			return nil
		}
		if len(current)+len(added) > max {
			return parley.Errorf(parley.ECONFLICT, "a group has at most %d members; it has %d", max, len(current))
		}
		// A new member sees messages after last and changes recorded from
		// here on; their cursors start at last (nothing before is theirs).
		for _, u := range added {
			if _, err := tx.exec(ctx, `INSERT INTO conversation_members (conversation_id, user_id, role, joined_at, joined_seq,
				joined_change, delivered_seq, read_seq, shown_read_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				groupID, u, parley.RoleMember, parley.Millis(now), last, 1<<62, last, last, last); err != nil {
				return err
			}
		}
		changes, err := build(added, current)
		if err != nil {
			return err
		}
		first, err := tx.nextChangeID(ctx, changes)
		if err != nil {
			return err
		}
		args := []any{first - 1, groupID}
		for _, u := range added {
			args = append(args, u)
		}
		if _, err := tx.exec(ctx, `UPDATE conversation_members SET joined_change = ? WHERE conversation_id = ? AND user_id IN (`+
			placeholders(len(added))+`)`, args...); err != nil {
			return err
		}
		return nil
	})
	return added, err
}

// nextChangeID records changes and returns the id of the first one; with no
// changes, the id the next change will get.
func (tx *Tx) nextChangeID(ctx context.Context, changes []*parley.Change) (int64, error) {
	if err := tx.addChanges(ctx, changes...); err != nil {
		return 0, err
	}
	for _, c := range changes {
		if c != nil {
			return c.ID, nil
		}
	}
	var last int64
	err := tx.queryRow(ctx, `UPDATE change_counter SET last = last WHERE id = 1 RETURNING last`).Scan(&last)
	return last + 1, err
}

// RemoveGroupMember implements parley.GroupStore.
func (db *DB) RemoveGroupMember(ctx context.Context, groupID, userID string, now time.Time,
	build func(r parley.GroupRemoval, remaining []string) ([]*parley.Change, error)) (parley.GroupRemoval, error) {
	var r parley.GroupRemoval
	err := db.inTx(ctx, func(tx *Tx) error {
		r = parley.GroupRemoval{}
		last, err := tx.lockConversation(ctx, groupID, parley.KindGroup)
		if err != nil {
			return err
		}
		if err := tx.queryRow(ctx, `SELECT owner_id FROM group_chats WHERE conversation_id = ?`, groupID).Scan(&r.OwnerID); err != nil {
			return notFound(err, "group")
		}
		var joinedSeq, joinedChange int64
		if err := tx.queryRow(ctx, `SELECT joined_seq, joined_change FROM conversation_members WHERE conversation_id = ? AND user_id = ?`,
			groupID, userID).Scan(&joinedSeq, &joinedChange); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return parley.Errorf(parley.ENOTFOUND, "not a member of this group")
			}
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM conversation_members WHERE conversation_id = ? AND user_id = ?`, groupID, userID); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM receipt_marks WHERE conversation_id = ? AND user_id = ?`, groupID, userID); err != nil {
			return err
		}
		ids, roles, err := tx.memberRoles(ctx, groupID)
		if err != nil {
			return err
		}
		var admins []string
		for _, id := range ids {
			if roles[id] == parley.RoleAdmin {
				admins = append(admins, id)
			}
		}
		if len(admins) == 0 && len(ids) > 0 {
			r.Promoted = ids[0] // the longest-standing member
			admins = append(admins, r.Promoted)
			if _, err := tx.exec(ctx, `UPDATE conversation_members SET role = ? WHERE conversation_id = ? AND user_id = ?`,
				parley.RoleAdmin, groupID, r.Promoted); err != nil {
				return err
			}
		}
		if r.OwnerID == userID {
			r.OwnerID = ""
			if len(admins) > 0 {
				r.OwnerID = admins[0] // the longest-standing admin
			}
			if _, err := tx.exec(ctx, `UPDATE group_chats SET owner_id = ?, updated_at = ? WHERE conversation_id = ?`,
				r.OwnerID, parley.Millis(now), groupID); err != nil {
				return err
			}
		}
		changes, err := build(r, ids)
		if err != nil {
			return err
		}
		// The removed member keeps what they saw as a member (see
		// former_members); the window ends before the removal's changes.
		leftChange, err := tx.nextChangeID(ctx, changes)
		if err != nil {
			return err
		}
		_, err = tx.exec(ctx, `INSERT INTO former_members (conversation_id, user_id, joined_seq, left_seq, joined_change, left_change)
			VALUES (?, ?, ?, ?, ?, ?)`, groupID, userID, joinedSeq, last, joinedChange, leftChange)
		return err
	})
	return r, err
}

// SetGroupRole implements parley.GroupStore.
func (db *DB) SetGroupRole(ctx context.Context, groupID, userID, role string, ch *parley.Change) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.lockConversation(ctx, groupID, parley.KindGroup); err != nil {
			return err
		}
		res, err := tx.exec(ctx, `UPDATE conversation_members SET role = ? WHERE conversation_id = ? AND user_id = ?`, role, groupID, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return parley.Errorf(parley.ENOTFOUND, "not a member of this group")
		}
		return tx.addChanges(ctx, ch)
	})
}

// UpdateGroup implements parley.GroupStore.
func (db *DB) UpdateGroup(ctx context.Context, g *parley.Group, ch *parley.Change) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.lockConversation(ctx, g.ID, parley.KindGroup); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `UPDATE group_chats SET name = ?, description = ?, avatar = ?, only_admins_send = ?,
			only_admins_add = ?, updated_at = ? WHERE conversation_id = ?`, g.Name, g.Description, g.Avatar, g.Settings.OnlyAdminsCanSend,
			g.Settings.OnlyAdminsCanAddMembers, parley.Millis(g.UpdatedAt), g.ID); err != nil {
			return err
		}
		return tx.addChanges(ctx, ch)
	})
}

// DeleteGroup implements parley.GroupStore.
func (db *DB) DeleteGroup(ctx context.Context, groupID string, build func(members []string) ([]*parley.Change, error)) ([]string, error) {
	var members []string
	err := db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.lockConversation(ctx, groupID, parley.KindGroup); err != nil {
			return err
		}
		var err error
		if members, _, err = tx.memberRoles(ctx, groupID); err != nil {
			return err
		}
		changes, err := build(members)
		if err != nil {
			return err
		}
		// The group's own log goes with it; only the changes addressed to
		// the former members (written below) stay. Its files are looked
		// at by the next collection.
		if err := tx.releaseMedia(ctx, `SELECT id FROM messages WHERE conversation_id = ?`, groupID); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM changes WHERE conversation_id = ? AND to_user = ''`,
			`DELETE FROM receipt_marks WHERE conversation_id = ?`,
			`DELETE FROM conversations WHERE id = ?`, // cascades to members, messages, reactions and the group
		} {
			if _, err := tx.exec(ctx, q, groupID); err != nil {
				return err
			}
		}
		return tx.addChanges(ctx, changes...)
	})
	if err != nil {
		return nil, err
	}
	return members, nil
}
