package parley

import (
	"context"
	"time"
)

// Community limits, roles and modes (API.md §6).
const (
	MaxCommunityMembers   = 100_000
	MaxCommunityChannels  = 500
	MaxCommunityNameLen   = 100
	MaxCommunityDescLen   = 1024
	MaxChannelNameLen     = 100
	MaxChannelDescLen     = 512
	MaxImageRefLen        = 2048
	MaxWrappedKeyLen      = 8 << 10 // one wrapped key, as the client produced it
	MaxKeysPerRequest     = 1024
	MaxPrivateChannelSize = 1024 // allowedMembers of one request

	RoleOwner = "owner" // a community's owner; also an admin

	MemberActive  = "member"  // community_members.status
	MemberPending = "pending" // asked to join a private community

	ChannelText         = "text"
	ChannelVoice        = "voice"
	ChannelAnnouncement = "announcement"

	// E2EEOn: a private community; the server keeps only each member's
	// wrapped keys. E2EETrusted: a public one; the server keeps the
	// creator's community key and gives it to every member.
	E2EEOn      = "true"
	E2EETrusted = "trusted"
)

// ChannelTypes are the accepted values of a channel's type.
var ChannelTypes = []string{ChannelText, ChannelVoice, ChannelAnnouncement}

// Community is a set of members with channels.
type Community struct {
	ID             string
	Name           string
	Description    string
	Avatar         string
	CoverImage     string
	CreatedBy      string
	OwnerID        string
	IsPrivate      bool
	CommunityKey   string // trusted communities only; never read by the server
	DefaultChannel string
	MembersCount   int // approved members
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// E2EEMode is "true" for a private community and "trusted" for a public one.
func (c *Community) E2EEMode() string {
	if c.IsPrivate {
		return E2EEOn
	}
	return E2EETrusted
}

// IsAdminRole reports whether a community role may administer it.
func IsAdminRole(role string) bool { return role == RoleOwner || role == RoleAdmin }

// CommunityMember is a user's place in a community: approved (MemberActive)
// or waiting for an admin (MemberPending).
type CommunityMember struct {
	CommunityID  string
	UserID       string
	Role         string // owner | admin | member
	Status       string
	EncryptedKey string
	JoinedAt     time.Time
}

// Channel is a conversation of a community. Its id is its conversation's.
// Who may read it are that conversation's members: every approved member
// of the community for a public channel, the allowed members for a private
// one.
type Channel struct {
	ID           string
	CommunityID  string
	Name         string
	Description  string
	Type         string
	IsPrivate    bool
	CreatedBy    string
	MembersCount int
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Pin is a pinned channel message.
type Pin struct {
	ChannelID string
	MessageID string
	PinnedBy  string
	PinnedAt  time.Time
}

// CommunityRemoval is the outcome of a member leaving or being removed.
type CommunityRemoval struct {
	Promoted        string   // the member made admin because no admin was left, or ""
	OwnerID         string   // the owner after the removal
	PrivateChannels []string // the private channels the user could read
}

// CommunityStore persists communities, their members and channels, channel
// keys and pins. A change of a community's membership or roles takes the
// locks of its channels' conversations, so a channel message commits
// either before it (and reaches the members before) or after it.
type CommunityStore interface {
	// CreateCommunity stores c with its owner (holding creatorKey) and its
	// default channel general.
	CreateCommunity(ctx context.Context, c *Community, creatorKey string, general *Channel) error
	// Community returns a community with its member count, or ENOTFOUND.
	Community(ctx context.Context, id string) (*Community, error)
	// CommunitiesByIDs returns the communities that exist among ids.
	CommunitiesByIDs(ctx context.Context, ids []string) ([]*Community, error)
	// CommunityMember returns a user's membership (approved or pending), or ENOTFOUND.
	CommunityMember(ctx context.Context, communityID, userID string) (*CommunityMember, error)
	// CommunityMembers lists the members with status, oldest first.
	CommunityMembers(ctx context.Context, communityID, status string) ([]*CommunityMember, error)
	// ChannelReaders lists at most limit ids of a channel's readers, in
	// id order, after the id after (empty: from the first).
	ChannelReaders(ctx context.Context, channelID, after string, limit int) ([]string, error)
	// CommunityMembersPage lists at most limit approved members, oldest
	// first, starting after the approved member after (empty: from the
	// first; a user who is not one: an empty page).
	CommunityMembersPage(ctx context.Context, communityID, after string, limit int) ([]*CommunityMember, error)
	// CommunityAdmins lists the ids of the owner and admins.
	CommunityAdmins(ctx context.Context, communityID string) ([]string, error)
	// UserCommunities lists the communities userID is an approved member of, newest first.
	UserCommunities(ctx context.Context, userID string) ([]*Community, error)
	// SearchCommunities lists public communities whose name contains query
	// (case-insensitively), by name.
	SearchCommunities(ctx context.Context, query string, limit int) ([]*Community, error)
	// JoinCommunity adds userID with status (MemberActive: a member of
	// every public channel at once, seeing their whole history) and
	// records changes. ECONFLICT when they are already in it (pending or
	// not) or it is full.
	JoinCommunity(ctx context.Context, communityID, userID, status string, now time.Time, changes ...*Change) error
	// ApproveMember turns a pending request into a membership as
	// JoinCommunity does; ENOTFOUND when there is no pending request.
	ApproveMember(ctx context.Context, communityID, userID string, now time.Time, changes ...*Change) error
	// RejectMember deletes a pending request; ENOTFOUND when there is none.
	RejectMember(ctx context.Context, communityID, userID string, changes ...*Change) error
	// RemoveCommunityMember removes an approved member from the community
	// and all its channels, with their channel keys. When no admin is
	// left the longest-standing member becomes admin; when the owner
	// leaves, the longest-standing admin becomes owner. ENOTFOUND when
	// userID is not an approved member.
	RemoveCommunityMember(ctx context.Context, communityID, userID string, changes ...*Change) (CommunityRemoval, error)
	// SetCommunityRole sets an approved member's role (admin or member).
	SetCommunityRole(ctx context.Context, communityID, userID, role string, changes ...*Change) error
	// UpdateCommunity stores name, description, avatar and cover image.
	UpdateCommunity(ctx context.Context, c *Community, changes ...*Change) error
	// DeleteCommunity deletes the community with its channels and their messages.
	DeleteCommunity(ctx context.Context, communityID string, changes ...*Change) error

	// CreateChannel stores ch; its readers are the community's approved
	// members (public) or allowed (private; each must be an approved
	// member, else EINVALID). keys are stored for readers only (EINVALID
	// for anyone else). ECONFLICT past MaxCommunityChannels.
	CreateChannel(ctx context.Context, ch *Channel, allowed []string, keys map[string]string, now time.Time, changes ...*Change) error
	// Channel returns a channel with its reader count, or ENOTFOUND.
	Channel(ctx context.Context, id string) (*Channel, error)
	// ChannelsByIDs returns the channels that exist among ids.
	ChannelsByIDs(ctx context.Context, ids []string) ([]*Channel, error)
	// CommunityChannels lists a community's channels, oldest first.
	CommunityChannels(ctx context.Context, communityID string) ([]*Channel, error)
	// UpdateChannel stores a channel's name and description.
	UpdateChannel(ctx context.Context, ch *Channel, changes ...*Change) error
	// DeleteChannel deletes a channel with its messages.
	DeleteChannel(ctx context.Context, channelID string, changes ...*Change) error
	// AddChannelReaders makes approved community members readers of a
	// private channel and returns those who were not yet; EINVALID for a
	// user who is not an approved member.
	AddChannelReaders(ctx context.Context, channelID string, users []string, now time.Time, changes ...*Change) ([]string, error)
	// RemoveChannelReader removes a reader of a private channel and their
	// key; ENOTFOUND when they are not one.
	RemoveChannelReader(ctx context.Context, channelID, userID string, changes ...*Change) error
	// ChannelKey returns userID's wrapped key of a channel, or "".
	ChannelKey(ctx context.Context, channelID, userID string) (string, error)
	// SetChannelKeys stores wrapped keys of readers of a channel; EINVALID
	// names a user who is not a reader.
	SetChannelKeys(ctx context.Context, channelID string, keys map[string]string, now time.Time) error
	// WithoutChannelKey returns which of channelIDs userID holds no key of.
	WithoutChannelKey(ctx context.Context, userID string, channelIDs []string) ([]string, error)
	// UserChannels lists the channels of a community userID reads.
	UserChannels(ctx context.Context, communityID, userID string) ([]string, error)

	// Pin pins a channel message and records changes; false when it already was.
	Pin(ctx context.Context, p *Pin, changes ...*Change) (bool, error)
	// Unpin unpins a channel message and records changes; false when it was not pinned.
	Unpin(ctx context.Context, channelID, messageID string, changes ...*Change) (bool, error)
	// Pins lists a channel's pins, newest first.
	Pins(ctx context.Context, channelID string) ([]*Pin, error)
	// RecordChanges appends changes that no other write carries (key
	// requests addressed to admins) to the sync log.
	RecordChanges(ctx context.Context, changes ...*Change) error
}
