package service

import (
	"context"
	"slices"
	"strings"

	"github.com/parley-chat/parley"
)

// GroupView is a group as its members see it (API.md §5).
type GroupView struct {
	GroupID      string               `json:"groupId"`
	Name         string               `json:"name"`
	Description  string               `json:"description"`
	Avatar       string               `json:"avatar"`
	CreatedBy    string               `json:"createdBy"`
	OwnerID      string               `json:"ownerId"`
	MembersCount int                  `json:"membersCount"`
	CreatedAt    parley.Time          `json:"createdAt"`
	UpdatedAt    parley.Time          `json:"updatedAt"`
	Settings     parley.GroupSettings `json:"settings"`
	Role         string               `json:"role,omitempty"`    // the caller's role, in lists
	Members      []GroupMemberView    `json:"members,omitempty"` // in GET /api/groups/{groupId}
}

// GroupMemberView is one member of a group.
type GroupMemberView struct {
	UserID   string      `json:"userId"`
	Role     string      `json:"role"`
	JoinedAt parley.Time `json:"joinedAt"`
	IsOwner  bool        `json:"isOwner"`
}

func groupView(g *parley.Group) *GroupView {
	return &GroupView{GroupID: g.ID, Name: g.Name, Description: g.Description, Avatar: g.Avatar, CreatedBy: g.CreatedBy,
		OwnerID: g.OwnerID, MembersCount: g.MembersCount, CreatedAt: parley.Time{Time: g.CreatedAt},
		UpdatedAt: parley.Time{Time: g.UpdatedAt}, Settings: g.Settings}
}

func memberView(m *parley.Member, ownerID string) GroupMemberView {
	return GroupMemberView{UserID: m.UserID, Role: m.Role, JoinedAt: parley.Time{Time: m.JoinedAt}, IsOwner: m.UserID == ownerID}
}

// groupMember returns the group and the caller's membership. A group the
// caller is not a member of does not exist for them (ENOTFOUND).
func (s *Service) groupMember(ctx context.Context, caller *parley.Identity, groupID string) (*parley.Group, *parley.Member, error) {
	if strings.TrimSpace(groupID) == "" {
		return nil, nil, parley.Errorf(parley.EINVALID, "groupId is required")
	}
	if len(groupID) > 64 {
		return nil, nil, parley.Errorf(parley.ENOTFOUND, "group not found")
	}
	mem, err := s.store.Conversations.Member(ctx, groupID, caller.UserID)
	if parley.ErrorCode(err) == parley.ENOTFOUND {
		return nil, nil, parley.Errorf(parley.ENOTFOUND, "group not found")
	} else if err != nil {
		return nil, nil, err
	}
	g, err := s.store.Groups.Group(ctx, groupID)
	if err != nil {
		return nil, nil, err
	}
	return g, mem, nil
}

// groupAdmin is groupMember for actions only admins may take.
func (s *Service) groupAdmin(ctx context.Context, caller *parley.Identity, groupID, what string) (*parley.Group, *parley.Member, error) {
	g, mem, err := s.groupMember(ctx, caller, groupID)
	if err != nil {
		return nil, nil, err
	}
	if mem.Role != parley.RoleAdmin {
		return nil, nil, parley.Errorf(parley.EFORBIDDEN, "only group admins can %s", what)
	}
	return g, mem, nil
}

