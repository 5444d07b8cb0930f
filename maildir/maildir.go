// Package maildir is the default parley.Mailer when no SMTP server is
// configured: it writes each e-mail as an RFC 5322 .eml file into a folder
// (by default ./data/mail), where an operator can read or forward it. The
// log records that a mail was written, never its body.
package maildir

import (
	"context"
	"fmt"
	"log/slog"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/parley-chat/parley"
)

// Sender writes e-mails into Dir.
type Sender struct {
	Dir    string
	From   string
	Logger *slog.Logger
}

// Send implements parley.Mailer: it writes m to a new file in Dir.
func (s *Sender) Send(_ context.Context, m *parley.Mail) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	now := time.Now().UTC()
	id := parley.NewID("mail")
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@parley>\r\n",
		s.From, oneLine(m.To), mime.QEncoding.Encode("utf-8", oneLine(m.Subject)), now.Format(time.RFC1123Z), id)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString(strings.ReplaceAll(m.Body, "\n", "\r\n"))
	name := filepath.Join(s.Dir, now.Format("20060102T150405")+"-"+id+".eml")
	if err := os.WriteFile(name, []byte(b.String()), 0o600); err != nil {
		return err
	}
	if s.Logger != nil {
		s.Logger.Info("e-mail written to mail folder (no SMTP configured)", "file", name)
	}
	return nil
}

// oneLine drops line breaks so a header value cannot inject other headers.
func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}
