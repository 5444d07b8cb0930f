// Package smtpmail sends Parley's e-mail (password resets, sign-in
// alerts) through an SMTP server with github.com/wneessen/go-mail. It
// replaces the default mail folder (package maildir) when --smtp-url is set.
package smtpmail

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/parley-chat/parley"
)

// Sender implements parley.Mailer over SMTP.
type Sender struct {
	from string
	opts []mail.Option
	host string
}

// New parses an SMTP URL and returns a Sender. The URL is
// smtp://[user:password@]host[:port] (default port 587, STARTTLS
// required) or smtps://... (TLS from the start, default port 465);
// ?starttls=optional uses STARTTLS only when the server offers it and
// ?starttls=none never does (a relay on the same host). With a user, the
// server's preferred authentication is used.
func New(rawURL, from string) (*Sender, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" || (u.Scheme != "smtp" && u.Scheme != "smtps") {
		return nil, errors.New("smtp: the URL must be smtp://[user:password@]host[:port] or smtps://…")
	}
	s := &Sender{from: from, host: u.Hostname(), opts: []mail.Option{mail.WithTimeout(30 * time.Second)}}
	port := 587
	if u.Scheme == "smtps" {
		port = 465
		s.opts = append(s.opts, mail.WithSSL())
	} else {
		switch u.Query().Get("starttls") {
		case "", "required":
			s.opts = append(s.opts, mail.WithTLSPolicy(mail.TLSMandatory))
		case "optional":
			s.opts = append(s.opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
		case "none":
			s.opts = append(s.opts, mail.WithTLSPolicy(mail.NoTLS))
		default:
			return nil, errors.New("smtp: starttls must be required, optional or none")
		}
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port <= 0 || port > 65535 {
			return nil, errors.New("smtp: bad port")
		}
	}
	s.opts = append(s.opts, mail.WithPort(port))
	if u.User != nil && u.User.Username() != "" {
		pw, _ := u.User.Password()
		s.opts = append(s.opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(u.User.Username()), mail.WithPassword(pw))
	}
	return s, nil
}

// Send implements parley.Mailer. Errors name the step that failed, never
// the message or the credentials.
func (s *Sender) Send(ctx context.Context, m *parley.Mail) error {
	msg := mail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return fmt.Errorf("smtp: from address: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return errors.New("smtp: the recipient's address is not valid")
	}
	msg.Subject(m.Subject)
	msg.SetBodyString(mail.TypeTextPlain, m.Body)
	c, err := mail.NewClient(s.host, s.opts...)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("smtp: send: %w", err)
	}
	return nil
}
