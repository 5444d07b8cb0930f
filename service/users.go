package service

import (
	"context"
	"fmt"
	"strings"

	"github.com/parley-chat/parley"
)

// DeviceKey is one device's public key.
type DeviceKey struct {
	DeviceID  string      `json:"deviceId"`
	PublicKey string      `json:"publicKey"`
	CreatedAt parley.Time `json:"createdAt"`
}

// PublicProfile is what any signed-in user may see of another.
type PublicProfile struct {
	UserID    string      `json:"userId"`
	Username  string      `json:"username"`
	Name      string      `json:"name"`
	About     string      `json:"about"`
	Avatar    string      `json:"avatar"`
	PublicKey string      `json:"publicKey"`
	Devices   []DeviceKey `json:"devices"`
}

// OwnProfile is the caller's own profile.
type OwnProfile struct {
	PublicProfile
	Email     string          `json:"email"`
	Settings  parley.Settings `json:"settings"`
	CreatedAt parley.Time     `json:"createdAt"`
	IsAdmin   bool            `json:"isAdmin"`
}

func (s *Service) publicProfile(ctx context.Context, u *parley.User) (*PublicProfile, error) {
	devices, err := s.store.Users.Devices(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	p := &PublicProfile{UserID: u.ID, Username: u.Username, Name: u.Name, About: u.About, Avatar: u.Avatar, Devices: []DeviceKey{}}
	var latest *parley.Device
	for _, d := range devices {
		p.Devices = append(p.Devices, DeviceKey{DeviceID: d.DeviceID, PublicKey: d.PublicKey, CreatedAt: parley.Time{Time: d.CreatedAt}})
		if latest == nil || !d.UpdatedAt.Before(latest.UpdatedAt) {
			latest = d
		}
	}
	if latest != nil {
		p.PublicKey = latest.PublicKey // the most recently set key: what a client should encrypt to
	}
	return p, nil
}

// Me returns the caller's own profile with e-mail and settings.
func (s *Service) Me(ctx context.Context, caller *parley.Identity) (*OwnProfile, error) {
	u, err := s.store.Users.UserByID(ctx, caller.UserID)
	if err != nil {
		return nil, err
	}
	p, err := s.publicProfile(ctx, u)
	if err != nil {
		return nil, err
	}
	return &OwnProfile{PublicProfile: *p, Email: u.Email, Settings: u.Settings, CreatedAt: parley.Time{Time: u.CreatedAt},
		IsAdmin: s.admins[normalizeUsername(u.Username)]}, nil
}

// User returns a user's public profile. Errors: ENOTFOUND.
func (s *Service) User(ctx context.Context, caller *parley.Identity, userID string) (*PublicProfile, error) {
	u, err := s.store.Users.UserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	return s.publicProfile(ctx, u)
}

// MaxSearchResults is the most users a search returns.
const MaxSearchResults = 20

// SearchUsers returns up to 20 public profiles whose username or name starts
// with q. Errors: EINVALID for an empty or over-long q.
func (s *Service) SearchUsers(ctx context.Context, caller *parley.Identity, q string) ([]*PublicProfile, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return nil, parley.Errorf(parley.EINVALID, "q is required")
	}
	if err := maxLen("q", q, parley.MaxNameLen); err != nil {
		return nil, err
	}
	users, err := s.store.Users.SearchUsers(ctx, q, MaxSearchResults)
	if err != nil {
		return nil, err
	}
	out := make([]*PublicProfile, 0, len(users))
	for _, u := range users {
		p, err := s.publicProfile(ctx, u)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// ProfileInput is the body of PUT /api/users/me/profile.
type ProfileInput struct {
	Name  *string `json:"name"`
	About *string `json:"about"`
	// Avatar is a URL, or the fileId of an image the caller uploaded
	// (which every user may then download).
	Avatar *string `json:"avatar"`
}

// UpdateProfile changes the caller's name, about or avatar and sends
// profile_updated to their contacts. targetID, when given (the
// /api/users/{userId}/profile form), must be the caller. Errors: EFORBIDDEN, EINVALID.
func (s *Service) UpdateProfile(ctx context.Context, caller *parley.Identity, targetID string, in ProfileInput) (*PublicProfile, error) {
	if err := checkSelf(caller, targetID, "userId"); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		v    *string
		n    int
	}{{"name", in.Name, parley.MaxNameLen}, {"about", in.About, parley.MaxAboutLen}, {"avatar", in.Avatar, parley.MaxAvatarLen}} {
		if f.v != nil {
			*f.v = strings.TrimSpace(*f.v)
			if err := maxLen(f.name, *f.v, f.n); err != nil {
				return nil, err
			}
		}
	}
	u, err := s.store.Users.UpdateProfile(ctx, caller.UserID, parley.ProfileUpdate{Name: in.Name, About: in.About, Avatar: in.Avatar}, s.now())
	if err != nil {
		return nil, err
	}
	p, err := s.publicProfile(ctx, u)
	if err != nil {
		return nil, err
	}
	to, err := s.audience(ctx, caller.UserID)
	if err != nil {
		return nil, err
	}
	s.publish(ctx, parley.EventProfileUpdated, p, to)
	return p, nil
}

// Keys lists every device key of a user. Errors: ENOTFOUND.
func (s *Service) Keys(ctx context.Context, caller *parley.Identity, userID string) ([]DeviceKey, error) {
	if _, err := s.store.Users.UserByID(ctx, userID); err != nil {
		return nil, err
	}
	devices, err := s.store.Users.Devices(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]DeviceKey, 0, len(devices))
	for _, d := range devices {
		out = append(out, DeviceKey{DeviceID: d.DeviceID, PublicKey: d.PublicKey, CreatedAt: parley.Time{Time: d.CreatedAt}})
	}
	return out, nil
}

