package service

import (
	"context"
	"slices"
	"strings"

	"github.com/parley-chat/parley"
)

// CommunityView is a community as API.md §6 describes it. CommunityKey
// (trusted communities) and EncryptedKey (the caller's wrapped key) are
// given to approved members only; ChannelIDs are the channels the caller
// reads (in GET /api/communities/{communityId}).
type CommunityView struct {
	CommunityID    string      `json:"communityId"`
	Name           string      `json:"name"`
	Description    string      `json:"description"`
	Avatar         string      `json:"avatar"`
	CoverImage     string      `json:"coverImage"`
	CreatedBy      string      `json:"createdBy"`
	OwnerID        string      `json:"ownerId"`
	DefaultChannel string      `json:"defaultChannel"`
	IsPrivate      bool        `json:"isPrivate"`
	E2EEMode       string      `json:"e2eeMode"`
	MembersCount   int         `json:"membersCount"`
	CreatedAt      parley.Time `json:"createdAt"`
	UpdatedAt      parley.Time `json:"updatedAt"`
	Role           string      `json:"role,omitempty"`   // the caller's role
	Status         string      `json:"status,omitempty"` // the caller's membership: member | pending
	CommunityKey   string      `json:"communityKey,omitempty"`
	EncryptedKey   string      `json:"encryptedKey,omitempty"`
	ChannelIDs     []string    `json:"channelIds,omitempty"`
}

func communityView(c *parley.Community, m *parley.CommunityMember) *CommunityView {
	v := &CommunityView{CommunityID: c.ID, Name: c.Name, Description: c.Description, Avatar: c.Avatar, CoverImage: c.CoverImage,
		CreatedBy: c.CreatedBy, OwnerID: c.OwnerID, DefaultChannel: c.DefaultChannel, IsPrivate: c.IsPrivate, E2EEMode: c.E2EEMode(),
		MembersCount: c.MembersCount, CreatedAt: parley.Time{Time: c.CreatedAt}, UpdatedAt: parley.Time{Time: c.UpdatedAt}}
	if m != nil {
		v.Role, v.Status = m.Role, m.Status
		if m.Status == parley.MemberActive {
			v.CommunityKey, v.EncryptedKey = c.CommunityKey, m.EncryptedKey
		}
	}
	return v
}

// ChannelView is a channel of a community.
type ChannelView struct {
	ChannelID    string      `json:"channelId"`
	CommunityID  string      `json:"communityId"`
	Name         string      `json:"name"`
	Description  string      `json:"description"`
	Type         string      `json:"type"`
	IsPrivate    bool        `json:"isPrivate"`
	E2EEMode     string      `json:"e2eeMode"`
	CreatedBy    string      `json:"createdBy"`
	MembersCount int         `json:"membersCount"`
	CreatedAt    parley.Time `json:"createdAt"`
	UpdatedAt    parley.Time `json:"updatedAt"`
}

func channelView(ch *parley.Channel, c *parley.Community) *ChannelView {
	mode := c.E2EEMode()
	if ch.IsPrivate {
		mode = parley.E2EEOn
	}
	return &ChannelView{ChannelID: ch.ID, CommunityID: ch.CommunityID, Name: ch.Name, Description: ch.Description, Type: ch.Type,
		IsPrivate: ch.IsPrivate, E2EEMode: mode, CreatedBy: ch.CreatedBy, MembersCount: ch.MembersCount,
		CreatedAt: parley.Time{Time: ch.CreatedAt}, UpdatedAt: parley.Time{Time: ch.UpdatedAt}}
}

func isCommunity(id string) bool { return strings.HasPrefix(id, "comm_") && len(id) <= 64 }
func isChannel(id string) bool   { return parley.KindOf(id) == parley.KindChannel && len(id) <= 64 }

