package service

// E-mail through the outbox: password resets, new-device sign-in alerts and
// admins' e-mails are rows of the mail outbox, written in the transaction
// of what caused them (the reset request, the device's creation), and a
// leased job sends them through the Mailer (SMTP, or the .eml folder). A
// failed send is retried with exponential backoff kept in the database, so
// a dead SMTP server delays mail, across restarts and nodes, and never
// holds up a request. A node dying after the SMTP server took a mail but
// before the row is removed makes the next holder send it again: at least
// once, at most twice per node that dies mid-send.
//
// A password reset's row holds only the address: the job looks the
// account up and makes the token when it sends the mail, so no token is
// ever stored in clear and its hour of validity starts when the mail goes
// out, however long the SMTP server was down.

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/jobs"
)

// JobMailOutbox is the leased background job that sends queued e-mail.
const JobMailOutbox = "mail-outbox"

const (
	mailBatch       = 20               // e-mails sent per step
	maxMailAttempts = 60               // about two and a half days of retries
	maxMailBackoff  = time.Hour        // the longest wait between attempts
	mailSendTimeout = 30 * time.Second // one SMTP conversation
	mailClaim       = 2 * time.Minute  // how long a node sending an e-mail keeps others off it
)

// addMailJobs registers the mail outbox job.
func (s *Service) addMailJobs(r *jobs.Runner) {
	r.Add(jobs.Job{Name: JobMailOutbox, Every: s.cfg.NotifyTick, Leased: true, Timeout: 5 * time.Minute, Run: s.sendDueMail})
}

// queueMail writes m into the outbox and asks the job to run soon.
func (s *Service) queueMail(ctx context.Context, m *parley.OutboxMail) error {
	if err := s.store.Mail.QueueMail(ctx, m); err != nil {
		return err
	}
	s.kickMail()
	return nil
}

func (s *Service) kickMail() {
	if r := s.runner.Load(); r != nil {
		r.Kick(JobMailOutbox)
	}
}

// newMail returns an outbox e-mail due now.
func (s *Service) newMail(kind, to, subject, body string) *parley.OutboxMail {
	now := s.now()
	return &parley.OutboxMail{ID: parley.NewID("mail"), Kind: kind, To: to, Subject: subject, Body: body, NextAt: now, CreatedAt: now}
}

// sendDueMail sends the e-mails that are due; it returns only store errors.
func (s *Service) sendDueMail(ctx context.Context) error {
	for {
		due, err := s.store.Mail.DueMail(ctx, s.now(), mailBatch)
		if err != nil || len(due) == 0 {
			return err
		}
		for _, m := range due {
			if err := ctx.Err(); err != nil {
				return err // stopping: the rest is left to the next holder
			}
			if err := s.sendOutboxMail(ctx, m); err != nil {
				return err
			}
		}
		if len(due) < mailBatch {
			return nil
		}
	}
}

// sendOutboxMail makes and sends one e-mail and records the outcome. Logs
// name the kind and the attempt, never the address, subject or body.
func (s *Service) sendOutboxMail(ctx context.Context, m *parley.OutboxMail) error {
	log := s.log.With("mail", m.ID, "kind", m.Kind)
	// The claim keeps other nodes off the e-mail while it is made and
	// sent; if this node dies, it is sent again once the claim ends.
	now := s.now()
	if ok, err := s.store.Mail.ClaimMail(ctx, m.ID, now, now.Add(mailClaim)); err != nil || !ok {
		return err
	}
	mail := &parley.Mail{To: m.To, Subject: m.Subject, Body: m.Body}
	if m.Kind == parley.MailReset {
		var err error
		if mail, err = s.resetMail(ctx, m.To); err != nil {
			return err
		}
		if mail == nil { // no account has this address: nothing to send
			return s.store.Mail.MailDone(ctx, m.ID)
		}
	}
	// The SMTP conversation in flight and the record of its outcome
	// outlive the node's stop (ctx), as the push outbox's do: an e-mail
	// the server took must not be left claimed and unrecorded, to be sent
	// again by the next node. Both are bounded (mailSendTimeout is well
	// inside mailClaim), so a stop waits at most that long.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mailSendTimeout)
	err := s.mailer.Send(sctx, mail)
	cancel()
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.StoreTimeout)
	defer rcancel()
	switch {
	case err == nil:
		log.Info("e-mail sent", "attempt", m.Attempts+1)
		return s.store.Mail.MailDone(rctx, m.ID)
	case m.Attempts+1 >= maxMailAttempts:
		log.Error("e-mail dropped after its last attempt", "attempts", m.Attempts+1, "err", err)
		return s.store.Mail.MailDone(rctx, m.ID)
	default:
		wait := min(time.Second<<min(m.Attempts, 20), maxMailBackoff)
		log.Warn("e-mail failed; retrying", "attempt", m.Attempts+1, "retryIn", wait.String(), "err", err)
		return s.store.Mail.MailFailed(rctx, m.ID, s.now().Add(wait))
	}
}

// resetMail looks email up and, when it is a user's, records a reset token
// and returns the e-mail carrying it; nil when no user has the address.
func (s *Service) resetMail(ctx context.Context, email string) (*parley.Mail, error) {
	u, err := s.store.Users.UserByEmail(ctx, email)
	if parley.ErrorCode(err) == parley.ENOTFOUND {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	token := newToken()
	now := s.now()
	if err := s.store.Sessions.CreatePasswordReset(ctx, &parley.PasswordReset{TokenHash: HashToken(token), UserID: u.ID,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.ResetTokenTTL)}); err != nil {
		return nil, err
	}
	return &parley.Mail{To: u.Email, Subject: "Reset your Parley password",
		Body: fmt.Sprintf("Hello %s,\n\nSomeone asked to reset the password of your Parley account.\n"+
			"Your reset token (valid for %s, usable once):\n\n    %s\n\n"+
			"Send it with your new password to POST /api/auth/password/reset. If you did not ask, ignore this e-mail.\n",
			u.Username, s.cfg.ResetTokenTTL, token)}, nil
}

// signInAlert is the e-mail telling u that deviceID signed in from addr.
func (s *Service) signInAlert(u *parley.User, deviceID, addr string, at time.Time) *parley.OutboxMail {
	return s.newMail(parley.MailSignIn, u.Email, "New sign-in to your Parley account",
		fmt.Sprintf("Hello %s,\n\nYour Parley account was just signed in from a new device.\n\n"+
			"    Device:   %s\n    Time:     %s\n    From:     %s\n\n"+
			"If this was not you, reset your password now: that signs every device out.\n",
			u.Username, deviceID, parley.FormatTime(at), placeOf(addr)))
}

// placeOf describes where a client address is, as well as the server can
// tell without a location database: the local network, or the address.
func placeOf(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return "an unknown address"
	}
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "this server (" + a.String() + ")"
	case a.IsPrivate() || a.IsLinkLocalUnicast():
		return "the local network (" + a.String() + ")"
	default:
		return "the internet address " + a.String()
	}
}
