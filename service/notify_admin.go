package service

// The admins' notification routes (API.md §10): a push to every device of
// a user, an e-mail to a user. Both go through the outboxes.

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/parley-chat/parley"
)

// AdminPushInput is the body of POST /api/notifications/push.
type AdminPushInput struct {
	UserID  string `json:"userId"`
	Message string `json:"message"` // shown as the notification's text; at most 1000 bytes
}

// AdminPushResult says what was queued.
type AdminPushResult struct {
	NotificationID string `json:"notificationId"`
	UserID         string `json:"userId"`
	Devices        int    `json:"devices"` // devices the push was queued for (0: the user registered none)
	Queued         bool   `json:"queued"`  // true: it waits in the outbox
}

// AdminEmailInput is the body of POST /api/notifications/email.
type AdminEmailInput struct {
	UserEmail string `json:"userEmail"` // the address of a registered user
	Subject   string `json:"subject"`   // one line, at most 200 bytes
	Body      string `json:"body"`      // plain text, at most 16 KiB
}

// AdminEmailResult says what was queued.
type AdminEmailResult struct {
	MailID string `json:"mailId"`
	Queued bool   `json:"queued"` // true: it waits in the outbox
}

// AdminPush queues a push with message for every device of userId
// (admins). Errors: EFORBIDDEN (not an admin), EINVALID, ENOTFOUND (no
// such user).
func (s *Service) AdminPush(ctx context.Context, caller *parley.Identity, in AdminPushInput) (*AdminPushResult, error) {
	if !s.IsAdmin(ctx, caller) {
		return nil, parley.Errorf(parley.EFORBIDDEN, "only admins may send notifications")
	}
	if err := required("userId", in.UserID); err != nil {
		return nil, err
	}
	if err := maxLen("userId", in.UserID, maxIDLen); err != nil {
		return nil, err
	}
	in.Message = strings.TrimSpace(in.Message)
	if err := required("message", in.Message); err != nil {
		return nil, err
	}
	if err := plainText("message", in.Message, parley.MaxAdminPushLen, true); err != nil {
		return nil, err
	}
	if _, err := s.store.Users.UserByID(ctx, in.UserID); err != nil {
		return nil, err
	}
	id := parley.NewID("ntf")
	n, err := s.store.Notify.QueueUserPush(ctx, in.UserID, &parley.Push{Kind: parley.PushAdmin, Topic: pushTopic("a", id),
		NotificationID: id, Data: parley.PushData{Message: in.Message}, Count: 1, NextAt: s.now()})
	if err != nil {
		return nil, err
	}
	if r := s.runner.Load(); r != nil && n > 0 {
		r.Kick(JobPushOutbox)
	}
	s.log.Info("admin push queued", "admin", caller.UserID, "user", in.UserID, "devices", n, "notification", id)
	return &AdminPushResult{NotificationID: id, UserID: in.UserID, Devices: n, Queued: true}, nil
}

// AdminEmail queues an e-mail to the user whose address is userEmail
// (admins). Errors: EFORBIDDEN (not an admin), EINVALID, ENOTFOUND (no
// user has the address).
func (s *Service) AdminEmail(ctx context.Context, caller *parley.Identity, in AdminEmailInput) (*AdminEmailResult, error) {
	if !s.IsAdmin(ctx, caller) {
		return nil, parley.Errorf(parley.EFORBIDDEN, "only admins may send e-mail")
	}
	in.UserEmail = strings.TrimSpace(in.UserEmail)
	if err := required("userEmail", in.UserEmail); err != nil {
		return nil, err
	}
	if err := validateEmail(in.UserEmail); err != nil {
		return nil, parley.Errorf(parley.EINVALID, "userEmail is not a valid address")
	}
	in.Subject = strings.TrimSpace(in.Subject)
	if err := required("subject", in.Subject); err != nil {
		return nil, err
	}
	if err := plainText("subject", in.Subject, parley.MaxMailSubjectLen, false); err != nil {
		return nil, err
	}
	if err := required("body", in.Body); err != nil {
		return nil, err
	}
	if err := plainText("body", in.Body, parley.MaxMailBodyLen, true); err != nil {
		return nil, err
	}
	u, err := s.store.Users.UserByEmail(ctx, in.UserEmail)
	if err != nil {
		if parley.ErrorCode(err) == parley.ENOTFOUND {
			return nil, parley.Errorf(parley.ENOTFOUND, "no user has this e-mail address")
		}
		return nil, err
	}
	m := s.newMail(parley.MailAdmin, u.Email, in.Subject, in.Body)
	if err := s.queueMail(ctx, m); err != nil {
		return nil, err
	}
	s.log.Info("admin e-mail queued", "admin", caller.UserID, "user", u.ID, "mail", m.ID)
	return &AdminEmailResult{MailID: m.ID, Queued: true}, nil
}

// plainText checks that v is valid UTF-8 of at most n bytes without
// control characters (line breaks and tabs allowed when multiline).
func plainText(field, v string, n int, multiline bool) error {
	if len(v) > n {
		return parley.Errorf(parley.EINVALID, "%s must be at most %d bytes", field, n)
	}
	if !utf8.ValidString(v) {
		return parley.Errorf(parley.EINVALID, "%s must be UTF-8 text", field)
	}
	for _, r := range v {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\r' || r == '\t')) {
			return parley.Errorf(parley.EINVALID, "%s must not hold control characters", field)
		}
	}
	return nil
}
