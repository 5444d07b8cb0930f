package parley

import (
	"context"
	"time"
)

// Group limits and roles (API.md §1 and §5).
const (
	MaxGroupMembers   = 1024
	MaxGroupNameLen   = 100
	MaxGroupDescLen   = 512
	MaxGroupAvatarLen = 2048
	RoleAdmin         = "admin"
	RoleMember        = "member"
)

// GroupSettings are the switches admins control.
type GroupSettings struct {
	OnlyAdminsCanSend       bool `json:"onlyAdminsCanSend"`
	OnlyAdminsCanAddMembers bool `json:"onlyAdminsCanAddMembers"`
}

// Group is a group chat. Its id is also the id of its conversation.
type Group struct {
	ID           string
	Name         string
	Description  string
	Avatar       string
	CreatedBy    string
	OwnerID      string
	Settings     GroupSettings
	MembersCount int
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// GroupRemoval is the outcome of removing a member: who was promoted to
// admin (the last admin left) and who owns the group now.
type GroupRemoval struct {
	Promoted string // "" when nobody was promoted
	OwnerID  string
}

// ReceiptTime is when one member's cursor reached a message.
type ReceiptTime struct {
	UserID string
	Kind   string // delivered | seen
	At     time.Time
}

// GroupStore persists groups and their membership. Membership changes take
// the conversation's lock, so a message commits either before a change (and
// goes to the members before it) or after it (and goes to the members after).
type GroupStore interface {
	// CreateGroup stores g with its conversation, the creator as admin and
	// the other members, and records changes (with MembersCount filled).
	CreateGroup(ctx context.Context, g *Group, members []string, now time.Time, changes ...*Change) error
	// Group returns a group with its member count, or ENOTFOUND.
	Group(ctx context.Context, id string) (*Group, error)
	// GroupsByIDs returns the groups that exist among ids, in any order.
	GroupsByIDs(ctx context.Context, ids []string) ([]*Group, error)
	// UserGroups lists the groups userID is a member of, newest first.
	UserGroups(ctx context.Context, userID string) ([]*Group, error)
	// AddGroupMembers adds the users that are not members yet (seeing
	// messages from now on) and returns them; ECONFLICT when the group
	// would exceed max members. build makes the changes to record, given
	// the users actually added and the members before; it is not called
	// when nobody is new.
	AddGroupMembers(ctx context.Context, groupID string, users []string, max int, now time.Time,
		build func(added, before []string) ([]*Change, error)) ([]string, error)
	// RemoveGroupMember removes userID. When no admin remains, the
	// longest-standing member becomes admin; when the owner leaves, the
	// longest-standing admin becomes owner. build makes the changes to
	// record given that outcome and the members that remain. ENOTFOUND
	// when userID is not a member.
	RemoveGroupMember(ctx context.Context, groupID, userID string, now time.Time,
		build func(r GroupRemoval, remaining []string) ([]*Change, error)) (GroupRemoval, error)
	// SetGroupRole sets a member's role and records ch; ENOTFOUND when not a member.
	SetGroupRole(ctx context.Context, groupID, userID, role string, ch *Change) error
	// UpdateGroup stores name, description, avatar and settings of g and records ch.
	UpdateGroup(ctx context.Context, g *Group, ch *Change) error
	// DeleteGroup deletes the group, its messages and memberships, and
	// records the changes build returns (addressed to the former members
	// with Change.ToUser). build gets the members read under the group's
	// lock, so a member added concurrently is either refused or told; it
	// returns the members it was given, for publishing.
	DeleteGroup(ctx context.Context, groupID string, build func(members []string) ([]*Change, error)) ([]string, error)
}
