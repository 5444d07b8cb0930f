package service_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/jobs"
	"github.com/parley-chat/parley/localbus"
	"github.com/parley-chat/parley/service"
	"github.com/parley-chat/parley/sqlstore"
)

// slowLookup holds every e-mail lookup until released.
type slowLookup struct {
	*sqlstore.DB
	release chan struct{}
}

func (s *slowLookup) UserByEmail(ctx context.Context, email string) (*parley.User, error) {
	<-s.release
	return s.DB.UserByEmail(ctx, email)
}

type chanMailer chan *parley.Mail

func (c chanMailer) Send(_ context.Context, m *parley.Mail) error { c <- m; return nil }

// TestForgotPasswordAnswersFirst (issue #12 defect 9): the answer to a
// password-reset request does not wait for the address's lookup, so known
// and unknown addresses answer alike; the e-mail is sent afterwards, by
// the mail outbox job, and only to the known address.
func TestForgotPasswordAnswersFirst(t *testing.T) {
	db, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	release := make(chan struct{})
	close(release) // registration looks the address up too
	store := &slowLookup{DB: db, release: release}
	mail := make(chanMailer, 4)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := service.New(store.Stores(), localbus.New(), mail, service.Config{PasswordCost: apitest.FastPasswords, Logger: logger})
	t.Cleanup(svc.Close)
	runner := jobs.New(jobs.NewLocalLeases(), "node", jobs.Options{Logger: logger})
	svc.AddJobs(runner)
	runner.Start()
	t.Cleanup(runner.Close)
	mustRegister(t, svc, "ann")
	release = make(chan struct{})
	store.release = release

	for _, email := range []string{"ann@example.test", "nobody@example.test"} {
		done := make(chan error, 1)
		go func() { done <- svc.ForgotPassword(context.Background(), email) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("forgot %s: %v", email, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("forgot %s waited for the lookup", email)
		}
	}
	if err := svc.ForgotPassword(context.Background(), "not an address"); parley.ErrorCode(err) != parley.EINVALID {
		t.Fatalf("malformed address: %v", err)
	}
	close(release)
	select {
	case m := <-mail:
		if m.To != "ann@example.test" || !strings.Contains(m.Body, "prl_") {
			t.Fatalf("reset mail to %s: %q", m.To, m.Body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reset e-mail was never sent")
	}
	runner.Close() // waits for the unknown address's lookup too
	select {
	case m := <-mail:
		t.Fatalf("a second e-mail went to %s", m.To)
	default:
	}
}