// KeyInput is the body of POST /api/users/keys.
type KeyInput struct {
	DeviceID  string `json:"deviceId"`
	PublicKey string `json:"publicKey"`
	UserID    string `json:"userId"`
}

// SetKey adds or rotates a device key of the caller and sends key_changed
// {userId, deviceId} to their contacts. Errors: EINVALID, EFORBIDDEN.
func (s *Service) SetKey(ctx context.Context, caller *parley.Identity, in KeyInput) (*DeviceKey, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	if err := validateDevice(in.DeviceID, in.PublicKey, true); err != nil {
		return nil, err
	}
	now := s.now()
	d := &parley.Device{UserID: caller.UserID, DeviceID: in.DeviceID, PublicKey: in.PublicKey, CreatedAt: now, UpdatedAt: now}
	if _, err := s.store.Users.UpsertDevice(ctx, d); err != nil {
		return nil, err
	}
	s.keyChanged(ctx, caller.UserID, in.DeviceID)
	devices, err := s.store.Users.Devices(ctx, caller.UserID)
	if err != nil {
		return nil, err
	}
	for _, x := range devices {
		if x.DeviceID == in.DeviceID {
			return &DeviceKey{DeviceID: x.DeviceID, PublicKey: x.PublicKey, CreatedAt: parley.Time{Time: x.CreatedAt}}, nil
		}
	}
	return nil, fmt.Errorf("device %q vanished after its upsert", in.DeviceID)
}

func (s *Service) keyChanged(ctx context.Context, userID, deviceID string) {
	to, err := s.audience(ctx, userID)
	if err != nil {
		s.log.Error("key_changed audience", "err", err)
		return
	}
	s.publish(ctx, parley.EventKeyChanged, keyChangedEvent{UserID: userID, DeviceID: deviceID}, to)
}

// SettingsInput is the body of PUT /api/users/me/settings; absent fields keep their value.
type SettingsInput struct {
	LastSeenVisibility *string `json:"lastSeenVisibility"`
	ReadReceipts       *bool   `json:"readReceipts"`
	PushPreviews       *bool   `json:"pushPreviews"`
}

// UpdateSettings changes the caller's privacy settings. Errors: EINVALID.
func (s *Service) UpdateSettings(ctx context.Context, caller *parley.Identity, in SettingsInput) (*parley.Settings, error) {
	u, err := s.store.Users.UserByID(ctx, caller.UserID)
	if err != nil {
		return nil, err
	}
	set := u.Settings
	if v := in.LastSeenVisibility; v != nil {
		switch *v {
		case parley.VisibilityEveryone, parley.VisibilityContacts, parley.VisibilityNobody:
			set.LastSeenVisibility = *v
		default:
			return nil, parley.Errorf(parley.EINVALID, "lastSeenVisibility must be everyone, contacts or nobody")
		}
	}
	if in.ReadReceipts != nil {
		set.ReadReceipts = *in.ReadReceipts
	}
	if in.PushPreviews != nil {
		set.PushPreviews = *in.PushPreviews
	}
	u, err = s.store.Users.UpdateSettings(ctx, caller.UserID, set, s.now())
	if err != nil {
		return nil, err
	}
	return &u.Settings, nil
}

// audience returns who hears about a user's profile, keys and presence: the
// users who have them as a contact, their own contacts and their direct-chat
// peers, less anyone on either side of a block.
func (s *Service) audience(ctx context.Context, userID string) ([]string, error) {
	a, err := s.store.Social.ContactOf(ctx, userID)
	if err != nil {
		return nil, err
	}
	b, err := s.store.Social.Contacts(ctx, userID)
	if err != nil {
		return nil, err
	}
	peers, err := s.store.Conversations.DirectPeers(ctx, userID)
	if err != nil {
		return nil, err
	}
	blocked, err := s.store.Social.BlockedEitherWay(ctx, userID)
	if err != nil {
		return nil, err
	}
	skip := map[string]bool{userID: true}
	for _, id := range blocked {
		skip[id] = true
	}
	var out []string
	for _, id := range append(append(a, b...), peers...) {
		if !skip[id] {
			skip[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}
