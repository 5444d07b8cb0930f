package service

import (
	"context"
	"time"

	"github.com/parley-chat/parley"
)

// Contact is one entry of the caller's contact list, with presence.
type Contact struct {
	UserID   string      `json:"userId"`
	Username string      `json:"username"`
	Name     string      `json:"name"`
	About    string      `json:"about"`
	Avatar   string      `json:"avatar"`
	Online   bool        `json:"online"`
	LastSeen parley.Time `json:"lastSeen"`
}

// otherUser checks that id names another existing user. field names the
// input for the error message. Errors: EINVALID, ENOTFOUND.
func (s *Service) otherUser(ctx context.Context, caller *parley.Identity, id, field string) (*parley.User, error) {
	if err := required(field, id); err != nil {
		return nil, err
	}
	if id == caller.UserID {
		return nil, parley.Errorf(parley.EINVALID, "%s must not be yourself", field)
	}
	return s.store.Users.UserByID(ctx, id)
}

// AddContact adds a user to the caller's contacts. Errors: EINVALID, ENOTFOUND.
func (s *Service) AddContact(ctx context.Context, caller *parley.Identity, contactID string) (*Contact, error) {
	u, err := s.otherUser(ctx, caller, contactID, "contactId")
	if err != nil {
		return nil, err
	}
	if err := s.store.Social.AddContact(ctx, caller.UserID, u.ID, s.now()); err != nil {
		return nil, err
	}
	return s.contact(ctx, caller, u)
}

// RemoveContact removes a user from the caller's contacts. Errors: ENOTFOUND
// when they were not a contact.
func (s *Service) RemoveContact(ctx context.Context, caller *parley.Identity, contactID string) error {
	ids, err := s.store.Social.Contacts(ctx, caller.UserID)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if id == contactID {
			return s.store.Social.RemoveContact(ctx, caller.UserID, contactID)
		}
	}
	return parley.Errorf(parley.ENOTFOUND, "contact not found")
}

// Contacts lists the caller's contacts with their presence.
func (s *Service) Contacts(ctx context.Context, caller *parley.Identity) ([]*Contact, error) {
	ids, err := s.store.Social.Contacts(ctx, caller.UserID)
	if err != nil {
		return nil, err
	}
	byID, err := s.usersByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]*Contact, 0, len(ids))
	for _, id := range ids {
		if u := byID[id]; u != nil {
			c, err := s.contact(ctx, caller, u)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	return out, nil
}

func (s *Service) contact(ctx context.Context, caller *parley.Identity, u *parley.User) (*Contact, error) {
	p, err := s.presenceOf(ctx, caller, u)
	if err != nil {
		return nil, err
	}
	return &Contact{UserID: u.ID, Username: u.Username, Name: u.Name, About: u.About, Avatar: u.Avatar,
		Online: p.Online, LastSeen: p.LastSeen}, nil
}

// BlockInput is the body of POST /api/users/block and /unblock.
type BlockInput struct {
	UserID        string `json:"userId"`
	BlockedUserID string `json:"blockedUserId"`
}

// BlockResult is the answer to block and unblock.
type BlockResult struct {
	UserID        string `json:"userId"`
	BlockedUserID string `json:"blockedUserId"`
	Blocked       bool   `json:"blocked"`
}

// Block stops messages, calls, typing and presence between the caller and
// another user, both ways. Errors: EFORBIDDEN (spoofed userId), EINVALID, ENOTFOUND.
func (s *Service) Block(ctx context.Context, caller *parley.Identity, in BlockInput) (*BlockResult, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	u, err := s.otherUser(ctx, caller, in.BlockedUserID, "blockedUserId")
	if err != nil {
		return nil, err
	}
	if err := s.store.Social.Block(ctx, caller.UserID, u.ID, s.now()); err != nil {
		return nil, err
	}
	return &BlockResult{UserID: caller.UserID, BlockedUserID: u.ID, Blocked: true}, nil
}

// Unblock lifts the caller's block of another user. Errors as Block.
func (s *Service) Unblock(ctx context.Context, caller *parley.Identity, in BlockInput) (*BlockResult, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	u, err := s.otherUser(ctx, caller, in.BlockedUserID, "blockedUserId")
	if err != nil {
		return nil, err
	}
	if err := s.store.Social.Unblock(ctx, caller.UserID, u.ID); err != nil {
		return nil, err
	}
	return &BlockResult{UserID: caller.UserID, BlockedUserID: u.ID, Blocked: false}, nil
}

// Blocked lists the ids of the users the caller blocked.
func (s *Service) Blocked(ctx context.Context, caller *parley.Identity) ([]string, error) {
	return s.store.Social.Blocked(ctx, caller.UserID)
}

// MuteInput is the body of POST /api/users/mute and /unmute.
type MuteInput struct {
	UserID      string `json:"userId"`
	MutedUserID string `json:"mutedUserId"`
	Duration    *int64 `json:"duration"` // seconds; nil: until unmuted
}

// MuteResult is the answer to mute: expiresIn echoes the duration (null: until unmuted).
type MuteResult struct {
	MutedUserID string `json:"mutedUserId"`
	ExpiresIn   *int64 `json:"expiresIn"`
}

// MaxMuteSeconds bounds a mute's duration (about 10 years).
const MaxMuteSeconds = 10 * 365 * 24 * 3600

// Mute stops push notifications for a user's messages, for duration
// seconds or until unmuted. Errors: EFORBIDDEN, EINVALID, ENOTFOUND.
func (s *Service) Mute(ctx context.Context, caller *parley.Identity, in MuteInput) (*MuteResult, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	u, err := s.otherUser(ctx, caller, in.MutedUserID, "mutedUserId")
	if err != nil {
		return nil, err
	}
	now := s.now()
	var until time.Time
	if in.Duration != nil {
		if *in.Duration <= 0 || *in.Duration > MaxMuteSeconds {
			return nil, parley.Errorf(parley.EINVALID, "duration must be between 1 and %d seconds", MaxMuteSeconds)
		}
		until = now.Add(time.Duration(*in.Duration) * time.Second)
	}
	if err := s.store.Social.Mute(ctx, caller.UserID, u.ID, until, now); err != nil {
		return nil, err
	}
	return &MuteResult{MutedUserID: u.ID, ExpiresIn: in.Duration}, nil
}

// Unmute lifts a mute. Errors: EFORBIDDEN, EINVALID, ENOTFOUND.
func (s *Service) Unmute(ctx context.Context, caller *parley.Identity, in MuteInput) (*MuteResult, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	u, err := s.otherUser(ctx, caller, in.MutedUserID, "mutedUserId")
	if err != nil {
		return nil, err
	}
	if err := s.store.Social.Unmute(ctx, caller.UserID, u.ID); err != nil {
		return nil, err
	}
	return &MuteResult{MutedUserID: u.ID}, nil
}
