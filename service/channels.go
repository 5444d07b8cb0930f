package service

import (
	"context"
	"slices"
	"strings"

	"github.com/parley-chat/parley"
)

// channel returns a channel the caller reads, with its community and the
// caller's community membership. Anyone else, pending and removed members
// included, gets ENOTFOUND.
func (s *Service) channel(ctx context.Context, caller *parley.Identity, id string) (*parley.Channel, *parley.Community, *parley.CommunityMember, error) {
	if err := required("channelId", id); err != nil {
		return nil, nil, nil, err
	}
	notFound := parley.Errorf(parley.ENOTFOUND, "channel not found")
	if !isChannel(id) {
		return nil, nil, nil, notFound
	}
	if _, err := s.store.Conversations.Member(ctx, id, caller.UserID); err != nil {
		if parley.ErrorCode(err) == parley.ENOTFOUND {
			return nil, nil, nil, notFound
		}
		return nil, nil, nil, err
	}
	ch, err := s.store.Communities.Channel(ctx, id)
	if err != nil {
		return nil, nil, nil, err
	}
	c, m, err := s.communityMember(ctx, caller, ch.CommunityID)
	if err != nil {
		return nil, nil, nil, notFound
	}
	return ch, c, m, nil
}

// managedChannel returns a channel of a community the caller administers,
// whether or not they read it (admins manage private channels they are not
// in). Members who are no admin get EFORBIDDEN for a channel they read and
// ENOTFOUND otherwise.
func (s *Service) managedChannel(ctx context.Context, caller *parley.Identity, id, what string) (*parley.Channel, *parley.Community, error) {
	if err := required("channelId", id); err != nil {
		return nil, nil, err
	}
	notFound := parley.Errorf(parley.ENOTFOUND, "channel not found")
	if !isChannel(id) {
		return nil, nil, notFound
	}
	ch, err := s.store.Communities.Channel(ctx, id)
	if parley.ErrorCode(err) == parley.ENOTFOUND {
		return nil, nil, notFound
	} else if err != nil {
		return nil, nil, err
	}
	c, m, err := s.communityMember(ctx, caller, ch.CommunityID)
	if err != nil {
		return nil, nil, notFound
	}
	if !parley.IsAdminRole(m.Role) {
		if _, err := s.store.Conversations.Member(ctx, id, caller.UserID); err != nil {
			return nil, nil, notFound
		}
		return nil, nil, parley.Errorf(parley.EFORBIDDEN, "only community admins can %s", what)
	}
	return ch, c, nil
}

func validateChannelText(name, description string) error {
	if err := required("name", name); err != nil {
		return err
	}
	if err := maxLen("name", name, parley.MaxChannelNameLen); err != nil {
		return err
	}
	return maxLen("description", description, parley.MaxChannelDescLen)
}

func validateKeys(field string, keys map[string]string) error {
	if len(keys) > parley.MaxKeysPerRequest {
		return parley.Errorf(parley.EINVALID, "%s: at most %d keys per request", field, parley.MaxKeysPerRequest)
	}
	for u, k := range keys {
		if strings.TrimSpace(u) == "" || len(u) > 64 {
			return parley.Errorf(parley.EINVALID, "%s must map user ids to wrapped keys", field)
		}
		if k == "" {
			return parley.Errorf(parley.EINVALID, "%s: the key of %s is empty", field, u)
		}
		if err := maxLen(field, k, parley.MaxWrappedKeyLen); err != nil {
			return err
		}
	}
	return nil
}

// CreateChannelInput is the body of POST /api/communities/channels/create.
type CreateChannelInput struct {
	CommunityID             string            `json:"communityId"`
	Name                    string            `json:"name"`
	Description             string            `json:"description"`
	Type                    string            `json:"type"`
	IsPrivate               bool              `json:"isPrivate"`
	AllowedMembers          []string          `json:"allowedMembers"`
	EncryptedKeysFromClient map[string]string `json:"encryptedKeysFromClient"`
}

type channelEvent struct {
	*ChannelView
	By string      `json:"by"`
	At parley.Time `json:"at"`
}

