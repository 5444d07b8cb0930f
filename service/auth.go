package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"

	"github.com/parley-chat/parley"
)

// tokenPrefix marks Parley bearer tokens so leaked ones are easy to spot.
const tokenPrefix = "prl_"

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// HashToken returns the stored form of a bearer or reset token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// RegisterInput is the body of POST /api/users/register.
type RegisterInput struct {
	Username  string `json:"username"`
	Password  string `json:"password"`
	DeviceID  string `json:"deviceId"`
	PublicKey string `json:"publicKey"`
	Email     string `json:"email"`
	Name      string `json:"name"`
}

// RegisterResult is the answer to a registration.
type RegisterResult struct {
	UserID    string `json:"userId"`
	Username  string `json:"username"`
	PublicKey string `json:"publicKey"`
	DeviceID  string `json:"deviceId"`
	Token     string `json:"token"`
}

// Register creates an account with its first device and signs that device
// in. Errors: EINVALID for a bad field, EUSERNAMETAKEN, EEMAILTAKEN (an
// address is unique whatever its case).
func (s *Service) Register(ctx context.Context, in RegisterInput) (*RegisterResult, error) {
	in.Email = strings.TrimSpace(in.Email)
	in.Name = strings.TrimSpace(in.Name)
	if err := validateUsername(in.Username); err != nil {
		return nil, err
	}
	if err := validatePassword(in.Password, "password"); err != nil {
		return nil, err
	}
	if err := validateDevice(in.DeviceID, in.PublicKey, true); err != nil {
		return nil, err
	}
	if err := validateEmail(in.Email); err != nil {
		return nil, err
	}
	if err := maxLen("name", in.Name, parley.MaxNameLen); err != nil {
		return nil, err
	}
	if _, err := s.store.Users.UserByUsername(ctx, in.Username); err == nil {
		return nil, parley.Errorf(parley.EUSERNAMETAKEN, "username %q is taken", in.Username)
	}
	if in.Email != "" {
		// Also refused by the store's unique index, which settles races.
		if _, err := s.store.Users.UserByEmail(ctx, in.Email); err == nil {
			return nil, errEmailTaken
		}
	}
	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return nil, err
	}
	now := s.now()
	u := &parley.User{ID: parley.NewID("usr"), Username: in.Username, Email: in.Email, PasswordHash: hash,
		Name: in.Name, Settings: parley.DefaultSettings(), CreatedAt: now, UpdatedAt: now}
	d := &parley.Device{UserID: u.ID, DeviceID: in.DeviceID, PublicKey: in.PublicKey, CreatedAt: now, UpdatedAt: now}
	if err := s.store.Users.CreateUser(ctx, u, d); err != nil {
		return nil, err
	}
	token, _, err := s.createSession(ctx, u.ID, d.DeviceID)
	if err != nil {
		return nil, err
	}
	s.log.Info("user registered", "user", u.ID)
	return &RegisterResult{UserID: u.ID, Username: u.Username, PublicKey: d.PublicKey, DeviceID: d.DeviceID, Token: token}, nil
}

func (s *Service) createSession(ctx context.Context, userID, deviceID string) (string, time.Time, error) {
	token := newToken()
	now := s.now()
	sess := &parley.Session{TokenHash: HashToken(token), UserID: userID, DeviceID: deviceID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.TokenTTL)}
	if err := s.store.Sessions.CreateSession(ctx, sess); err != nil {
		return "", time.Time{}, err
	}
	return token, sess.ExpiresAt, nil
}

// LoginInput is the body of POST /api/auth/login.
type LoginInput struct {
	Username  string `json:"username"`
	Password  string `json:"password"`
	DeviceID  string `json:"deviceId"`
	PublicKey string `json:"publicKey"`
	// ClientAddr is the client's IP address as the transport sees it
	// (behind trusted proxies, the forwarded one), named in the new-device
	// e-mail; never from the body.
	ClientAddr string `json:"-"`
}

// LoginResult is the answer to a login.
type LoginResult struct {
	Token     string      `json:"token"`
	UserID    string      `json:"userId"`
	DeviceID  string      `json:"deviceId"`
	ExpiresAt parley.Time `json:"expiresAt"`
}

