package parley

import (
	"context"
	"time"
)

// Limits of user input, from API.md §1.
const (
	MaxUsernameLen  = 32
	MinUsernameLen  = 3
	MinPasswordLen  = 8
	MaxPasswordLen  = 1024 // bounds the hashing work an attacker can ask for
	MaxNameLen      = 100
	MaxAboutLen     = 500
	MaxAvatarLen    = 2048 // a URL or a file id, never image bytes
	MaxEmailLen     = 254
	MaxDeviceIDLen  = 128
	MaxPublicKeyLen = 8192
)

// Last-seen visibility settings.
const (
	VisibilityEveryone = "everyone"
	VisibilityContacts = "contacts"
	VisibilityNobody   = "nobody"
)

// User is an account. PasswordHash is never serialised to clients.
type User struct {
	ID           string
	Username     string
	Email        string
	PasswordHash string
	Name         string
	About        string
	Avatar       string
	Settings     Settings
	LastSeenAt   time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Settings are a user's privacy and notification preferences.
type Settings struct {
	LastSeenVisibility string `json:"lastSeenVisibility"`
	ReadReceipts       bool   `json:"readReceipts"`
	PushPreviews       bool   `json:"pushPreviews"`
}

// DefaultSettings are the settings of a new account.
func DefaultSettings() Settings {
	return Settings{LastSeenVisibility: VisibilityEveryone, ReadReceipts: true, PushPreviews: true}
}

// Device is one of a user's devices with its public key (for E2E encryption).
type Device struct {
	UserID    string
	DeviceID  string
	PublicKey string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Session is a signed-in device. Only the SHA-256 of the bearer token is stored.
type Session struct {
	TokenHash string
	UserID    string
	DeviceID  string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Identity is the authenticated caller of a request: one user and one device
// session. It comes only from the bearer token.
type Identity struct {
	UserID    string
	DeviceID  string
	TokenHash string
	ExpiresAt time.Time
}

// PasswordReset is a pending single-use password reset token (stored hashed).
type PasswordReset struct {
	TokenHash string
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// ProfileUpdate holds the profile fields to change; nil fields stay as they are.
type ProfileUpdate struct {
	Name   *string
	About  *string
	Avatar *string
}

// UserStore persists accounts and devices.
type UserStore interface {
	// CreateUser stores u with its first device. EUSERNAMETAKEN when the
	// username is taken (case-insensitively).
	CreateUser(ctx context.Context, u *User, d *Device) error
	// UserByID returns the user or ENOTFOUND.
	UserByID(ctx context.Context, id string) (*User, error)
	// UserByUsername finds a user case-insensitively, or ENOTFOUND.
	UserByUsername(ctx context.Context, username string) (*User, error)
	// UserByEmail finds a user by e-mail case-insensitively, or ENOTFOUND.
	UserByEmail(ctx context.Context, email string) (*User, error)
	// UsersByIDs returns the users that exist among ids, in any order.
	UsersByIDs(ctx context.Context, ids []string) ([]*User, error)
	// SearchUsers returns up to limit users whose username or name starts
	// with prefix (case-insensitively), ordered by username.
	SearchUsers(ctx context.Context, prefix string, limit int) ([]*User, error)
	// UpdateProfile applies upd and returns the updated user, or ENOTFOUND.
	UpdateProfile(ctx context.Context, id string, upd ProfileUpdate, now time.Time) (*User, error)
	// UpdateSettings replaces the user's settings, or ENOTFOUND.
	UpdateSettings(ctx context.Context, id string, s Settings, now time.Time) (*User, error)
	// SetLastSeen records when the user was last online.
	SetLastSeen(ctx context.Context, id string, t time.Time) error
	// Devices lists the user's devices, oldest first.
	Devices(ctx context.Context, userID string) ([]*Device, error)
	// UpsertDevice adds the device or replaces its public key; created tells which.
	UpsertDevice(ctx context.Context, d *Device) (created bool, err error)
}

// SessionStore persists sign-in sessions and password-reset tokens.
type SessionStore interface {
	// CreateSession stores a new session.
	CreateSession(ctx context.Context, s *Session) error
	// SessionByTokenHash returns a live (unrevoked) session, or ENOTFOUND.
	// Expiry is checked by the caller.
	SessionByTokenHash(ctx context.Context, hash string) (*Session, error)
	// RevokeSession revokes one session, and removes the push devices it
	// registered; revoking twice is not an error.
	RevokeSession(ctx context.Context, hash string) error
	// CreatePasswordReset stores a reset token.
	CreatePasswordReset(ctx context.Context, r *PasswordReset) error
	// ResetPassword atomically consumes an unexpired, unused reset token, sets
	// the user's password hash and revokes every session of the user (and
	// removes their push devices). It
	// returns the user id, or ENOTFOUND when the token is unknown, used or expired.
	ResetPassword(ctx context.Context, tokenHash, passwordHash string, now time.Time) (string, error)
}

// SocialStore persists contacts, blocks and mutes between users.
type SocialStore interface {
	// AddContact adds contactID to userID's contacts; adding twice is fine.
	AddContact(ctx context.Context, userID, contactID string, now time.Time) error
	// RemoveContact removes a contact; removing a non-contact is fine.
	RemoveContact(ctx context.Context, userID, contactID string) error
	// Contacts returns the ids of userID's contacts, in the order added.
	Contacts(ctx context.Context, userID string) ([]string, error)
	// ContactOf returns the ids of users who have userID as a contact.
	ContactOf(ctx context.Context, userID string) ([]string, error)
	// Block makes userID block blockedID; blocking twice is fine.
	Block(ctx context.Context, userID, blockedID string, now time.Time) error
	// Unblock removes a block; unblocking a non-blocked user is fine.
	Unblock(ctx context.Context, userID, blockedID string) error
	// Blocked lists the ids userID blocked, in the order blocked.
	Blocked(ctx context.Context, userID string) ([]string, error)
	// BlockedEitherWay lists the users userID blocked or was blocked by.
	BlockedEitherWay(ctx context.Context, userID string) ([]string, error)
	// BlockedEither reports whether a blocked b or b blocked a.
	BlockedEither(ctx context.Context, a, b string) (bool, error)
	// Mute mutes mutedID for userID until the given time (zero: until unmuted).
	Mute(ctx context.Context, userID, mutedID string, until time.Time, now time.Time) error
	// Unmute removes a mute.
	Unmute(ctx context.Context, userID, mutedID string) error
	// IsMuted reports whether userID has an unexpired mute on mutedID at now.
	IsMuted(ctx context.Context, userID, mutedID string, now time.Time) (bool, error)
	// MutedAmong returns which of others userID has muted at now.
	MutedAmong(ctx context.Context, userID string, others []string, now time.Time) (map[string]bool, error)
	// BlockedAmong returns which of others blocked userID or were blocked by them.
	BlockedAmong(ctx context.Context, userID string, others []string) (map[string]bool, error)
	// ContactOfAmong returns which of owners have contactID among their contacts.
	ContactOfAmong(ctx context.Context, contactID string, owners []string) (map[string]bool, error)
}
