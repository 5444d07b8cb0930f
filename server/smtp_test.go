package server_test

import (
	"bufio"
	"database/sql"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/jobs"
	"github.com/parley-chat/parley/server"
)

// smtpReceiver is a small SMTP server on loopback (RFC 5321 without
// extensions) that keeps every message it is given.
type smtpReceiver struct {
	ln   net.Listener
	mu   sync.Mutex
	msgs []smtpMessage
	wg   sync.WaitGroup
	// beforeQueued, when set before the first connection, runs after a
	// message's data arrived and before the server says it took it.
	beforeQueued func()
}

type smtpMessage struct {
	from string
	to   []string
	data string
}

func startSMTP(t *testing.T, opts ...func(*smtpReceiver)) *smtpReceiver {
	return startSMTPOn(t, "127.0.0.1:0", opts...)
}

// startSMTPOn starts the receiver on addr.
func startSMTPOn(t *testing.T, addr string, opts ...func(*smtpReceiver)) *smtpReceiver {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &smtpReceiver{ln: ln}
	for _, o := range opts {
		o(r)
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.session(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); r.wg.Wait() })
	return r
}

func (r *smtpReceiver) session(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	in := bufio.NewReader(c)
	say := func(s string) { _, _ = c.Write([]byte(s + "\r\n")) }
	say("220 loopback ESMTP")
	var m smtpMessage
	for {
		line, err := in.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch verb {
		case "EHLO", "HELO":
			say("250-loopback")
			say("250 8BITMIME")
		case "MAIL":
			m = smtpMessage{from: line}
			say("250 OK")
		case "RCPT":
			m.to = append(m.to, line)
			say("250 OK")
		case "DATA":
			say("354 go ahead")
			var b strings.Builder
			for {
				l, err := in.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			m.data = b.String()
			if r.beforeQueued != nil {
				r.beforeQueued()
			}
			r.mu.Lock()
			r.msgs = append(r.msgs, m)
			r.mu.Unlock()
			say("250 queued")
		case "QUIT":
			say("221 bye")
			return
		default:
			say("250 OK")
		}
	}
}

// TestSMTPReset checks that with --smtp-url a password reset e-mail goes to
// the SMTP server, and the token in it works.
func TestSMTPReset(t *testing.T) {
	smtp := startSMTP(t)
	srv := apitest.MustStart(t, "sqlite", func(c *server.Config) {
		c.SMTPURL = "smtp://" + smtp.ln.Addr().String() + "?starttls=none"
		c.MailFrom = "Parley <no-reply@parley.test>"
	})
	name := apitest.Unique("erin")
	erin := apitest.Register(t, srv.URL(), name)
	anon := apitest.NewClient(srv.URL())
	anon.Must(t, 200, "POST", "/api/auth/password/forgot", map[string]string{"email": name + "@example.test"})
	var m smtpMessage
	eventually(t, "the reset e-mail at the SMTP server", 20*time.Second, func() bool {
		smtp.mu.Lock()
		defer smtp.mu.Unlock()
		if len(smtp.msgs) > 0 {
			m = smtp.msgs[0]
		}
		return len(smtp.msgs) > 0
	})
	if !strings.Contains(m.from, "no-reply@parley.test") || len(m.to) != 1 || !strings.Contains(m.to[0], name+"@example.test") ||
		!strings.Contains(m.data, "Reset your Parley password") {
		t.Fatalf("e-mail from %q to %q:\n%s", m.from, m.to, m.data)
	}
	token := regexp.MustCompile(`prl_[A-Za-z0-9_-]+`).FindString(m.data)
	if token == "" {
		t.Fatalf("no token in:\n%s", m.data)
	}
	anon.Must(t, 200, "POST", "/api/auth/password/reset", map[string]string{"token": token, "newPassword": "new-password-1"})
	erin.Must(t, 401, "GET", "/api/users/me", nil)
	anon.Must(t, 200, "POST", "/api/auth/login", map[string]string{"username": name, "password": "new-password-1"})
}

// TestMailOutboxSMTPDown checks that with the SMTP server down a password
// reset and a new-device sign-in still answer 200, the e-mails wait in the
// outbox, and both arrive once the server is up and the clock moved past
// the backoff; the reset token works and the alert carries no token.
func TestMailOutboxSMTPDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	// A dead SMTP server: it hangs up on every connection, and counts them.
	var tries atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tries.Add(1)
			c.Close()
		}
	}()
	clock := jobs.NewFake(time.Now())
	srv := apitest.MustStart(t, "sqlite", func(c *server.Config) {
		c.SMTPURL = "smtp://" + addr + "?starttls=none"
		c.Clock = clock
	})
	name := apitest.Unique("dora")
	apitest.Register(t, srv.URL(), name)
	anon := apitest.NewClient(srv.URL())
	anon.Must(t, 200, "POST", "/api/auth/password/forgot", map[string]string{"email": name + "@example.test"})
	anon.Must(t, 200, "POST", "/api/auth/login", map[string]string{"username": name, "password": "password-" + name,
		"deviceId": "new-tablet", "publicKey": "pk-tablet"})
	// Attempts fail against it at least twice (the outbox retries with
	// backoff as the clock moves), then a working server takes its place.
	eventually(t, "failed attempts at the dead SMTP server", 30*time.Second, func() bool {
		clock.Advance(10 * time.Second)
		return tries.Load() >= 2
	})
	ln.Close()
	smtp := startSMTPOn(t, addr)
	var msgs []smtpMessage
	eventually(t, "both e-mails at the SMTP server", 30*time.Second, func() bool {
		clock.Advance(time.Minute)
		smtp.mu.Lock()
		defer smtp.mu.Unlock()
		msgs = append([]smtpMessage(nil), smtp.msgs...)
		return len(msgs) >= 2
	})
	var reset, alert string
	for _, m := range msgs {
		switch {
		case strings.Contains(m.data, "Reset your Parley password"):
			reset = m.data
		case strings.Contains(m.data, "New sign-in"):
			alert = m.data
		}
	}
	if !strings.Contains(alert, "new-tablet") || !strings.Contains(alert, "127.0.0.1") || strings.Contains(alert, "prl_") {
		t.Fatalf("sign-in alert:\n%s", alert)
	}
	token := regexp.MustCompile(`prl_[A-Za-z0-9_-]+`).FindString(reset)
	if token == "" {
		t.Fatalf("no token in the reset e-mail:\n%s", reset)
	}
	anon.Must(t, 200, "POST", "/api/auth/password/reset", map[string]string{"token": token, "newPassword": "new-password-1"})
}