// community returns a community and the caller's membership (nil for
// none). A private community exists only for its members, pending ones
// included; a public one for everyone. Errors: EINVALID, ENOTFOUND.
func (s *Service) community(ctx context.Context, caller *parley.Identity, id string) (*parley.Community, *parley.CommunityMember, error) {
	if err := required("communityId", id); err != nil {
		return nil, nil, err
	}
	notFound := parley.Errorf(parley.ENOTFOUND, "community not found")
	if !isCommunity(id) {
		return nil, nil, notFound
	}
	c, err := s.store.Communities.Community(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	m, err := s.store.Communities.CommunityMember(ctx, id, caller.UserID)
	if parley.ErrorCode(err) == parley.ENOTFOUND {
		m, err = nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if c.IsPrivate && m == nil {
		return nil, nil, notFound
	}
	return c, m, nil
}

// communityMember is community for approved members only.
func (s *Service) communityMember(ctx context.Context, caller *parley.Identity, id string) (*parley.Community, *parley.CommunityMember, error) {
	c, m, err := s.community(ctx, caller, id)
	if err != nil {
		return nil, nil, err
	}
	if m == nil || m.Status != parley.MemberActive {
		return nil, nil, parley.Errorf(parley.ENOTFOUND, "community not found")
	}
	return c, m, nil
}

// communityAdmin is communityMember for actions only admins may take.
func (s *Service) communityAdmin(ctx context.Context, caller *parley.Identity, id, what string) (*parley.Community, *parley.CommunityMember, error) {
	c, m, err := s.communityMember(ctx, caller, id)
	if err != nil {
		return nil, nil, err
	}
	if !parley.IsAdminRole(m.Role) {
		return nil, nil, parley.Errorf(parley.EFORBIDDEN, "only community admins can %s", what)
	}
	return c, m, nil
}

func validateCommunityText(name, description, avatar, cover string) error {
	if err := maxLen("name", name, parley.MaxCommunityNameLen); err != nil {
		return err
	}
	if err := maxLen("description", description, parley.MaxCommunityDescLen); err != nil {
		return err
	}
	if err := maxLen("avatar", avatar, parley.MaxImageRefLen); err != nil {
		return err
	}
	return maxLen("coverImage", cover, parley.MaxImageRefLen)
}

// CreateCommunityInput is the body of POST /api/communities/create.
type CreateCommunityInput struct {
	Name            string `json:"name"`
	Description     string `json:"description"`
	IsPrivate       bool   `json:"isPrivate"`
	EncryptedAESKey string `json:"encryptedAESKey"`
	PlaintextAESKey string `json:"plaintextAESKey"`
	Avatar          string `json:"avatar"`
	CoverImage      string `json:"coverImage"`
	CreatedBy       string `json:"createdBy"` // optional; must be the caller
}

// CreateCommunity creates a community with the caller as owner and a
// default text channel "general". A private community (e2eeMode "true")
// keeps only the creator's wrapped key (encryptedAESKey); a public one
// ("trusted") keeps the key the creator gives (plaintextAESKey, or
// encryptedAESKey) and hands it to every member. Errors: EINVALID.
func (s *Service) CreateCommunity(ctx context.Context, caller *parley.Identity, in CreateCommunityInput) (*CommunityView, error) {
	if err := checkSelf(caller, in.CreatedBy, "createdBy"); err != nil {
		return nil, err
	}
	in.Name = strings.TrimSpace(in.Name)
	if err := required("name", in.Name); err != nil {
		return nil, err
	}
	if err := validateCommunityText(in.Name, in.Description, in.Avatar, in.CoverImage); err != nil {
		return nil, err
	}
	if err := maxLen("encryptedAESKey", in.EncryptedAESKey, parley.MaxWrappedKeyLen); err != nil {
		return nil, err
	}
	if err := maxLen("plaintextAESKey", in.PlaintextAESKey, parley.MaxWrappedKeyLen); err != nil {
		return nil, err
	}
	if in.IsPrivate && in.PlaintextAESKey != "" {
		return nil, parley.Errorf(parley.EINVALID, "a private community is end-to-end encrypted: send encryptedAESKey, not plaintextAESKey")
	}
	now := s.now()
	c := &parley.Community{ID: parley.NewID("comm"), Name: in.Name, Description: in.Description, Avatar: in.Avatar, CoverImage: in.CoverImage,
		CreatedBy: caller.UserID, OwnerID: caller.UserID, IsPrivate: in.IsPrivate, CreatedAt: now, UpdatedAt: now}
	creatorKey := in.EncryptedAESKey
	if !in.IsPrivate {
		c.CommunityKey = in.PlaintextAESKey
		if c.CommunityKey == "" {
			c.CommunityKey = in.EncryptedAESKey
		}
	}
	general := &parley.Channel{ID: parley.NewConversationID(parley.KindChannel), CommunityID: c.ID, Name: "general", Type: parley.ChannelText,
		CreatedBy: caller.UserID, CreatedAt: now, UpdatedAt: now}
	if err := s.store.Communities.CreateCommunity(ctx, c, creatorKey, general); err != nil {
		return nil, err
	}
	m := &parley.CommunityMember{CommunityID: c.ID, UserID: caller.UserID, Role: parley.RoleOwner, Status: parley.MemberActive,
		EncryptedKey: creatorKey, JoinedAt: now}
	v := communityView(c, m)
	v.ChannelIDs = []string{general.ID}
	return v, nil
}

// Community returns a community's details with the channels the caller
// reads. Errors: ENOTFOUND.
func (s *Service) Community(ctx context.Context, caller *parley.Identity, id string) (*CommunityView, error) {
	c, m, err := s.community(ctx, caller, id)
	if err != nil {
		return nil, err
	}
	v := communityView(c, m)
	v.ChannelIDs = []string{}
	if m != nil && m.Status == parley.MemberActive {
		if v.ChannelIDs, err = s.store.Communities.UserChannels(ctx, c.ID, caller.UserID); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// CommunityInput names a community; userId, when given, must be the caller.
type CommunityInput struct {
	CommunityID string `json:"communityId"`
	UserID      string `json:"userId"`
}

// JoinAnswerInput is the body of POST /api/communities/requests/approve and
// reject: userId is the requester (API.md §6), not the caller.
type JoinAnswerInput struct {
	CommunityID string `json:"communityId"`
	UserID      string `json:"userId"`
}

// MemberInput is the body of POST /api/communities/members/remove.
type MemberInput struct {
	CommunityID string `json:"communityId"`
	MemberID    string `json:"memberId"`
	UserID      string `json:"userId"` // optional; must be the caller
}

// JoinResult answers a join.
type JoinResult struct {
	CommunityID string `json:"communityId"`
	UserID      string `json:"userId"`
	Status      string `json:"status"` // member | pending
	Role        string `json:"role"`
}

type joinRequestEvent struct {
	CommunityID string      `json:"communityId"`
	UserID      string      `json:"userId"`
	Username    string      `json:"username"`
	RequestedAt parley.Time `json:"requestedAt"`
}

type joinAnswerEvent struct {
	CommunityID string      `json:"communityId"`
	UserID      string      `json:"userId"`
	By          string      `json:"by"`
	At          parley.Time `json:"at"`
}

// toUsers makes one change addressed to each user, for sync.
func (s *Service) toUsers(scope, name string, ev any, users []string) ([]*parley.Change, error) {
	ch, err := s.encodeChange(scope, 0, name, "", ev, s.now())
	if err != nil {
		return nil, err
	}
	out := make([]*parley.Change, 0, len(users))
	for _, u := range users {
		c := *ch
		c.ToUser = u
		out = append(out, &c)
	}
	return out, nil
}

func (s *Service) publishChanges(ctx context.Context, changes []*parley.Change, to []string) {
	if len(changes) > 0 {
		s.publishChange(ctx, changes[0], to)
	}
}

// JoinCommunity joins a public community at once (a reader of its public
// channels, with their whole history) or asks to join a private one
// (status "pending"; every admin gets community_join_request).
// userId, when given, must be the caller. Errors: ENOTFOUND, ECONFLICT.
func (s *Service) JoinCommunity(ctx context.Context, caller *parley.Identity, in CommunityInput) (*JoinResult, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	if err := required("communityId", in.CommunityID); err != nil {
		return nil, err
	}
	if !isCommunity(in.CommunityID) {
		return nil, parley.Errorf(parley.ENOTFOUND, "community not found")
	}
	// A private community's id is its invitation: whoever has it may ask.
	c, err := s.store.Communities.Community(ctx, in.CommunityID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if !c.IsPrivate {
		if err := s.store.Communities.JoinCommunity(ctx, c.ID, caller.UserID, parley.MemberActive, now); err != nil {
			return nil, err
		}
		if err := s.keysNeeded(ctx, c, caller.UserID); err != nil {
			return nil, err
		}
		return &JoinResult{CommunityID: c.ID, UserID: caller.UserID, Status: parley.MemberActive, Role: parley.RoleMember}, nil
	}
	admins, err := s.store.Communities.CommunityAdmins(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	u, err := s.store.Users.UserByID(ctx, caller.UserID)
	if err != nil {
		return nil, err
	}
	changes, err := s.toUsers(c.ID, parley.EventCommunityJoinRequest,
		joinRequestEvent{CommunityID: c.ID, UserID: caller.UserID, Username: u.Username, RequestedAt: parley.Time{Time: now}}, admins)
	if err != nil {
		return nil, err
	}
	if err := s.store.Communities.JoinCommunity(ctx, c.ID, caller.UserID, parley.MemberPending, now, changes...); err != nil {
		return nil, err
	}
	s.publishChanges(ctx, changes, admins)
	return &JoinResult{CommunityID: c.ID, UserID: caller.UserID, Status: parley.MemberPending, Role: parley.RoleMember}, nil
}

// keyNeededEvent is channel_key_needed and channel_rekey_needed.
type keyNeededEvent struct {
	ChannelID   string `json:"channelId"`
	CommunityID string `json:"communityId"`
	UserID      string `json:"userId"`
}

// keysNeeded tells the admins of an end-to-end encrypted community which
// of its channels userID now reads without holding a wrapped key, so that
// one of them posts it with POST /api/channels/keys.
func (s *Service) keysNeeded(ctx context.Context, c *parley.Community, userID string) error {
	channels, err := s.store.Communities.UserChannels(ctx, c.ID, userID)
	if err != nil {
		return err
	}
	var encrypted []string
	if c.IsPrivate {
		encrypted = channels
	} else {
		list, err := s.store.Communities.ChannelsByIDs(ctx, channels)
		if err != nil {
			return err
		}
		for _, ch := range list {
			if ch.IsPrivate {
				encrypted = append(encrypted, ch.ID)
			}
		}
	}
	missing, err := s.store.Communities.WithoutChannelKey(ctx, userID, encrypted)
	if err != nil || len(missing) == 0 {
		return err
	}
	admins, err := s.store.Communities.CommunityAdmins(ctx, c.ID)
	if err != nil {
		return err
	}
	return s.tellAdmins(ctx, c, admins, parley.EventChannelKeyNeeded, keyEvents(userID, missing))
}

// keyEvent is one channel_key_needed or channel_rekey_needed to send.
type keyEvent struct{ channelID, userID string }

// tellAdmins records (in one transaction) and publishes a key event to
// admins for each of evs. An admin is never told about themselves.
func (s *Service) tellAdmins(ctx context.Context, c *parley.Community, admins []string, event string, evs []keyEvent) error {
	if len(admins) == 0 || len(evs) == 0 {
		return nil
	}
	type batch struct {
		changes []*parley.Change
		to      []string
	}
	var all []*parley.Change
	var out []batch
	for _, e := range evs {
		to := slices.DeleteFunc(slices.Clone(admins), func(a string) bool { return a == e.userID })
		changes, err := s.toUsers(c.ID, event, keyNeededEvent{ChannelID: e.channelID, CommunityID: c.ID, UserID: e.userID}, to)
		if err != nil {
			return err
		}
		all = append(all, changes...)
		out = append(out, batch{changes, to})
	}
	if err := s.store.Communities.RecordChanges(ctx, all...); err != nil {
		return err
	}
	for _, b := range out {
		s.publishChanges(ctx, b.changes, b.to)
	}
	return nil
}

// keyEvents pairs one user with each channel.
func keyEvents(userID string, channels []string) []keyEvent {
	out := make([]keyEvent, len(channels))
	for i, id := range channels {
		out[i] = keyEvent{channelID: id, userID: userID}
	}
	return out
}

// JoinRequestView is one pending request.
type JoinRequestView struct {
	UserID      string      `json:"userId"`
	Username    string      `json:"username"`
	Name        string      `json:"name"`
	RequestedAt parley.Time `json:"requestedAt"`
}

// JoinRequests lists a community's pending requests, oldest first (admins).
// Errors: ENOTFOUND, EFORBIDDEN.
func (s *Service) JoinRequests(ctx context.Context, caller *parley.Identity, communityID string) ([]JoinRequestView, error) {
	c, _, err := s.communityAdmin(ctx, caller, communityID, "see join requests")
	if err != nil {
		return nil, err
	}
	pending, err := s.store.Communities.CommunityMembers(ctx, c.ID, parley.MemberPending)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(pending))
	for i, m := range pending {
		ids[i] = m.UserID
	}
	byID, err := s.usersByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]JoinRequestView, 0, len(pending))
	for _, m := range pending {
		v := JoinRequestView{UserID: m.UserID, RequestedAt: parley.Time{Time: m.JoinedAt}}
		if u := byID[m.UserID]; u != nil {
			v.Username, v.Name = u.Username, u.Name
		}
		out = append(out, v)
	}
	return out, nil
}

// AnswerJoin approves or rejects a pending request (admins); the
// requester gets community_join_approved or community_join_rejected.
// Errors: ENOTFOUND (no such request), EFORBIDDEN, EINVALID.
func (s *Service) AnswerJoin(ctx context.Context, caller *parley.Identity, in JoinAnswerInput, approve bool) (*JoinResult, error) {
	c, _, err := s.communityAdmin(ctx, caller, in.CommunityID, "answer join requests")
	if err != nil {
		return nil, err
	}
	if err := userIDArg("userId", in.UserID); err != nil {
		return nil, err
	}
	now := s.now()
	ev := joinAnswerEvent{CommunityID: c.ID, UserID: in.UserID, By: caller.UserID, At: parley.Time{Time: now}}
	name := parley.EventCommunityRejected
	if approve {
		name = parley.EventCommunityApproved
	}
	changes, err := s.toUsers(c.ID, name, ev, []string{in.UserID})
	if err != nil {
		return nil, err
	}
	res := &JoinResult{CommunityID: c.ID, UserID: in.UserID, Role: parley.RoleMember}
	if approve {
		if err := s.store.Communities.ApproveMember(ctx, c.ID, in.UserID, now, changes...); err != nil {
			return nil, err
		}
		res.Status = parley.MemberActive
	} else {
		if err := s.store.Communities.RejectMember(ctx, c.ID, in.UserID, changes...); err != nil {
			return nil, err
		}
		res.Status = "rejected"
	}
	s.publishChanges(ctx, changes, []string{in.UserID})
	if approve {
		if err := s.keysNeeded(ctx, c, in.UserID); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// LeaveResult answers a leave or a removal.
type LeaveResult struct {
	CommunityID string `json:"communityId"`
	UserID      string `json:"userId"`
	Promoted    string `json:"promoted,omitempty"`
	OwnerID     string `json:"ownerId"`
}

// LeaveCommunity removes the caller from a community and its channels.
// The last admin leaving makes the longest-standing member admin; the
// owner leaving makes the longest-standing admin owner. A pending caller
// withdraws their request. Errors: ENOTFOUND.
func (s *Service) LeaveCommunity(ctx context.Context, caller *parley.Identity, in CommunityInput) (*LeaveResult, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	c, m, err := s.community(ctx, caller, in.CommunityID)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, parley.Errorf(parley.ENOTFOUND, "community not found")
	}
	if m.Status == parley.MemberPending {
		if err := s.store.Communities.RejectMember(ctx, c.ID, caller.UserID); err != nil {
			return nil, err
		}
		return &LeaveResult{CommunityID: c.ID, UserID: caller.UserID, OwnerID: c.OwnerID}, nil
	}
	return s.removeMember(ctx, c, caller.UserID)
}

// RemoveCommunityMember removes a member (admins; only the owner removes
// an admin, and nobody the owner). Errors: ENOTFOUND, EFORBIDDEN.
func (s *Service) RemoveCommunityMember(ctx context.Context, caller *parley.Identity, in MemberInput) (*LeaveResult, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	c, me, err := s.communityAdmin(ctx, caller, in.CommunityID, "remove members")
	if err != nil {
		return nil, err
	}
	if err := userIDArg("memberId", in.MemberID); err != nil {
		return nil, err
	}
	target, err := s.store.Communities.CommunityMember(ctx, c.ID, in.MemberID)
	if err != nil || target.Status != parley.MemberActive {
		return nil, parley.Errorf(parley.ENOTFOUND, "member not found")
	}
	if target.Role == parley.RoleOwner {
		return nil, parley.Errorf(parley.EFORBIDDEN, "the owner cannot be removed")
	}
	if target.Role == parley.RoleAdmin && me.Role != parley.RoleOwner {
		return nil, parley.Errorf(parley.EFORBIDDEN, "only the owner can remove an admin")
	}
	return s.removeMember(ctx, c, in.MemberID)
}

type communityLeftEvent struct {
	CommunityID string      `json:"communityId"`
	UserID      string      `json:"userId"`
	At          parley.Time `json:"at"`
}

func (s *Service) removeMember(ctx context.Context, c *parley.Community, userID string) (*LeaveResult, error) {
	now := s.now()
	changes, err := s.toUsers(c.ID, parley.EventCommunityMemberLeft, communityLeftEvent{CommunityID: c.ID, UserID: userID,
		At: parley.Time{Time: now}}, []string{userID})
	if err != nil {
		return nil, err
	}
	r, err := s.store.Communities.RemoveCommunityMember(ctx, c.ID, userID, changes...)
	if err != nil {
		return nil, err
	}
	s.publishChanges(ctx, changes, []string{userID})
	if len(r.PrivateChannels) > 0 || c.IsPrivate {
		// The member kept the keys they held: admins rotate them.
		rekey := r.PrivateChannels
		if c.IsPrivate {
			if rekey, err = s.channelIDs(ctx, c.ID); err != nil {
				return nil, err
			}
		}
		admins, err := s.store.Communities.CommunityAdmins(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		if err := s.tellAdmins(ctx, c, admins, parley.EventChannelRekeyNeeded, keyEvents(userID, rekey)); err != nil {
			return nil, err
		}
	}
	return &LeaveResult{CommunityID: c.ID, UserID: userID, Promoted: r.Promoted, OwnerID: r.OwnerID}, nil
}

func (s *Service) channelIDs(ctx context.Context, communityID string) ([]string, error) {
	list, err := s.store.Communities.CommunityChannels(ctx, communityID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(list))
	for i, ch := range list {
		ids[i] = ch.ID
	}
	return ids, nil
}

// CommunityRoleInput is the body of POST /api/communities/members/role.
type CommunityRoleInput struct {
	CommunityID string `json:"communityId"`
	MemberID    string `json:"memberId"`
	Role        string `json:"role"`             // admin | member
	UserID      string `json:"userId,omitempty"` // optional; must be the caller
}

// SetCommunityRole promotes a member to admin or demotes an admin (admins;
// the owner's role never changes). Errors: ENOTFOUND, EFORBIDDEN, EINVALID.
func (s *Service) SetCommunityRole(ctx context.Context, caller *parley.Identity, in CommunityRoleInput) (*CommunityRoleInput, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	c, _, err := s.communityAdmin(ctx, caller, in.CommunityID, "change roles")
	if err != nil {
		return nil, err
	}
	if err := userIDArg("memberId", in.MemberID); err != nil {
		return nil, err
	}
	if in.Role != parley.RoleAdmin && in.Role != parley.RoleMember {
		return nil, parley.Errorf(parley.EINVALID, "role must be admin or member")
	}
	if err := s.store.Communities.SetCommunityRole(ctx, c.ID, in.MemberID, in.Role); err != nil {
		return nil, err
	}
	return &CommunityRoleInput{CommunityID: c.ID, MemberID: in.MemberID, Role: in.Role}, nil
}

// UpdateCommunityInput is the body of POST /api/communities/update; absent
// fields stay as they are.
type UpdateCommunityInput struct {
	CommunityID string  `json:"communityId"`
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Avatar      *string `json:"avatar"`
	CoverImage  *string `json:"coverImage"`
}

// UpdateCommunity changes name, description, avatar or cover image
// (admins); members get community_updated. Errors: ENOTFOUND, EFORBIDDEN, EINVALID.
func (s *Service) UpdateCommunity(ctx context.Context, caller *parley.Identity, in UpdateCommunityInput) (*CommunityView, error) {
	c, m, err := s.communityAdmin(ctx, caller, in.CommunityID, "update the community")
	if err != nil {
		return nil, err
	}
	if in.Name != nil {
		c.Name = strings.TrimSpace(*in.Name)
		if err := required("name", c.Name); err != nil {
			return nil, err
		}
	}
	if in.Description != nil {
		c.Description = *in.Description
	}
	if in.Avatar != nil {
		c.Avatar = *in.Avatar
	}
	if in.CoverImage != nil {
		c.CoverImage = *in.CoverImage
	}
	if err := validateCommunityText(c.Name, c.Description, c.Avatar, c.CoverImage); err != nil {
		return nil, err
	}
	c.UpdatedAt = s.now()
	if err := s.store.Communities.UpdateCommunity(ctx, c); err != nil {
		return nil, err
	}
	v := communityView(c, m)
	members, err := s.communityMemberIDs(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	pub := communityView(c, nil) // no keys in a broadcast
	s.publish(ctx, parley.EventCommunityUpdated, pub, members)
	return v, nil
}

// CommunityMemberView is one approved member of a community.
type CommunityMemberView struct {
	UserID   string      `json:"userId"`
	Username string      `json:"username"`
	Name     string      `json:"name"`
	Role     string      `json:"role"`
	JoinedAt parley.Time `json:"joinedAt"`
}

// CommunityMembers lists a community's approved members in the order they
// joined, at most limit (1 to MaxPageSize; 0: DefaultPageSize) after the
// member whose userId is after (empty: from the first). Only approved
// members may list them. Errors: ENOTFOUND (no such community, or the
// caller is not an approved member), EINVALID.
func (s *Service) CommunityMembers(ctx context.Context, caller *parley.Identity, communityID, after string, limit int) ([]CommunityMemberView, error) {
	limit, err := idPage(after, limit)
	if err != nil {
		return nil, err
	}
	c, _, err := s.communityMember(ctx, caller, communityID)
	if err != nil {
		return nil, err
	}
	ms, err := s.store.Communities.CommunityMembersPage(ctx, c.ID, after, limit)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.UserID
	}
	byID, err := s.usersByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]CommunityMemberView, 0, len(ms))
	for _, m := range ms {
		v := CommunityMemberView{UserID: m.UserID, Role: m.Role, JoinedAt: parley.Time{Time: m.JoinedAt}}
		if u := byID[m.UserID]; u != nil {
			v.Username, v.Name = u.Username, u.Name
		}
		out = append(out, v)
	}
	return out, nil
}

// ChannelReaderView is one reader of a channel.
type ChannelReaderView struct {
	UserID   string `json:"userId"`
	Username string `json:"username"`
	Name     string `json:"name"`
}

// ChannelReaders lists who reads a channel, by userId, at most limit (1
// to MaxPageSize; 0: DefaultPageSize) after the reader after (empty: from
// the first): what an admin's client needs to wrap a new key for every
// remaining reader when it rotates a private channel's key. Only readers
// may list them. Errors: ENOTFOUND (no such channel, or the caller does not
// read it), EINVALID.
func (s *Service) ChannelReaders(ctx context.Context, caller *parley.Identity, channelID, after string, limit int) ([]ChannelReaderView, error) {
	limit, err := idPage(after, limit)
	if err != nil {
		return nil, err
	}
	ch, _, _, err := s.channel(ctx, caller, channelID)
	if err != nil {
		return nil, err
	}
	ids, err := s.store.Communities.ChannelReaders(ctx, ch.ID, after, limit)
	if err != nil {
		return nil, err
	}
	byID, err := s.usersByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]ChannelReaderView, 0, len(ids))
	for _, id := range ids {
		v := ChannelReaderView{UserID: id}
		if u := byID[id]; u != nil {
			v.Username, v.Name = u.Username, u.Name
		}
		out = append(out, v)
	}
	return out, nil
}

// idPage checks a page of a list keyed by id: limit 1 to MaxPageSize (0:
// DefaultPageSize) after an id (ids are 30 bytes; at most 64 taken).
func idPage(after string, limit int) (int, error) {
	if limit < 0 || limit > MaxPageSize {
		return 0, parley.Errorf(parley.EINVALID, "limit must be 1 to %d", MaxPageSize)
	}
	if limit == 0 {
		limit = DefaultPageSize
	}
	return limit, maxLen("after", after, 64)
}

// usersByID reads the accounts of ids that exist, by id.
func (s *Service) usersByID(ctx context.Context, ids []string) (map[string]*parley.User, error) {
	users, err := s.store.Users.UsersByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*parley.User, len(users))
	for _, u := range users {
		byID[u.ID] = u
	}
	return byID, nil
}

