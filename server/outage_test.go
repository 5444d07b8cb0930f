package server_test

import (
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/server"
)

// dbProxy forwards TCP connections to the database and can make it
// unreachable (refuse new connections, cut the open ones) or hung (accept,
// and forward nothing more, either way).
type dbProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	mode  string // "up", "down", "hung"
	conns []net.Conn
}

func newDBProxy(t *testing.T, target string) *dbProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dbProxy{ln: ln, target: target, mode: "up"}
	t.Cleanup(func() { p.set("down"); ln.Close() })
	go p.serve()
	return p
}

func (p *dbProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		mode := p.mode
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		switch mode {
		case "down":
			c.Close()
			continue
		case "hung":
			continue // held open, never answered
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, up)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				if err != nil {
					dst.Close()
					return
				}
				p.mu.Lock()
				hung := p.mode == "hung"
				p.mu.Unlock()
				if hung {
					continue // swallow: the database "never answers"
				}
				if _, err := dst.Write(buf[:n]); err != nil {
					src.Close()
					return
				}
			}
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

// set switches the mode; "down" also cuts every open connection.
func (p *dbProxy) set(mode string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = mode
	if mode == "down" {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// TestDatabaseOutage (issue #12 defect 10): with PostgreSQL unreachable, or
// reachable but never answering, every route answers 503 unavailable within
// a few seconds (the DB timeout here is 1 s), health included; once the
// database is back, requests succeed again.
func TestDatabaseOutage(t *testing.T) {
	dsn := testdb.DSN(t, "postgres")
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newDBProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	srv := apitest.MustStart(t, "postgres", func(c *server.Config) {
		c.DB = u.String()
		c.DBTimeout = time.Second
	})
	ann := apitest.Register(t, srv.URL(), apitest.Unique("ann"))
	bob := apitest.Register(t, srv.URL(), apitest.Unique("bob"))
	for _, c := range []*apitest.Client{ann, bob} {
		c.HTTP.Timeout = 30 * time.Second
	}
	calls := []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/health", nil},
		{"GET", "/api/users/me", nil},
		{"GET", "/api/chats", nil},
		{"GET", "/api/sync", nil},
		{"POST", "/api/messages/send", map[string]any{"recipientId": bob.UserID, "encryptedContent": "x", "type": "text"}},
		{"POST", "/api/auth/login", map[string]any{"username": bob.Username, "password": "password-" + bob.Username}},
	}
	for _, mode := range []string{"down", "hung"} {
		t.Run(mode, func(t *testing.T) {
			proxy.set(mode)
			for _, c := range calls {
				start := time.Now()
				res := ann.Do(t, c.method, c.path, c.body)
				took := time.Since(start)
				if res.Status != 503 || res.Error.Code != "unavailable" {
					t.Fatalf("%s %s with the database %s: %d %q %q", c.method, c.path, mode, res.Status, res.Error.Code, res.Error.Message)
				}
				if took > 15*time.Second {
					t.Fatalf("%s %s with the database %s took %s", c.method, c.path, mode, took.Round(time.Second))
				}
			}
			proxy.set("down") // cut the hung connections
			proxy.set("up")
			deadline := time.Now().Add(20 * time.Second)
			for ann.Do(t, "GET", "/api/users/me", nil).Status != 200 {
				if time.Now().After(deadline) {
					t.Fatal("still failing 20 s after the database came back")
				}
				time.Sleep(100 * time.Millisecond)
			}
			ann.Must(t, 201, "POST", "/api/messages/send", map[string]any{"recipientId": bob.UserID, "encryptedContent": "back", "type": "text"})
		})
	}
}
