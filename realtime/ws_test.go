package realtime_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/server"
)

func event(name string) func(apitest.Frame) bool {
	return func(f apitest.Frame) bool { return f.Event == name }
}

// TestPlainWebSocket covers /ws: auth at the handshake, events to the
// user's room, acks, bad frames, logout closing the socket, origin checks.
func TestPlainWebSocket(t *testing.T) {
	srv := apitest.MustStart(t, "sqlite", func(c *server.Config) { c.AllowedOrigins = []string{"https://allowed.example"} })
	ann := apitest.Register(t, srv.URL(), "ann")
	bob := apitest.Register(t, srv.URL(), "bob")
	bob.Must(t, 201, "POST", "/api/contacts", map[string]string{"contactId": ann.UserID})

	t.Run("ErrUnauthorized", func(t *testing.T) {
		_, resp, err := apitest.TryDialWS(t, srv.URL(), "prl_bad", nil)
		if err == nil || resp == nil || resp.StatusCode != 401 {
			t.Fatalf("bad token: err=%v resp=%v", err, resp)
		}
	})
	t.Run("ErrOrigin", func(t *testing.T) {
		_, resp, err := apitest.TryDialWS(t, srv.URL(), ann.Token, http.Header{"Origin": {"https://evil.example"}})
		if err == nil || resp == nil || resp.StatusCode != 403 {
			t.Fatalf("foreign origin: err=%v resp=%v", err, resp)
		}
		if _, _, err := apitest.TryDialWS(t, srv.URL(), ann.Token, http.Header{"Origin": {"https://allowed.example"}}); err != nil {
			t.Fatalf("allowed origin refused: %v", err)
		}
	})

	t.Run("Events", func(t *testing.T) {
		bws1, bws2 := apitest.DialWS(t, srv.URL(), bob.Token), apitest.DialWS(t, srv.URL(), bob.Token)
		ann.Must(t, 200, "PUT", "/api/users/me/profile", map[string]string{"name": "Ann Z"})
		for _, c := range []*apitest.WS{bws1, bws2} { // every socket of the user
			f := c.WaitFor(t, event("profile_updated"))
			var p struct{ UserID, Name string }
			json.Unmarshal(f.Data, &p)
			if p.UserID != ann.UserID || p.Name != "Ann Z" {
				t.Fatalf("profile_updated = %s", f.Data)
			}
		}
		ann.Must(t, 200, "POST", "/api/users/keys", map[string]string{"deviceId": "tablet", "publicKey": "k"})
		f := bws1.WaitFor(t, event("key_changed"))
		if !strings.Contains(string(f.Data), `"deviceId":"tablet"`) {
			t.Fatalf("key_changed = %s", f.Data)
		}
	})

	t.Run("Presence", func(t *testing.T) {
		// Fresh users: ann's earlier sockets may still be in their grace period.
		ann, bob := apitest.Register(t, srv.URL(), "ann2"), apitest.Register(t, srv.URL(), "bob2")
		bob.Must(t, 201, "POST", "/api/contacts", map[string]string{"contactId": ann.UserID})
		bws := apitest.DialWS(t, srv.URL(), bob.Token)
		aws := apitest.DialWS(t, srv.URL(), ann.Token)
		online := bws.WaitFor(t, func(f apitest.Frame) bool {
			return event("presence_update")(f) && strings.Contains(string(f.Data), `"online":true`)
		})
		if !strings.Contains(string(online.Data), ann.UserID) {
			t.Fatalf("presence = %s", online.Data)
		}
		var p struct{ Online bool }
		bob.Must(t, 200, "GET", "/api/users/"+ann.UserID+"/presence", nil).Decode(t, &p)
		if !p.Online {
			t.Fatal("ann not online over REST")
		}
		aws.Close()
		// The test server's grace period is 300 ms.
		off := bws.WaitFor(t, func(f apitest.Frame) bool {
			return event("presence_update")(f) && strings.Contains(string(f.Data), `"online":false`)
		})
		var ev struct {
			LastSeen *string
		}
		json.Unmarshal(off.Data, &ev)
		if ev.LastSeen == nil {
			t.Fatalf("offline without lastSeen: %s", off.Data)
		}
	})

	t.Run("Acks", func(t *testing.T) {
		c := apitest.DialWS(t, srv.URL(), ann.Token)
		ack := c.Call(t, "no_such_event", map[string]any{}, 7)
		if !strings.Contains(string(ack), `"success":false`) || !strings.Contains(string(ack), "invalid_argument") {
			t.Fatalf("ack = %s", ack)
		}
		c.SendRaw(t, []byte("not json"))
		c.WaitFor(t, event("error"))
	})

	t.Run("LogoutClosesSocket", func(t *testing.T) {
		carol := apitest.Register(t, srv.URL(), "carol")
		c := apitest.DialWS(t, srv.URL(), carol.Token)
		carol.Must(t, 200, "POST", "/api/auth/logout", nil)
		select {
		case <-c.Closed():
		case <-time.After(5 * time.Second):
			t.Fatal("socket still open after logout")
		}
		if _, resp, err := apitest.TryDialWS(t, srv.URL(), carol.Token, nil); err == nil || resp.StatusCode != 401 {
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
	fast := apitest.DialWS(t, srv.URL(), ann.Token)
	fast.AllowEvent("bulk") // published by this test, not by the server

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
	received := func() int { return len(fast.Events("bulk")) }
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

// TestWSHeartbeat checks that /ws pings its clients: a client that stops
// answering (a frozen or vanished peer) is closed once PingInterval +
// PingTimeout pass without a frame from it, and its user goes offline,
// while a client that answers pings stays connected.
func TestWSHeartbeat(t *testing.T) {
	srv := apitest.MustStart(t, "sqlite", func(c *server.Config) {
		c.PingInterval = 200 * time.Millisecond
		c.PingTimeout = 3 * time.Second // patient: the live client must never miss it
	})
	ann := apitest.Register(t, srv.URL(), "ann")
	bob := apitest.Register(t, srv.URL(), "bob")
	bob.Must(t, 201, "POST", "/api/contacts", map[string]string{"contactId": ann.UserID})
	live := apitest.DialWS(t, srv.URL(), bob.Token)

	// The frozen client completes the handshake by hand, then never sends
	// a frame (no pong), like a SIGSTOPped process. It still reads, so it
	// is the missing pongs, not a full queue, that must close it.
	raw, err := net.Dial("tcp", strings.TrimPrefix(srv.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	fmt.Fprintf(raw, "GET /ws?token=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", ann.Token)
	br := bufio.NewReader(raw)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("frozen client handshake: %v %v", resp, err)
	}
	live.WaitFor(t, func(f apitest.Frame) bool {
		return f.Event == "presence_update" && strings.Contains(string(f.Data), `"online":true`)
	})

	raw.SetReadDeadline(time.Now().Add(30 * time.Second))
	pings, buf := 0, make([]byte, 2)
	for {
		if _, err := io.ReadFull(br, buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("frozen /ws client still connected after 30 s")
			}
			break // closed by the server
		}
		if buf[0]&0x0f == 0x9 { // ping
			pings++
		}
		if _, err := io.CopyN(io.Discard, br, int64(buf[1]&0x7f)); err != nil {
			break
		}
	}
	if pings == 0 {
		t.Fatal("closed without being pinged")
	}
	off := live.WaitFor(t, func(f apitest.Frame) bool {
		return f.Event == "presence_update" && strings.Contains(string(f.Data), `"online":false`)
	})
	if !strings.Contains(string(off.Data), ann.UserID) {
		t.Fatalf("presence = %s", off.Data)
	}
	select {
	case <-live.Closed():
		t.Fatal("the client that answers pings was closed")
	default:
	}
	if ack := live.Call(t, "typing", map[string]any{"recipientId": ann.UserID, "isTyping": true}, 1); !strings.Contains(string(ack), `"success"`) {
		t.Fatalf("live client ack = %s", ack)
	}
}

// userSet is a parley.Audience.
type userSet map[string]bool

func (s userSet) Has(id string) bool { return s[id] }

// TestAudienceDelivery checks that an event carrying its addressees as a set
// too (a large channel's post, with more addressees than the node has users
// online) reaches exactly the sockets the list names: every socket of each
// online addressee, none of anyone else's.
func TestAudienceDelivery(t *testing.T) {
	srv := apitest.MustStart(t, "sqlite", nil)
	ann := apitest.Register(t, srv.URL(), "ann")
	bob := apitest.Register(t, srv.URL(), "bob")
	eve := apitest.Register(t, srv.URL(), "eve") // online, not addressed
	ann1, ann2 := apitest.DialWS(t, srv.URL(), ann.Token), apitest.DialWS(t, srv.URL(), ann.Token)
	bws, ews := apitest.DialWS(t, srv.URL(), bob.Token), apitest.DialWS(t, srv.URL(), eve.Token)
	for _, c := range []*apitest.WS{ann1, ann2, bws, ews} {
		c.AllowEvent("fanout")
	}
	to := []string{ann.UserID, bob.UserID}
	for i := range 20 { // offline members: many more addressees than users online
		to = append(to, fmt.Sprintf("usr_offline%02d", i))
	}
	set := userSet{}
	for _, id := range to {
		set[id] = true
	}
	for i, aud := range []parley.Audience{set, nil} { // with the set, then the plain list
		data := json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))
		if err := srv.Bus().Publish(context.Background(), &parley.Event{Name: "fanout", Data: data, To: to, Audience: aud}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*apitest.WS{ann1, ann2, bws} {
			c.WaitEvent(t, "fanout", string(data))
		}
	}
	for _, c := range []*apitest.WS{ann1, ann2, bws} {
		if got := c.Events("fanout"); len(got) != 2 {
			t.Fatalf("a socket got %d fan-outs, want 2: %s", len(got), got)
		}
	}
	// eve's socket is open and reached: an event to her arrives, and the
	// bus keeps order, so the fan-outs before it never came.
	srv.Bus().Publish(context.Background(), &parley.Event{Name: "fanout", Data: json.RawMessage(`{"eve":true}`), To: []string{eve.UserID}})
	ews.WaitEvent(t, "fanout", "eve")
	if got := ews.Events("fanout"); len(got) != 1 {
		t.Fatalf("eve got fan-outs she was not addressed: %s", got)
	}
}
