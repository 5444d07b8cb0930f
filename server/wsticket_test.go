package server_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/jobs"
	"github.com/parley-chat/parley/server"
	"github.com/parley-chat/parley/service"
)

// TestWSTicket: a browser opens /ws with a single-use ticket instead of
// its bearer token (POST /api/auth/ws-ticket). A ticket opens one socket
// of its session; used, expired, unknown, or of a logged-out session, it
// is refused with 401 before the upgrade.
func TestWSTicket(t *testing.T) {
	t.Parallel()
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			clock := jobs.NewFake(time.Now())
			srv := apitest.MustStart(t, backend, func(c *server.Config) { c.Clock = clock })
			base := srv.URL()
			ann := apitest.Register(t, base, apitest.Unique("ann"))
			bob := apitest.Register(t, base, apitest.Unique("bob"))
			ticket := func(c *apitest.Client) string {
				t.Helper()
				var out struct {
					Ticket    string `json:"ticket"`
					ExpiresAt string `json:"expiresAt"`
				}
				c.Must(t, 200, "POST", "/api/auth/ws-ticket", nil).Decode(t, &out)
				if !strings.HasPrefix(out.Ticket, "wst_") || out.ExpiresAt == "" {
					t.Fatalf("ticket answer %+v", out)
				}
				return out.Ticket
			}
			refused := func(name, query string) {
				t.Helper()
				ws, resp, err := apitest.TryDialWSQuery(t, base, query, nil)
				if err == nil {
					ws.Close()
					t.Fatalf("%s: /ws?%s opened", name, query)
				}
				if resp == nil || resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("%s: want 401, got %v (%v)", name, resp, err)
				}
			}

			t.Run("OK", func(t *testing.T) {
				tk := ticket(ann)
				ws, _, err := apitest.TryDialWSQuery(t, base, "ticket="+tk, nil)
				if err != nil {
					t.Fatalf("dial with ticket: %v", err)
				}
				// The socket is ann's: a message to her arrives on it.
				bob.Must(t, 201, "POST", "/api/messages/send", map[string]any{"recipientId": ann.UserID,
					"encryptedContent": "ticket-socket", "type": "text"})
				ws.WaitEvent(t, "new_message", "ticket-socket")
				refused("used twice", "ticket="+tk)
			})
			t.Run("ErrConcurrentUse", func(t *testing.T) {
				tk := ticket(ann)
				var wg sync.WaitGroup
				opened := make(chan *apitest.WS, 4)
				for range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if ws, _, err := apitest.TryDialWSQuery(t, base, "ticket="+tk, nil); err == nil {
							opened <- ws
						}
					}()
				}
				wg.Wait()
				close(opened)
				if n := len(opened); n != 1 {
					t.Fatalf("%d sockets opened with one ticket, want 1", n)
				}
			})
			t.Run("ErrExpired", func(t *testing.T) {
				tk := ticket(ann)
				clock.Advance(30 * time.Second)
				refused("expired", "ticket="+tk)
			})
			t.Run("ErrUnknown", func(t *testing.T) {
				refused("unknown", "ticket=wst_nothing")
				refused("too long", "ticket="+strings.Repeat("x", 200))
			})
			t.Run("ErrLoggedOut", func(t *testing.T) {
				carol := apitest.Register(t, base, apitest.Unique("carol"))
				tk := ticket(carol)
				carol.Must(t, 200, "POST", "/api/auth/logout", nil)
				refused("session revoked", "ticket="+tk)
			})
			t.Run("ErrNoToken", func(t *testing.T) {
				apitest.NewClient(base).Must(t, 401, "POST", "/api/auth/ws-ticket", nil)
			})
			t.Run("ErrRateLimited", func(t *testing.T) {
				// A user's burst of tickets, then 429 until the clock has
				// moved enough for one more; another user is not held back.
				dan := apitest.Register(t, base, apitest.Unique("dan"))
				for range service.SocketTicketBurst {
					ticket(dan)
				}
				r := dan.Do(t, "POST", "/api/auth/ws-ticket", nil)
				if r.Status != http.StatusTooManyRequests || r.Error.Code != "rate_limited" {
					t.Fatalf("ticket past the burst: %d %+v", r.Status, r.Error)
				}
				ticket(bob)
				clock.Advance(time.Minute / service.SocketTicketsPerMinute)
				ticket(dan)
				dan.Must(t, 429, "POST", "/api/auth/ws-ticket", nil)
			})
		})
	}
}
