package realtime_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/server"
)

// wsClient is a plain WebSocket test client that records every frame.
type wsClient struct {
	t      *testing.T
	conn   *gws.Conn
	mu     sync.Mutex
	frames []map[string]json.RawMessage
	closed chan struct{}
	notify chan struct{}
}

func (c *wsClient) OnOpen(*gws.Conn)                {}
func (c *wsClient) OnPing(conn *gws.Conn, p []byte) { _ = conn.WritePong(p) }
func (c *wsClient) OnPong(*gws.Conn, []byte)        {}
func (c *wsClient) OnClose(*gws.Conn, error)        { close(c.closed) }
func (c *wsClient) OnMessage(_ *gws.Conn, m *gws.Message) {
	var f map[string]json.RawMessage
	if err := json.Unmarshal(m.Bytes(), &f); err != nil {
		c.t.Errorf("frame is not JSON: %q", m.Bytes())
	}
	m.Close()
	c.mu.Lock()
	c.frames = append(c.frames, f)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func dialWS(t *testing.T, srv *server.Server, token string, header http.Header) (*wsClient, *http.Response, error) {
	c := &wsClient{t: t, closed: make(chan struct{}), notify: make(chan struct{}, 1)}
	conn, resp, err := gws.NewClient(c, &gws.ClientOption{Addr: "ws" + strings.TrimPrefix(srv.URL(), "http") + "/ws?token=" + token, RequestHeader: header})
	if err != nil {
		return nil, resp, err
	}
	c.conn = conn
	go conn.ReadLoop()
	t.Cleanup(func() { conn.NetConn().Close() })
	return c, resp, nil
}

func mustDialWS(t *testing.T, srv *server.Server, token string) *wsClient {
	t.Helper()
	c, _, err := dialWS(t, srv, token, nil)
	if err != nil {
		t.Fatalf("dial /ws: %v", err)
	}
	return c
}

// waitFor waits until a frame satisfies match and returns it.
func (c *wsClient) waitFor(match func(map[string]json.RawMessage) bool) map[string]json.RawMessage {
	c.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		c.mu.Lock()
		for _, f := range c.frames {
			if match(f) {
				c.mu.Unlock()
				return f
			}
		}
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			c.t.Fatalf("no matching frame; got %d frames", len(c.frames))
		}
	}
}

func event(name string) func(map[string]json.RawMessage) bool {
	return func(f map[string]json.RawMessage) bool { return string(f["event"]) == `"`+name+`"` }
}

func (c *wsClient) send(v any) {
	b, _ := json.Marshal(v)
	if err := c.conn.WriteMessage(gws.OpcodeText, b); err != nil {
		c.t.Fatal(err)
	}
}