// memberIDs validates a list of user ids to add to a group: it drops the
// caller and repeats, allows at most max of them, and checks that every
// user exists and that none is in a block with the caller.
// Errors: EINVALID, EBLOCKED.
func (s *Service) memberIDs(ctx context.Context, caller *parley.Identity, ids []string, max int) ([]string, error) {
	if len(ids) > parley.MaxGroupMembers {
		return nil, parley.Errorf(parley.EINVALID, "members: a group has at most %d members", parley.MaxGroupMembers)
	}
	out := make([]string, 0, len(ids))
	seen := map[string]bool{caller.UserID: true}
	for _, id := range ids {
		if strings.TrimSpace(id) == "" || len(id) > 64 {
			return nil, parley.Errorf(parley.EINVALID, "members must be user ids")
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	if len(out) > max {
		return nil, parley.Errorf(parley.EINVALID, "members: a group has at most %d members", parley.MaxGroupMembers)
	}
	if len(out) == 0 {
		return out, nil
	}
	users, err := s.store.Users.UsersByIDs(ctx, out)
	if err != nil {
		return nil, err
	}
	if len(users) != len(out) {
		found := map[string]bool{}
		for _, u := range users {
			found[u.ID] = true
		}
		for _, id := range out {
			if !found[id] {
				return nil, parley.Errorf(parley.EINVALID, "members: no user %q", id)
			}
		}
	}
	blocked, err := s.store.Social.BlockedEitherWay(ctx, caller.UserID)
	if err != nil {
		return nil, err
	}
	for _, id := range blocked {
		if seen[id] && id != caller.UserID {
			return nil, parley.Errorf(parley.EBLOCKED, "you cannot add %s to a group", id)
		}
	}
	return out, nil
}

func validateGroupText(name, description, avatar string) error {
	if err := maxLen("name", name, parley.MaxGroupNameLen); err != nil {
		return err
	}
	if err := maxLen("description", description, parley.MaxGroupDescLen); err != nil {
		return err
	}
	return maxLen("avatar", avatar, parley.MaxGroupAvatarLen)
}

// CreateGroupInput is the body of POST /api/groups/create.
type CreateGroupInput struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Avatar      string   `json:"avatar"`
	Members     []string `json:"members"`
	CreatedBy   string   `json:"createdBy"` // optional; must be the caller
	UserID      string   `json:"userId"`    // optional; must be the caller
}

// memberAddedEvent is group_member_added.
type memberAddedEvent struct {
	GroupID string            `json:"groupId"`
	Group   *GroupView        `json:"group"`
	Members []GroupMemberView `json:"members"`
	AddedBy string            `json:"addedBy"`
	At      parley.Time       `json:"at"`
}

// CreateGroup creates a group with the caller as owner and admin and the
// given members, and sends group_member_added to everyone in it.
// Errors: EINVALID, EBLOCKED, EFORBIDDEN.
func (s *Service) CreateGroup(ctx context.Context, caller *parley.Identity, in CreateGroupInput) (*GroupView, error) {
	if err := checkSelf(caller, in.CreatedBy, "createdBy"); err != nil {
		return nil, err
	}
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	in.Name = strings.TrimSpace(in.Name)
	if err := required("name", in.Name); err != nil {
		return nil, err
	}
	if err := validateGroupText(in.Name, in.Description, in.Avatar); err != nil {
		return nil, err
	}
	members, err := s.memberIDs(ctx, caller, in.Members, parley.MaxGroupMembers-1) // the creator is the other one
	if err != nil {
		return nil, err
	}
	now := s.now()
	g := &parley.Group{ID: parley.NewConversationID(parley.KindGroup), Name: in.Name, Description: in.Description, Avatar: in.Avatar,
		CreatedBy: caller.UserID, OwnerID: caller.UserID, MembersCount: len(members) + 1, CreatedAt: now, UpdatedAt: now}
	view := groupView(g)
	ev := memberAddedEvent{GroupID: g.ID, Group: view, AddedBy: caller.UserID, At: parley.Time{Time: now},
		Members: []GroupMemberView{{UserID: caller.UserID, Role: parley.RoleAdmin, JoinedAt: parley.Time{Time: now}, IsOwner: true}}}
	for _, id := range members {
		ev.Members = append(ev.Members, GroupMemberView{UserID: id, Role: parley.RoleMember, JoinedAt: parley.Time{Time: now}})
	}
	ch, err := s.encodeChange(g.ID, 0, parley.EventGroupMemberAdded, "", ev, now)
	if err != nil {
		return nil, err
	}
	if err := s.store.Groups.CreateGroup(ctx, g, members, now, ch); err != nil {
		return nil, err
	}
	s.publishChange(ctx, ch, append([]string{caller.UserID}, members...))
	return view, nil
}

// Group returns a group with its members and settings. Errors: ENOTFOUND.
func (s *Service) Group(ctx context.Context, caller *parley.Identity, groupID string) (*GroupView, error) {
	g, mem, err := s.groupMember(ctx, caller, groupID)
	if err != nil {
		return nil, err
	}
	members, err := s.store.Conversations.Members(ctx, g.ID)
	if err != nil {
		return nil, err
	}
	v := groupView(g)
	v.Role = mem.Role
	v.Members = make([]GroupMemberView, 0, len(members))
	for _, m := range members {
		v.Members = append(v.Members, memberView(m, g.OwnerID))
	}
	v.MembersCount = len(members)
	return v, nil
}

// UserGroups lists the caller's groups, newest first; userID (the route's
// id) must be the caller. Errors: EFORBIDDEN.
func (s *Service) UserGroups(ctx context.Context, caller *parley.Identity, userID string) ([]*GroupView, error) {
	if userID != caller.UserID {
		return nil, parley.Errorf(parley.EFORBIDDEN, "you can only list your own groups")
	}
	groups, err := s.store.Groups.UserGroups(ctx, caller.UserID)
	if err != nil {
		return nil, err
	}
	out := make([]*GroupView, 0, len(groups))
	for _, g := range groups {
		out = append(out, groupView(g))
	}
	return out, nil
}

// AddMembersInput is the body of POST /api/groups/members/add.
type AddMembersInput struct {
	GroupID string   `json:"groupId"`
	Members []string `json:"members"`
	UserID  string   `json:"userId"` // optional; must be the caller
}

// AddMembersResult is the answer to an add: the users that were not members yet.
type AddMembersResult struct {
	GroupID      string   `json:"groupId"`
	NewMembers   []string `json:"newMembers"`
	MembersCount int      `json:"membersCount"`
}

// AddMembers adds users to a group (admins only when the group's
// onlyAdminsCanAddMembers is on). New members see messages from now on.
// group_member_added goes to every member, new ones included.
// Errors: ENOTFOUND, EFORBIDDEN, EINVALID, EBLOCKED, ECONFLICT (group full).
func (s *Service) AddMembers(ctx context.Context, caller *parley.Identity, in AddMembersInput) (*AddMembersResult, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	g, mem, err := s.groupMember(ctx, caller, in.GroupID)
	if err != nil {
		return nil, err
	}
	if g.Settings.OnlyAdminsCanAddMembers && mem.Role != parley.RoleAdmin {
		return nil, parley.Errorf(parley.EFORBIDDEN, "only group admins can add members to this group")
	}
	if len(in.Members) == 0 {
		return nil, parley.Errorf(parley.EINVALID, "members is required")
	}
	users, err := s.memberIDs(ctx, caller, in.Members, parley.MaxGroupMembers)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var recipients []string
	var ch *parley.Change
	added, err := s.store.Groups.AddGroupMembers(ctx, g.ID, users, parley.MaxGroupMembers, now, func(added, before []string) ([]*parley.Change, error) {
		v := groupView(g)
		v.MembersCount = len(before) + len(added)
		ev := memberAddedEvent{GroupID: g.ID, Group: v, AddedBy: caller.UserID, At: parley.Time{Time: now}}
		for _, id := range added {
			ev.Members = append(ev.Members, GroupMemberView{UserID: id, Role: parley.RoleMember, JoinedAt: parley.Time{Time: now}})
		}
		recipients = append(slices.Clone(before), added...)
		var err error
		ch, err = s.encodeChange(g.ID, 0, parley.EventGroupMemberAdded, "", ev, now)
		return []*parley.Change{ch}, err
	})
	if err != nil {
		return nil, err
	}
	if len(added) == 0 {
		return &AddMembersResult{GroupID: g.ID, NewMembers: []string{}, MembersCount: g.MembersCount}, nil
	}
	s.publishChange(ctx, ch, recipients)
	return &AddMembersResult{GroupID: g.ID, NewMembers: added, MembersCount: len(recipients)}, nil
}

// RemoveMemberInput is the body of POST /api/groups/members/remove.
type RemoveMemberInput struct {
	GroupID  string `json:"groupId"`
	MemberID string `json:"memberId"`
	UserID   string `json:"userId"` // optional; must be the caller
}

// RemoveMemberResult is the answer to a removal.
type RemoveMemberResult struct {
	GroupID  string `json:"groupId"`
	MemberID string `json:"memberId"`
	Left     bool   `json:"left"`               // the member removed themselves
	Promoted string `json:"promoted,omitempty"` // made admin because the last admin left
	OwnerID  string `json:"ownerId"`
}

// memberRemovedEvent is group_member_removed.
type memberRemovedEvent struct {
	GroupID   string      `json:"groupId"`
	MemberID  string      `json:"memberId"`
	RemovedBy string      `json:"removedBy"`
	Left      bool        `json:"left"`
	Promoted  string      `json:"promoted,omitempty"`
	OwnerID   string      `json:"ownerId"`
	At        parley.Time `json:"at"`
}

// RemoveMember removes a member: an admin removes others (never the
// owner), anyone may leave. From the commit on, the removed user gets no
// more messages or events of the group. When the last admin leaves, the
// longest-standing member becomes admin; when the owner leaves, the
// longest-standing admin becomes owner. group_member_removed goes to the
// remaining members and the removed user.
// Errors: ENOTFOUND, EFORBIDDEN, EINVALID.
func (s *Service) RemoveMember(ctx context.Context, caller *parley.Identity, in RemoveMemberInput) (*RemoveMemberResult, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	if err := required("memberId", in.MemberID); err != nil {
		return nil, err
	}
	g, mem, err := s.groupMember(ctx, caller, in.GroupID)
	if err != nil {
		return nil, err
	}
	left := in.MemberID == caller.UserID
	if !left {
		if mem.Role != parley.RoleAdmin {
			return nil, parley.Errorf(parley.EFORBIDDEN, "only group admins can remove other members")
		}
		if in.MemberID == g.OwnerID {
			return nil, parley.Errorf(parley.EFORBIDDEN, "the group's owner cannot be removed")
		}
	}
	now := s.now()
	var recipients []string
	var payload []byte
	r, err := s.store.Groups.RemoveGroupMember(ctx, g.ID, in.MemberID, now, func(r parley.GroupRemoval, remaining []string) ([]*parley.Change, error) {
		ev := memberRemovedEvent{GroupID: g.ID, MemberID: in.MemberID, RemovedBy: caller.UserID, Left: left, Promoted: r.Promoted,
			OwnerID: r.OwnerID, At: parley.Time{Time: now}}
		ch, err := s.encodeChange(g.ID, 0, parley.EventGroupMemberRemoved, "", ev, now)
		if err != nil {
			return nil, err
		}
		// The removed user is no longer a member: their copy is addressed to them.
		own := *ch
		own.ToUser = in.MemberID
		payload, recipients = ch.Payload, append(slices.Clone(remaining), in.MemberID)
		return []*parley.Change{ch, &own}, nil
	})
	if err != nil {
		return nil, err
	}
	s.publishRaw(ctx, parley.EventGroupMemberRemoved, payload, recipients)
	return &RemoveMemberResult{GroupID: g.ID, MemberID: in.MemberID, Left: left, Promoted: r.Promoted, OwnerID: r.OwnerID}, nil
}

// groupUpdatedEvent is group_updated: the group's details and settings
// after a change, and what changed.
type groupUpdatedEvent struct {
	*GroupView
	Change    string      `json:"change"` // details | settings | role
	MemberID  string      `json:"memberId,omitempty"`
	NewRole   string      `json:"role,omitempty"`
	UpdatedBy string      `json:"updatedBy"`
	At        parley.Time `json:"at"`
}

// GroupSettingsInput is the body of POST /api/groups/settings; absent
// switches keep their value.
type GroupSettingsInput struct {
	GroupID  string `json:"groupId"`
	UserID   string `json:"userId"` // optional; must be the caller
	Settings *struct {
		OnlyAdminsCanSend       *bool `json:"onlyAdminsCanSend"`
		OnlyAdminsCanAddMembers *bool `json:"onlyAdminsCanAddMembers"`
	} `json:"settings"`
}

// UpdateGroupSettings changes a group's settings (admins only) and sends
// group_updated to the members. Errors: ENOTFOUND, EFORBIDDEN, EINVALID.
func (s *Service) UpdateGroupSettings(ctx context.Context, caller *parley.Identity, in GroupSettingsInput) (*GroupView, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	g, _, err := s.groupAdmin(ctx, caller, in.GroupID, "change settings")
	if err != nil {
		return nil, err
	}
	if in.Settings == nil {
		return nil, parley.Errorf(parley.EINVALID, "settings is required")
	}
	if v := in.Settings.OnlyAdminsCanSend; v != nil {
		g.Settings.OnlyAdminsCanSend = *v
	}
	if v := in.Settings.OnlyAdminsCanAddMembers; v != nil {
		g.Settings.OnlyAdminsCanAddMembers = *v
	}
	return s.updateGroup(ctx, caller, g, "settings")
}

// UpdateGroupInput is the body of POST /api/groups/update; absent fields
// keep their value.
type UpdateGroupInput struct {
	GroupID     string  `json:"groupId"`
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Avatar      *string `json:"avatar"`
}

// UpdateGroup changes a group's name, description or avatar (admins only)
// and sends group_updated to the members. Errors: ENOTFOUND, EFORBIDDEN, EINVALID.
func (s *Service) UpdateGroup(ctx context.Context, caller *parley.Identity, in UpdateGroupInput) (*GroupView, error) {
	g, _, err := s.groupAdmin(ctx, caller, in.GroupID, "change the group's details")
	if err != nil {
		return nil, err
	}
	if in.Name != nil {
		g.Name = strings.TrimSpace(*in.Name)
		if err := required("name", g.Name); err != nil {
			return nil, err
		}
	}
	if in.Description != nil {
		g.Description = *in.Description
	}
	if in.Avatar != nil {
		g.Avatar = *in.Avatar
	}
	if err := validateGroupText(g.Name, g.Description, g.Avatar); err != nil {
		return nil, err
	}
	return s.updateGroup(ctx, caller, g, "details")
}

func (s *Service) updateGroup(ctx context.Context, caller *parley.Identity, g *parley.Group, change string) (*GroupView, error) {
	now := s.now()
	g.UpdatedAt = now
	v := groupView(g)
	ch, err := s.encodeChange(g.ID, 0, parley.EventGroupUpdated, "", groupUpdatedEvent{GroupView: v, Change: change, UpdatedBy: caller.UserID,
		At: parley.Time{Time: now}}, now)
	if err != nil {
		return nil, err
	}
	if err := s.store.Groups.UpdateGroup(ctx, g, ch); err != nil {
		return nil, err
	}
	return v, s.publishToMembers(ctx, g.ID, parley.EventGroupUpdated, ch.Payload)
}

// publishToMembers sends an already-encoded event to a conversation's members.
func (s *Service) publishToMembers(ctx context.Context, convID, name string, payload []byte) error {
	to, err := s.conversationUsers(ctx, convID)
	if err != nil {
		return err
	}
	s.publishRaw(ctx, name, payload, to)
	return nil
}

// RoleInput is the body of POST /api/groups/members/role.
type RoleInput struct {
	GroupID  string `json:"groupId"`
	MemberID string `json:"memberId"`
	NewRole  string `json:"newRole"`
	UserID   string `json:"userId"` // optional; must be the caller
}

// RoleResult is the answer to a role change.
type RoleResult struct {
	GroupID  string `json:"groupId"`
	MemberID string `json:"memberId"`
	NewRole  string `json:"newRole"` // the seed's name
	Role     string `json:"role"`    // the same, kept for existing clients
}

// SetRole makes a member admin or member (admins only; the owner stays
// admin). group_updated goes to the members. Errors: ENOTFOUND,
// EFORBIDDEN, EINVALID.
func (s *Service) SetRole(ctx context.Context, caller *parley.Identity, in RoleInput) (*RoleResult, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	if in.NewRole != parley.RoleAdmin && in.NewRole != parley.RoleMember {
		return nil, parley.Errorf(parley.EINVALID, "newRole must be admin or member")
	}
	if err := required("memberId", in.MemberID); err != nil {
		return nil, err
	}
	g, _, err := s.groupAdmin(ctx, caller, in.GroupID, "change roles")
	if err != nil {
		return nil, err
	}
	if in.MemberID == g.OwnerID && in.NewRole != parley.RoleAdmin {
		return nil, parley.Errorf(parley.EFORBIDDEN, "the group's owner stays an admin")
	}
	now := s.now()
	ev := groupUpdatedEvent{GroupView: groupView(g), Change: "role", MemberID: in.MemberID, NewRole: in.NewRole, UpdatedBy: caller.UserID,
		At: parley.Time{Time: now}}
	ch, err := s.encodeChange(g.ID, 0, parley.EventGroupUpdated, "", ev, now)
	if err != nil {
		return nil, err
	}
	if err := s.store.Groups.SetGroupRole(ctx, g.ID, in.MemberID, in.NewRole, ch); err != nil {
		if parley.ErrorCode(err) == parley.ENOTFOUND {
			return nil, parley.Errorf(parley.ENOTFOUND, "memberId is not a member of this group")
		}
		return nil, err
	}
	return &RoleResult{GroupID: g.ID, MemberID: in.MemberID, NewRole: in.NewRole, Role: in.NewRole}, s.publishToMembers(ctx, g.ID, parley.EventGroupUpdated, ch.Payload)
}

// DeleteGroupInput is the body of POST /api/groups/delete.
type DeleteGroupInput struct {
	GroupID string `json:"groupId"`
	UserID  string `json:"userId"` // optional; must be the caller
}

// DeleteGroupResult is the answer to a delete.
type DeleteGroupResult struct {
	GroupID string `json:"groupId"`
	Deleted bool   `json:"deleted"`
}

type groupDeletedEvent struct {
	GroupID   string      `json:"groupId"`
	DeletedBy string      `json:"deletedBy"`
	At        parley.Time `json:"at"`
}

// DeleteGroup deletes a group with its messages (admins only) and sends
// group_deleted to everyone who was a member. Errors: ENOTFOUND, EFORBIDDEN.
func (s *Service) DeleteGroup(ctx context.Context, caller *parley.Identity, in DeleteGroupInput) (*DeleteGroupResult, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	g, _, err := s.groupAdmin(ctx, caller, in.GroupID, "delete the group")
	if err != nil {
		return nil, err
	}
	now := s.now()
	ch, err := s.encodeChange(g.ID, 0, parley.EventGroupDeleted, "", groupDeletedEvent{GroupID: g.ID, DeletedBy: caller.UserID, At: parley.Time{Time: now}}, now)
	if err != nil {
		return nil, err
	}
	// The members are read under the group's lock, like additions and
	// removals build their changes, so nobody added meanwhile is missed.
	members, err := s.store.Groups.DeleteGroup(ctx, g.ID, func(members []string) ([]*parley.Change, error) {
		changes := make([]*parley.Change, 0, len(members))
		for _, id := range members {
			c := *ch
			c.ToUser = id
			changes = append(changes, &c)
		}
		return changes, nil
	})
	if err != nil {
		return nil, err
	}
	s.publishChange(ctx, ch, members)
	return &DeleteGroupResult{GroupID: g.ID, Deleted: true}, nil
}
