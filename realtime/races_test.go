package realtime_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/server"
)

// parallel runs fn(i) for i in [0, n) on a few workers.
func parallel(n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// waitConnections waits (up to 15 s) for the hub to hold want sockets.
func waitConnections(t *testing.T, srv *server.Server, want int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for srv.Hub().Connections() != want {
		if time.Now().After(deadline) {
			t.Fatalf("hub holds %d sockets, want %d", srv.Hub().Connections(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConnectCloseRace: a session closed while its CONNECT is being
// authenticated (here by an overlapping POST, which ends the session)
// leaves no hub entry behind. Before the fix about 5% of tries left a
// phantom socket and the user online forever.
func TestConnectCloseRace(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			// The survivors stay open until the end: let one user hold
			// them all, so that no CONNECT is refused for the socket cap.
			srv := apitest.MustStart(t, backend, func(c *server.Config) { c.MaxSocketsPerUser = 1000 })
			v := apitest.Register(t, srv.URL(), apitest.Unique("v"))
			t.Run("polling", func(t *testing.T) {
				sessions := make([]*polling, 1000)
				parallel(len(sessions), 8, func(i int) {
					p := openPolling(t, srv.URL())
					sessions[i] = p
					done := make(chan struct{})
					go func() { p.post(`40{"token":"` + v.Token + `"}`); close(done) }()
					p.post(`40{"token":"` + v.Token + `"}`)
					<-done
				})
				for _, p := range sessions { // close the survivors the client's way
					p.post("1")
				}
				waitConnections(t, srv, 0)
			})
			t.Run("websocket", func(t *testing.T) {
				parallel(300, 8, func(int) {
					c, _, err := apitest.TryDialWS(t, srv.URL(), v.Token, nil)
					if err == nil {
						c.Close()
					}
				})
				waitConnections(t, srv, 0)
			})
		})
	}
}

// TestConnectLogoutRace: a socket opened at the same moment as the logout
// of its token never outlives the logout, and no event it sends after the
// logout answered is accepted.
func TestConnectLogoutRace(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			// A refused CONNECT leaves its session open (the client may
			// retry) until the connect timeout: let one address hold
			// every session of the test.
			srv := apitest.MustStart(t, backend, func(c *server.Config) { c.MaxPendingPerAddr = 1000 })
			name := apitest.Unique("v")
			v := apitest.Register(t, srv.URL(), name)
			r := apitest.Register(t, srv.URL(), apitest.Unique("r"))
			login := func() *apitest.Client {
				c := apitest.NewClient(srv.URL())
				res := c.Must(t, 200, "POST", "/api/auth/login", map[string]string{"username": name, "password": "password-" + name})
				var out struct{ Token string }
				res.Decode(t, &out)
				c.Token = out.Token
				return c
			}
			sendFrame := func(i int) string {
				b, _ := json.Marshal(map[string]any{"recipientId": r.UserID, "encryptedContent": fmt.Sprintf("after-logout-%d", i), "type": "text"})
				return string(b)
			}
			const tries = 300
			t.Run("polling", func(t *testing.T) {
				parallel(tries, 6, func(i int) {
					c := login()
					p := openPolling(t, srv.URL())
					done := make(chan struct{})
					go func() { p.post(`40{"token":"` + c.Token + `"}`); close(done) }()
					c.Must(t, 200, "POST", "/api/auth/logout", nil)
					<-done
					p.post(`42["send_message",` + sendFrame(i) + `]`)
				})
				waitConnections(t, srv, 0)
			})
			t.Run("websocket", func(t *testing.T) {
				parallel(tries, 6, func(i int) {
					c := login()
					type dialed struct{ ws *apitest.WS }
					ch := make(chan dialed, 1)
					go func() {
						ws, _, err := apitest.TryDialWS(t, srv.URL(), c.Token, nil)
						if err != nil {
							ws = nil
						}
						ch <- dialed{ws}
					}()
					c.Must(t, 200, "POST", "/api/auth/logout", nil)
					if d := <-ch; d.ws != nil {
						_ = d.ws.TrySendRaw([]byte(`{"event":"send_message","id":1,"data":` + sendFrame(i) + `}`))
					}
				})
				waitConnections(t, srv, 0)
			})
			// Every event above was sent after its logout answered.
			res := r.Must(t, 200, "GET", "/api/messages/"+r.UserID+"/"+v.UserID+"?limit=100", nil)
			if strings.Contains(string(res.Data), "after-logout") {
				t.Fatalf("an event was accepted after logout: %.300s", res.Data)
			}
		})
	}
}