// CreateChannel creates a channel (admins). A public channel is read by
// every member; a private one by the creator and allowedMembers (members
// of the community). encryptedKeysFromClient holds each reader's wrapped
// channel key, stored as given. Readers get channel_created.
// Errors: ENOTFOUND, EFORBIDDEN, EINVALID, ECONFLICT (500 channels).
func (s *Service) CreateChannel(ctx context.Context, caller *parley.Identity, in CreateChannelInput) (*ChannelView, error) {
	c, _, err := s.communityAdmin(ctx, caller, in.CommunityID, "create channels")
	if err != nil {
		return nil, err
	}
	in.Name = strings.TrimSpace(in.Name)
	if err := validateChannelText(in.Name, in.Description); err != nil {
		return nil, err
	}
	if in.Type == "" {
		in.Type = parley.ChannelText
	}
	if !slices.Contains(parley.ChannelTypes, in.Type) {
		return nil, parley.Errorf(parley.EINVALID, "type must be one of %s", strings.Join(parley.ChannelTypes, ", "))
	}
	if len(in.AllowedMembers) > parley.MaxPrivateChannelSize {
		return nil, parley.Errorf(parley.EINVALID, "allowedMembers: at most %d per request", parley.MaxPrivateChannelSize)
	}
	if err := validateKeys("encryptedKeysFromClient", in.EncryptedKeysFromClient); err != nil {
		return nil, err
	}
	var readers []string
	if in.IsPrivate {
		readers = []string{caller.UserID}
		for _, u := range in.AllowedMembers {
			if strings.TrimSpace(u) == "" || len(u) > 64 {
				return nil, parley.Errorf(parley.EINVALID, "allowedMembers must be user ids")
			}
			if !slices.Contains(readers, u) {
				readers = append(readers, u)
			}
		}
	} else if len(in.AllowedMembers) > 0 {
		return nil, parley.Errorf(parley.EINVALID, "allowedMembers is for private channels; every member reads a public one")
	}
	now := s.now()
	ch := &parley.Channel{ID: parley.NewConversationID(parley.KindChannel), CommunityID: c.ID, Name: in.Name, Description: in.Description,
		Type: in.Type, IsPrivate: in.IsPrivate, CreatedBy: caller.UserID, CreatedAt: now, UpdatedAt: now}
	view := channelView(ch, c)
	created, err := s.encodeChange(ch.ID, 0, parley.EventChannelCreated, "", channelEvent{ChannelView: view, By: caller.UserID,
		At: parley.Time{Time: now}}, now)
	if err != nil {
		return nil, err
	}
	if err := s.store.Communities.CreateChannel(ctx, ch, readers, in.EncryptedKeysFromClient, now, created); err != nil {
		return nil, err
	}
	view.MembersCount = ch.MembersCount
	to, err := s.conversationUsers(ctx, ch.ID)
	if err != nil {
		return nil, err
	}
	s.publishChange(ctx, created, to)
	if ch.IsPrivate {
		// A private channel has at most MaxPrivateChannelSize readers given
		// here; for a public channel of an encrypted community the creating
		// admin's client holds every member's key and sends them along (or
		// later with POST /api/channels/keys): no event per member.
		var missing []keyEvent
		for _, u := range to {
			if in.EncryptedKeysFromClient[u] == "" {
				missing = append(missing, keyEvent{channelID: ch.ID, userID: u})
			}
		}
		admins, err := s.store.Communities.CommunityAdmins(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		if err := s.tellAdmins(ctx, c, admins, parley.EventChannelKeyNeeded, missing); err != nil {
			return nil, err
		}
	}
	return view, nil
}

// CommunityChannels lists the channels of a community the caller reads.
// Errors: ENOTFOUND.
func (s *Service) CommunityChannels(ctx context.Context, caller *parley.Identity, communityID string) ([]*ChannelView, error) {
	c, _, err := s.communityMember(ctx, caller, communityID)
	if err != nil {
		return nil, err
	}
	ids, err := s.store.Communities.UserChannels(ctx, c.ID, caller.UserID)
	if err != nil {
		return nil, err
	}
	all, err := s.store.Communities.CommunityChannels(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	out := make([]*ChannelView, 0, len(ids))
	for _, ch := range all {
		if slices.Contains(ids, ch.ID) {
			out = append(out, channelView(ch, c))
		}
	}
	return out, nil
}

// UpdateChannelInput is the body of POST /api/channels/update.
type UpdateChannelInput struct {
	ChannelID   string  `json:"channelId"`
	Name        *string `json:"name"`
	Description *string `json:"description"`
}

// UpdateChannel renames or redescribes a channel (admins); readers get
// channel_updated. Errors: ENOTFOUND, EFORBIDDEN, EINVALID.
func (s *Service) UpdateChannel(ctx context.Context, caller *parley.Identity, in UpdateChannelInput) (*ChannelView, error) {
	ch, c, err := s.managedChannel(ctx, caller, in.ChannelID, "update channels")
	if err != nil {
		return nil, err
	}
	if in.Name != nil {
		ch.Name = strings.TrimSpace(*in.Name)
	}
	if in.Description != nil {
		ch.Description = *in.Description
	}
	if err := validateChannelText(ch.Name, ch.Description); err != nil {
		return nil, err
	}
	now := s.now()
	ch.UpdatedAt = now
	view := channelView(ch, c)
	updated, err := s.encodeChange(ch.ID, 0, parley.EventChannelUpdated, "", channelEvent{ChannelView: view, By: caller.UserID,
		At: parley.Time{Time: now}}, now)
	if err != nil {
		return nil, err
	}
	if err := s.store.Communities.UpdateChannel(ctx, ch, updated); err != nil {
		return nil, err
	}
	to, err := s.conversationUsers(ctx, ch.ID)
	if err != nil {
		return nil, err
	}
	s.publishChange(ctx, updated, to)
	return view, nil
}

// ChannelInput names a channel.
type ChannelInput struct {
	ChannelID string `json:"channelId"`
}

type channelDeletedEvent struct {
	ChannelID   string      `json:"channelId"`
	CommunityID string      `json:"communityId"`
	DeletedBy   string      `json:"deletedBy"`
	At          parley.Time `json:"at"`
}

// DeleteChannel deletes a channel with its messages (admins); its readers
// get channel_deleted. Errors: ENOTFOUND, EFORBIDDEN.
func (s *Service) DeleteChannel(ctx context.Context, caller *parley.Identity, in ChannelInput) (*ChannelInput, error) {
	ch, _, err := s.managedChannel(ctx, caller, in.ChannelID, "delete channels")
	if err != nil {
		return nil, err
	}
	readers, err := s.conversationUsers(ctx, ch.ID)
	if err != nil {
		return nil, err
	}
	changes, err := s.toUsers(ch.CommunityID, parley.EventChannelDeleted, channelDeletedEvent{ChannelID: ch.ID, CommunityID: ch.CommunityID,
		DeletedBy: caller.UserID, At: parley.Time{Time: s.now()}}, readers)
	if err != nil {
		return nil, err
	}
	if err := s.store.Communities.DeleteChannel(ctx, ch.ID, changes...); err != nil {
		return nil, err
	}
	s.publishChanges(ctx, changes, readers)
	return &ChannelInput{ChannelID: ch.ID}, nil
}

// ChannelMembersInput is the body of POST /api/channels/members/add and remove.
type ChannelMembersInput struct {
	ChannelID string   `json:"channelId"`
	MemberIDs []string `json:"memberIds"` // add: the users to add
	MemberID  string   `json:"memberId"`  // remove: the user to remove; add: the same as memberIds: [memberId]
	UserID    string   `json:"userId"`    // optional; must be the caller
}

// ChannelMembersResult answers a change of a private channel's readers.
type ChannelMembersResult struct {
	ChannelID string   `json:"channelId"`
	UserIDs   []string `json:"userIds"`
}

// AddChannelMembers lets community members read a private channel
// (admins). Admins are told channel_key_needed for each new reader of an
// encrypted channel. Errors: ENOTFOUND, EFORBIDDEN, EINVALID.
func (s *Service) AddChannelMembers(ctx context.Context, caller *parley.Identity, in ChannelMembersInput) (*ChannelMembersResult, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	ch, c, err := s.managedChannel(ctx, caller, in.ChannelID, "change who reads a channel")
	if err != nil {
		return nil, err
	}
	if !ch.IsPrivate {
		return nil, parley.Errorf(parley.EINVALID, "every member of the community reads a public channel")
	}
	users := in.MemberIDs
	if in.MemberID != "" {
		users = append(users, in.MemberID)
	}
	if len(users) == 0 || len(users) > parley.MaxPrivateChannelSize {
		return nil, parley.Errorf(parley.EINVALID, "memberIds: give 1 to %d user ids", parley.MaxPrivateChannelSize)
	}
	for _, u := range users {
		if strings.TrimSpace(u) == "" || len(u) > 64 {
			return nil, parley.Errorf(parley.EINVALID, "memberIds must be user ids")
		}
	}
	added, err := s.store.Communities.AddChannelReaders(ctx, ch.ID, users, s.now())
	if err != nil {
		return nil, err
	}
	admins, err := s.store.Communities.CommunityAdmins(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	var missing []keyEvent
	for _, u := range added {
		missing = append(missing, keyEvent{channelID: ch.ID, userID: u})
	}
	if err := s.tellAdmins(ctx, c, admins, parley.EventChannelKeyNeeded, missing); err != nil {
		return nil, err
	}
	if added == nil {
		added = []string{}
	}
	return &ChannelMembersResult{ChannelID: ch.ID, UserIDs: added}, nil
}

// RemoveChannelMember stops a user reading a private channel (admins);
// admins get channel_rekey_needed so that clients rotate its key.
// Errors: ENOTFOUND, EFORBIDDEN, EINVALID.
func (s *Service) RemoveChannelMember(ctx context.Context, caller *parley.Identity, in ChannelMembersInput) (*ChannelMembersResult, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	ch, c, err := s.managedChannel(ctx, caller, in.ChannelID, "change who reads a channel")
	if err != nil {
		return nil, err
	}
	if !ch.IsPrivate {
		return nil, parley.Errorf(parley.EINVALID, "every member of the community reads a public channel")
	}
	if err := userIDArg("memberId", in.MemberID); err != nil {
		return nil, err
	}
	if err := s.store.Communities.RemoveChannelReader(ctx, ch.ID, in.MemberID); err != nil {
		return nil, err
	}
	admins, err := s.store.Communities.CommunityAdmins(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	if err := s.tellAdmins(ctx, c, admins, parley.EventChannelRekeyNeeded, []keyEvent{{channelID: ch.ID, userID: in.MemberID}}); err != nil {
		return nil, err
	}
	return &ChannelMembersResult{ChannelID: ch.ID, UserIDs: []string{in.MemberID}}, nil
}

// ChannelKeyView is the caller's key of a channel. In a trusted
// community's public channel it is the community key (Key); otherwise
// the caller's wrapped key (EncryptedKey), null until an admin posts it.
type ChannelKeyView struct {
	ChannelID    string  `json:"channelId"`
	E2EEMode     string  `json:"e2eeMode"`
	EncryptedKey *string `json:"encryptedKey"`
	Key          string  `json:"key,omitempty"`
}

// ChannelKey returns the caller's own key of a channel they read.
// Errors: ENOTFOUND.
func (s *Service) ChannelKey(ctx context.Context, caller *parley.Identity, channelID string) (*ChannelKeyView, error) {
	ch, c, _, err := s.channel(ctx, caller, channelID)
	if err != nil {
		return nil, err
	}
	v := &ChannelKeyView{ChannelID: ch.ID, E2EEMode: channelView(ch, c).E2EEMode}
	key, err := s.store.Communities.ChannelKey(ctx, ch.ID, caller.UserID)
	if err != nil {
		return nil, err
	}
	if key != "" {
		v.EncryptedKey = &key
	}
	if v.E2EEMode == parley.E2EETrusted {
		v.Key = c.CommunityKey
	}
	return v, nil
}

// ChannelKeysInput is the body of POST /api/channels/keys.
type ChannelKeysInput struct {
	ChannelID string            `json:"channelId"`
	Keys      map[string]string `json:"keys"`
}

// SetChannelKeys stores wrapped channel keys for readers (admins who read
// the channel). Errors: ENOTFOUND, EFORBIDDEN, EINVALID.
func (s *Service) SetChannelKeys(ctx context.Context, caller *parley.Identity, in ChannelKeysInput) (*ChannelMembersResult, error) {
	ch, _, m, err := s.channel(ctx, caller, in.ChannelID)
	if err != nil {
		return nil, err
	}
	if !parley.IsAdminRole(m.Role) {
		return nil, parley.Errorf(parley.EFORBIDDEN, "only community admins can hand out channel keys")
	}
	if len(in.Keys) == 0 {
		return nil, parley.Errorf(parley.EINVALID, "keys is required")
	}
	if err := validateKeys("keys", in.Keys); err != nil {
		return nil, err
	}
	if err := s.store.Communities.SetChannelKeys(ctx, ch.ID, in.Keys, s.now()); err != nil {
		return nil, err
	}
	users := make([]string, 0, len(in.Keys))
	for u := range in.Keys {
		users = append(users, u)
	}
	slices.Sort(users)
	return &ChannelMembersResult{ChannelID: ch.ID, UserIDs: users}, nil
}