// TestPlainWebSocket covers /ws: auth at the handshake, events to the
// user's room, acks, bad frames, logout closing the socket, origin checks.
func TestPlainWebSocket(t *testing.T) {
	srv := apitest.MustStart(t, "sqlite", func(c *server.Config) { c.AllowedOrigins = []string{"https://allowed.example"} })
	ann := apitest.Register(t, srv.URL(), "ann")
	bob := apitest.Register(t, srv.URL(), "bob")
	bob.Must(201, "POST", "/api/contacts", map[string]string{"contactId": ann.UserID})

	t.Run("ErrUnauthorized", func(t *testing.T) {
		_, resp, err := dialWS(t, srv, "prl_bad", nil)
		if err == nil || resp == nil || resp.StatusCode != 401 {
			t.Fatalf("bad token: err=%v resp=%v", err, resp)
		}
	})
	t.Run("ErrOrigin", func(t *testing.T) {
		_, resp, err := dialWS(t, srv, ann.Token, http.Header{"Origin": {"https://evil.example"}})
		if err == nil || resp == nil || resp.StatusCode != 403 {
			t.Fatalf("foreign origin: err=%v resp=%v", err, resp)
		}
		if _, _, err := dialWS(t, srv, ann.Token, http.Header{"Origin": {"https://allowed.example"}}); err != nil {
			t.Fatalf("allowed origin refused: %v", err)
		}
	})

	t.Run("Events", func(t *testing.T) {
		bws1, bws2 := mustDialWS(t, srv, bob.Token), mustDialWS(t, srv, bob.Token)
		ann.Must(200, "PUT", "/api/users/me/profile", map[string]string{"name": "Ann Z"})
		for _, c := range []*wsClient{bws1, bws2} { // every socket of the user
			f := c.waitFor(event("profile_updated"))
			var p struct{ UserID, Name string }
			json.Unmarshal(f["data"], &p)
			if p.UserID != ann.UserID || p.Name != "Ann Z" {
				t.Fatalf("profile_updated = %s", f["data"])
			}
		}
		ann.Must(200, "POST", "/api/users/keys", map[string]string{"deviceId": "tablet", "publicKey": "k"})
		f := bws1.waitFor(event("key_changed"))
		if !strings.Contains(string(f["data"]), `"deviceId":"tablet"`) {
			t.Fatalf("key_changed = %s", f["data"])
		}
	})

	t.Run("Presence", func(t *testing.T) {
		// Fresh users: ann's earlier sockets may still be in their grace period.
		ann, bob := apitest.Register(t, srv.URL(), "ann2"), apitest.Register(t, srv.URL(), "bob2")
		bob.Must(201, "POST", "/api/contacts", map[string]string{"contactId": ann.UserID})
		bws := mustDialWS(t, srv, bob.Token)
		aws := mustDialWS(t, srv, ann.Token)
		online := bws.waitFor(func(f map[string]json.RawMessage) bool {
			return event("presence_update")(f) && strings.Contains(string(f["data"]), `"online":true`)
		})
		if !strings.Contains(string(online["data"]), ann.UserID) {
			t.Fatalf("presence = %s", online["data"])
		}
		var p struct{ Online bool }
		bob.Must(200, "GET", "/api/users/"+ann.UserID+"/presence", nil).Decode(t, &p)
		if !p.Online {
			t.Fatal("ann not online over REST")
		}
		aws.conn.NetConn().Close()
		// The test server's grace period is 300 ms.
		off := bws.waitFor(func(f map[string]json.RawMessage) bool {
			return event("presence_update")(f) && strings.Contains(string(f["data"]), `"online":false`)
		})
		var ev struct {
			LastSeen *string
		}
		json.Unmarshal(off["data"], &ev)
		if ev.LastSeen == nil {
			t.Fatalf("offline without lastSeen: %s", off["data"])
		}
	})

	t.Run("Acks", func(t *testing.T) {
		c := mustDialWS(t, srv, ann.Token)
		c.send(map[string]any{"event": "no_such_event", "data": map[string]any{}, "id": 7})
		f := c.waitFor(func(f map[string]json.RawMessage) bool { return string(f["ack"]) == "7" })
		if !strings.Contains(string(f["data"]), `"success":false`) || !strings.Contains(string(f["data"]), "invalid_argument") {
			t.Fatalf("ack = %s", f["data"])
		}
		if err := c.conn.WriteMessage(gws.OpcodeText, []byte("not json")); err != nil {
			t.Fatal(err)
		}
		c.waitFor(event("error"))
	})

	t.Run("LogoutClosesSocket", func(t *testing.T) {
		carol := apitest.Register(t, srv.URL(), "carol")
		c := mustDialWS(t, srv, carol.Token)
		carol.Must(200, "POST", "/api/auth/logout", nil)
		select {
		case <-c.closed:
		case <-time.After(5 * time.Second):
			t.Fatal("socket still open after logout")
		}
		if _, resp, err := dialWS(t, srv, carol.Token, nil); err == nil || resp.StatusCode != 401 {
			t.Fatal("revoked token can still connect")
		}
	})
}

// TestSlowConsumer checks that a client that stops reading is disconnected
// once its bounded queue is full, while another client of the same user
// keeps receiving every event.
func TestSlowConsumer(t *testing.T) {
	srv := apitest.MustStart(t, "sqlite", nil)
	ann := apitest.Register(t, srv.URL(), "ann")
	fast := mustDialWS(t, srv, ann.Token)

	// The slow client completes the handshake by hand and never reads again.
	raw, err := net.Dial("tcp", strings.TrimPrefix(srv.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	fmt.Fprintf(raw, "GET /ws?token=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", ann.Token)
	resp, err := http.ReadResponse(bufio.NewReader(raw), nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("slow client handshake: %v %v", resp, err)
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	deadline := time.Now().Add(20 * time.Second)
	for srv.Hub().Connections() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}

	payload, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", 4000)})
	const n = 3000 // 12 MB: far beyond socket buffers plus a 256-message queue
	received := func() int {
		fast.mu.Lock()
		defer fast.mu.Unlock()
		return len(fast.frames)
	}
	// Publish in bursts the fast reader can absorb, waiting for it (never
	// for the stalled one) between bursts.
	for i := 0; i < n; i++ {
		srv.Bus().Publish(context.Background(), &parley.Event{Name: "bulk", Data: payload, To: []string{ann.UserID}})
		if i%100 == 99 {
			for received() < i+1 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
	}
	for srv.Hub().Connections() > 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := srv.Hub().Connections(); got != 1 {
		t.Fatalf("connections = %d: the stalled client was not dropped", got)
	}
	for received() < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := received(); got != n {
		t.Fatalf("fast client got %d of %d events", got, n)
	}
}