// communityMemberIDs lists the ids of a community's approved members.
func (s *Service) communityMemberIDs(ctx context.Context, communityID string) ([]string, error) {
	ms, err := s.store.Communities.CommunityMembers(ctx, communityID, parley.MemberActive)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.UserID
	}
	return ids, nil
}

type communityDeletedEvent struct {
	CommunityID string      `json:"communityId"`
	DeletedBy   string      `json:"deletedBy"`
	At          parley.Time `json:"at"`
}

// DeleteCommunity deletes a community with its channels and messages
// (the owner); every member gets community_deleted. Errors: ENOTFOUND, EFORBIDDEN.
func (s *Service) DeleteCommunity(ctx context.Context, caller *parley.Identity, in CommunityInput) (*CommunityInput, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	c, m, err := s.communityMember(ctx, caller, in.CommunityID)
	if err != nil {
		return nil, err
	}
	if m.Role != parley.RoleOwner {
		return nil, parley.Errorf(parley.EFORBIDDEN, "only the owner can delete the community")
	}
	members, err := s.communityMemberIDs(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	changes, err := s.toUsers(c.ID, parley.EventCommunityDeleted, communityDeletedEvent{CommunityID: c.ID, DeletedBy: caller.UserID,
		At: parley.Time{Time: s.now()}}, members)
	if err != nil {
		return nil, err
	}
	if err := s.store.Communities.DeleteCommunity(ctx, c.ID, changes...); err != nil {
		return nil, err
	}
	s.publishChanges(ctx, changes, members)
	return &CommunityInput{CommunityID: c.ID}, nil
}

// UserCommunities lists the communities the caller is a member of; userID
// must be the caller. Errors: EFORBIDDEN.
func (s *Service) UserCommunities(ctx context.Context, caller *parley.Identity, userID string) ([]*CommunityView, error) {
	if userID != caller.UserID {
		return nil, parley.Errorf(parley.EFORBIDDEN, "you can only list your own communities")
	}
	list, err := s.store.Communities.UserCommunities(ctx, caller.UserID)
	if err != nil {
		return nil, err
	}
	out := make([]*CommunityView, 0, len(list))
	for _, c := range list {
		m, err := s.store.Communities.CommunityMember(ctx, c.ID, caller.UserID)
		if err != nil {
			return nil, err
		}
		out = append(out, communityView(c, m))
	}
	return out, nil
}

// SearchCommunities lists public communities whose name contains q.
// Errors: EINVALID.
func (s *Service) SearchCommunities(ctx context.Context, caller *parley.Identity, q string, limit int) ([]*CommunityView, error) {
	if err := maxLen("q", q, parley.MaxCommunityNameLen); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = DefaultPageSize
	}
	list, err := s.store.Communities.SearchCommunities(ctx, strings.TrimSpace(q), min(limit, MaxPageSize))
	if err != nil {
		return nil, err
	}
	out := make([]*CommunityView, 0, len(list))
	for _, c := range list {
		out = append(out, communityView(c, nil))
	}
	return out, nil
}

// userIDArg checks a user id given as the target of an admin action.
func userIDArg(field, id string) error {
	if err := required(field, id); err != nil {
		return err
	}
	if len(id) > 64 {
		return parley.Errorf(parley.EINVALID, "%s must be a user id", field)
	}
	return nil
}