// TestMailOutboxStop: a node stopped (SIGTERM, Server.Close) while its SMTP
// server is taking an e-mail finishes that conversation and records it,
// so the e-mail is neither left claimed for the next node to send again
// nor lost: after the stop the outbox is empty and the server got it once.
func TestMailOutboxStop(t *testing.T) {
	dsn := testdb.DSN(t, "sqlite")
	var srv *server.Server
	stopping := make(chan struct{})
	smtp := startSMTP(t, func(r *smtpReceiver) {
		r.beforeQueued = func() {
			close(stopping)
			go srv.Close()
			// Answer once the node is stopping (its listener closes before
			// its jobs are stopped), and not before a stop that cut the
			// conversation off would have done so.
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				c, err := net.Dial("tcp", srv.Addr())
				if err != nil {
					break
				}
				c.Close()
			}
			// Nothing outside the node shows that its jobs' context was
			// cancelled (the fixed code no longer lets it reach the SMTP
			// conversation), so this pause only gives a stop that cut the
			// conversation off the time to do it. It cannot fail the test:
			// on a slow machine it can only let a regression pass.
			time.Sleep(time.Second)
		}
	})
	srv = apitest.MustStart(t, "sqlite", func(c *server.Config) {
		c.DB = dsn
		c.SMTPURL = "smtp://" + smtp.ln.Addr().String() + "?starttls=none"
	})
	name := apitest.Unique("fay")
	apitest.Register(t, srv.URL(), name)
	anon := apitest.NewClient(srv.URL())
	anon.Must(t, 200, "GET", "/api/health", nil) // reads the contract before the node stops
	anon.Must(t, 200, "POST", "/api/auth/password/forgot", map[string]string{"email": name + "@example.test"})
	select {
	case <-stopping:
	case <-time.After(30 * time.Second):
		t.Fatal("the reset e-mail never reached the SMTP server")
	}
	srv.Close()
	db, err := sql.Open("sqlite", strings.TrimPrefix(dsn, "sqlite:"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var left int
	if err := db.QueryRow(`SELECT COUNT(*) FROM mail_outbox`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	smtp.mu.Lock()
	got := len(smtp.msgs)
	smtp.mu.Unlock()
	if left != 0 || got != 1 {
		t.Fatalf("after the stop: %d e-mails left in the outbox, %d taken by the SMTP server; want 0 and 1", left, got)
	}
}