// Login checks the password and opens a session for the device (the first
// device when none is named). A new deviceId with a publicKey adds that
// device and, in the same transaction, queues a sign-in alert e-mail
// (device, time, where from) when the user has an address. Errors: EINVALIDCREDENTIALS, the same
// for an unknown user and a wrong password; EINVALID.
func (s *Service) Login(ctx context.Context, in LoginInput) (*LoginResult, error) {
	if in.Username == "" || in.Password == "" {
		return nil, parley.Errorf(parley.EINVALID, "username and password are required")
	}
	if len(in.Username) > parley.MaxUsernameLen || len(in.Password) > parley.MaxPasswordLen {
		return nil, parley.Errorf(parley.EINVALIDCREDENTIALS, "invalid username or password")
	}
	if err := validateDevice(in.DeviceID, in.PublicKey, false); err != nil {
		return nil, err
	}
	u, err := s.store.Users.UserByUsername(ctx, in.Username)
	if err != nil && parley.ErrorCode(err) != parley.ENOTFOUND {
		return nil, err
	}
	encoded := ""
	if u != nil {
		encoded = u.PasswordHash
	}
	ok, err := s.hasher.Verify(ctx, encoded, in.Password)
	if err != nil {
		return nil, err
	}
	if !ok || u == nil {
		return nil, parley.Errorf(parley.EINVALIDCREDENTIALS, "invalid username or password")
	}
	devices, err := s.store.Users.Devices(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	deviceID := in.DeviceID
	if deviceID == "" && len(devices) > 0 {
		deviceID = devices[0].DeviceID
	}
	known := false
	for _, d := range devices {
		known = known || d.DeviceID == deviceID
	}
	if !known {
		if in.PublicKey == "" {
			return nil, parley.Errorf(parley.EINVALID, "publicKey is required to sign in from a new device")
		}
		now := s.now()
		var alert *parley.OutboxMail
		if u.Email != "" {
			alert = s.signInAlert(u, deviceID, in.ClientAddr, now)
		}
		created, err := s.store.Mail.AddDevice(ctx, &parley.Device{UserID: u.ID, DeviceID: deviceID, PublicKey: in.PublicKey, CreatedAt: now, UpdatedAt: now}, alert)
		if err != nil {
			return nil, err
		}
		s.keyChanged(ctx, u.ID, deviceID)
		if created && alert != nil {
			s.kickMail()
		}
	}
	token, expires, err := s.createSession(ctx, u.ID, deviceID)
	if err != nil {
		return nil, err
	}
	return &LoginResult{Token: token, UserID: u.ID, DeviceID: deviceID, ExpiresAt: parley.Time{Time: expires}}, nil
}

// Authenticate resolves a bearer token to the caller's identity.
// Errors: EUNAUTHORIZED for a missing, unknown, revoked or expired token.
func (s *Service) Authenticate(ctx context.Context, token string) (*parley.Identity, error) {
	if token == "" || len(token) > 256 {
		return nil, parley.Errorf(parley.EUNAUTHORIZED, "missing or invalid token")
	}
	return s.authenticateHash(ctx, HashToken(token))
}

// Logout revokes the caller's token at once.
func (s *Service) Logout(ctx context.Context, caller *parley.Identity) error {
	if err := s.store.Sessions.RevokeSession(ctx, caller.TokenHash); err != nil {
		return err
	}
	s.publish(ctx, EventSessionRevoked, sessionRevoked{TokenHash: caller.TokenHash}, []string{caller.UserID})
	return nil
}

// EventSessionRevoked tells transports on every node to close the sockets
// opened with a revoked token. It is internal: transports never forward it.
const EventSessionRevoked = "_session_revoked"

type sessionRevoked struct {
	TokenHash string `json:"tokenHash"`
	All       bool   `json:"all,omitempty"`
}

// errEmailTaken refuses an address another account has; it says nothing
// about which account.
var errEmailTaken = parley.Errorf(parley.EEMAILTAKEN, "this e-mail address is already used by another account")

// ForgotPassword queues a password-reset e-mail for email and answers at
// once: the lookup of the address, the single-use token and the e-mail
// come later, in the mail outbox job (mail.go), so neither the answer nor
// its timing tells whether the address is registered, and a dead SMTP
// server delays the mail without failing the request. Errors: EINVALID.
func (s *Service) ForgotPassword(ctx context.Context, email string) error {
	email = strings.TrimSpace(email)
	if email == "" {
		return parley.Errorf(parley.EINVALID, "email is required")
	}
	if err := validateEmail(email); err != nil {
		return err
	}
	return s.queueMail(ctx, s.newMail(parley.MailReset, email, "", ""))
}

// ResetPassword sets a new password with a reset token, which it consumes,
// and revokes every session of the user. Errors: EINVALID, ENOTFOUND for an
// unknown, used or expired token.
func (s *Service) ResetPassword(ctx context.Context, token, newPassword string) error {
	if token == "" || len(token) > 256 {
		return parley.Errorf(parley.EINVALID, "token is required")
	}
	if err := validatePassword(newPassword, "newPassword"); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, newPassword)
	if err != nil {
		return err
	}
	userID, err := s.store.Sessions.ResetPassword(ctx, HashToken(token), hash, s.now())
	if err != nil {
		return err
	}
	s.publish(ctx, EventSessionRevoked, sessionRevoked{All: true}, []string{userID})
	s.log.Info("password reset", "user", userID)
	return nil
}
