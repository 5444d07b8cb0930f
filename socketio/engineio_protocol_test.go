package socketio_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/socketio"
	"github.com/parley-chat/parley/socketio/socketiotest"
)

func TestEngineHandshake(t *testing.T) {
	base := MustStart(t, nil)

	t.Run("OK", func(t *testing.T) {
		op := MustOpenPolling(t, base)
		if len(op.SID) < 16 || len(op.Upgrades) != 1 || op.Upgrades[0] != "websocket" ||
			op.PingInterval != 300 || op.PingTimeout != 200 || op.MaxPayload != 1000000 {
			t.Fatalf("open packet %+v", op)
		}
	})
	t.Run("OKWebSocket", func(t *testing.T) {
		c, _ := DialWS(t, wsURL(base, ""), true)
		m := c.Recv(t).String()
		var op openPacket
		if !strings.HasPrefix(m, "0") || json.Unmarshal([]byte(m[1:]), &op) != nil || len(op.Upgrades) != 0 || op.SID == "" {
			t.Fatalf("open packet %q", m)
		}
	})
	t.Run("OKCORS", func(t *testing.T) {
		_, _, h := MustDo(t, "GET", pollURL(base, ""), "", "Origin", "https://elsewhere.example")
		if got := h.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Fatalf("Access-Control-Allow-Origin = %q", got)
		}
		status, _, _ := MustDo(t, "OPTIONS", pollURL(base, ""), "", "Origin", "https://elsewhere.example")
		if status != 204 {
			t.Fatalf("preflight status %d", status)
		}
	})

	for _, tc := range []struct {
		name, method, url string
		status, code      int
	}{
		{"ErrUnsupportedProtocol", "GET", base + "/socket.io/?EIO=3&transport=polling", 400, 5},
		{"ErrMissingEIO", "GET", base + "/socket.io/?transport=polling", 400, 5},
		{"ErrUnknownTransport", "GET", base + "/socket.io/?EIO=4&transport=abc", 400, 0},
		{"ErrMissingTransport", "GET", base + "/socket.io/?EIO=4", 400, 0},
		{"ErrBadHandshakeMethod", "POST", base + "/socket.io/?EIO=4&transport=polling", 400, 2},
		{"ErrBadHandshakeMethodPUT", "PUT", base + "/socket.io/?EIO=4&transport=polling", 400, 2},
		{"ErrUnknownSID", "GET", pollURL(base, "abc"), 400, 1},
		{"ErrUnknownSIDPost", "POST", pollURL(base, "abc"), 400, 1},
		{"ErrWebSocketWithoutUpgrade", "GET", base + "/socket.io/?EIO=4&transport=websocket", 400, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, h := MustDo(t, tc.method, tc.url, "1")
			var e struct {
				Code    *int   `json:"code"`
				Message string `json:"message"`
			}
			if status != tc.status || json.Unmarshal([]byte(body), &e) != nil || e.Code == nil || *e.Code != tc.code || e.Message == "" {
				t.Fatalf("got %d %s, want %d code %d", status, body, tc.status, tc.code)
			}
			if ct := h.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
		})
	}
}

func TestEngineHeartbeat(t *testing.T) {
	sio := socketiotest.NewServer(socketiotest.Options(), 0)
	base := MustStart(t, sio)
	// The OK cases answer each ping; a loaded machine may take longer than
	// the suite's 200 ms pingTimeout to do so, so they get a patient server.
	opts := socketiotest.Options()
	opts.EngineIO.PingTimeout = 10 * time.Second
	patient := MustStart(t, socketiotest.NewServer(opts, 0))

	t.Run("OKPolling", func(t *testing.T) {
		base := patient
		sid := MustOpenPolling(t, base).SID
		for i := 0; i < 3; i++ {
			start := time.Now()
			status, body, _ := MustDo(t, "GET", pollURL(base, sid), "")
			if status != 200 || body != "2" {
				t.Fatalf("poll %d: %d %q, want ping", i, status, body)
			}
			if d := time.Since(start); d < 100*time.Millisecond && i > 0 {
				t.Fatalf("ping after %v, want about pingInterval", d)
			}
			if status, body, _ := MustDo(t, "POST", pollURL(base, sid), "3"); status != 200 || body != "ok" {
				t.Fatalf("pong: %d %q", status, body)
			}
		}
	})
	t.Run("ErrPingTimeoutPolling", func(t *testing.T) {
		sid := MustOpenPolling(t, base).SID
		if _, body, _ := MustDo(t, "GET", pollURL(base, sid), ""); body != "2" {
			t.Fatalf("got %q, want ping", body)
		}
		// No pong: the session ends after pingTimeout. Wait for that (it
		// takes longer on a loaded machine) rather than a fixed time.
		for deadline := time.Now().Add(10 * time.Second); sio.Engine().Len() > 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the session outlived its ping timeout by 10 s")
			}
		}
		status, body, _ := MustDo(t, "GET", pollURL(base, sid), "")
		if status != 400 || !strings.Contains(body, `"code":1`) {
			t.Fatalf("after timeout: %d %q, want unknown sid", status, body)
		}
	})
	t.Run("OKWebSocket", func(t *testing.T) {
		c, _ := DialWS(t, wsURL(patient, ""), false)
		c.Recv(t) // open
		for i := 0; i < 3; i++ {
			MustRecvText(t, c, "2")
			c.Send(t, "3")
		}
	})
	t.Run("ErrPingTimeoutWebSocket", func(t *testing.T) {
		c, _ := DialWS(t, wsURL(base, ""), false)
		c.Recv(t) // open
		MustRecvText(t, c, "2")
		c.WaitClosed(t)
	})
}

// waitPolling waits until the GET of session sid is pending on the
// server: a barrier for tests that act on a waiting poll.
func waitPolling(t *testing.T, sio *socketio.Server, sid string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !sio.Engine().Polling(sid); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the GET never started waiting")
		}
	}
}

func TestEngineClose(t *testing.T) {
	sio := socketiotest.NewServer(socketiotest.Options(), 0)
	base := MustStart(t, sio)

	t.Run("OKPolling", func(t *testing.T) {
		sid := MustOpenPolling(t, base).SID
		var wg sync.WaitGroup
		var status int
		var body string
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, body, _ = MustDo(t, "GET", pollURL(base, sid), "")
		}()
		waitPolling(t, sio, sid)
		if st, _, _ := MustDo(t, "POST", pollURL(base, sid), "1"); st != 200 {
			t.Fatalf("close POST: %d", st)
		}
		wg.Wait()
		if status != 200 || body != "6" {
			t.Fatalf("pending GET: %d %q, want noop", status, body)
		}
		if st, _, _ := MustDo(t, "GET", pollURL(base, sid), ""); st != 400 {
			t.Fatalf("GET after close: %d", st)
		}
	})
	// The official suite sends the GET and the close POST at once; when the
	// POST wins the race, the GET must still get its noop, as it would
	// had it arrived first, and only the GET after it an unknown sid.
	t.Run("OKPollingGETAfterClose", func(t *testing.T) {
		sid := MustOpenPolling(t, base).SID
		if st, _, _ := MustDo(t, "POST", pollURL(base, sid), "1"); st != 200 {
			t.Fatalf("close POST: %d", st)
		}
		if st, body, _ := MustDo(t, "GET", pollURL(base, sid), ""); st != 200 || body != "6" {
			t.Fatalf("GET racing the close: %d %q, want noop", st, body)
		}
		if st, _, _ := MustDo(t, "GET", pollURL(base, sid), ""); st != 400 {
			t.Fatalf("second GET after close: %d", st)
		}
	})
	t.Run("OKWebSocket", func(t *testing.T) {
		c := MustDialWS(t, base)
		c.Send(t, "1")
		c.WaitClosed(t)
	})
	t.Run("ErrSecondGET", func(t *testing.T) {
		sid := MustOpenPolling(t, base).SID
		done := make(chan int, 1)
		go func() {
			st, _, _ := MustDo(t, "GET", pollURL(base, sid), "")
			done <- st
		}()
		waitPolling(t, sio, sid)
		if st, body, _ := MustDo(t, "GET", pollURL(base, sid), ""); st != 400 || !strings.Contains(body, `"code":3`) {
			t.Fatalf("second GET: %d %q", st, body)
		}
		<-done
		if st, _, _ := MustDo(t, "GET", pollURL(base, sid), ""); st != 400 {
			t.Fatalf("session survived a second GET: %d", st)
		}
	})
	t.Run("ErrInvalidPayload", func(t *testing.T) {
		sid := MustOpenPolling(t, base).SID
		if st, _, _ := MustDo(t, "POST", pollURL(base, sid), "9abc"); st != 400 {
			t.Fatalf("bad payload: %d", st)
		}
		if st, _, _ := MustDo(t, "GET", pollURL(base, sid), ""); st != 400 {
			t.Fatalf("session survived a bad payload: %d", st)
		}
	})
}

func TestEngineUpgrade(t *testing.T) {
	sio := socketiotest.NewServer(socketiotest.Options(), 0)
	base := MustStart(t, sio)

	t.Run("OK", func(t *testing.T) {
		sid := MustOpenPolling(t, base).SID
		pending := make(chan string, 1)
		go func() {
			_, body, _ := MustDo(t, "GET", pollURL(base, sid), "")
			pending <- body
		}()
		waitPolling(t, sio, sid)
		c, status := DialWS(t, wsURL(base, sid), true)
		if c == nil {
			t.Fatalf("upgrade refused: %d", status)
		}
		c.Send(t, "2probe")
		MustRecvText(t, c, "3probe")
		select {
		case body := <-pending:
			if body != "6" && body != "2" {
				t.Fatalf("pending GET got %q, want noop", body)
			}
		case <-time.After(wait):
			t.Fatal("pending GET not released by the probe")
		}
		c.Send(t, "5")
		// The session now lives on the WebSocket.
		c.Send(t, "40")
		MustRecvText(t, c, `40{"sid":"*`)
		MustRecvText(t, c, `42["auth",{}]`)

		t.Run("ErrPollingAfterUpgrade", func(t *testing.T) {
			if st, _, _ := MustDo(t, "GET", pollURL(base, sid), ""); st != 400 {
				t.Fatalf("GET after upgrade: %d", st)
			}
			if st, _, _ := MustDo(t, "POST", pollURL(base, sid), "3"); st != 400 {
				t.Fatalf("POST after upgrade: %d", st)
			}
		})
		t.Run("ErrSecondWebSocket", func(t *testing.T) {
			// Like the reference server (and its protocol test suite): the
			// handshake completes and the connection is closed at once,
			// while the session goes on on its own WebSocket.
			c2, status := DialWS(t, wsURL(base, sid), true)
			if c2 == nil {
				t.Fatalf("second WebSocket for an upgraded sid: %d, want 101 then a close", status)
			}
			c2.WaitClosed(t)
			c.Send(t, `42["message","still here"]`)
			MustRecvText(t, c, `42["message-back","still here"]`)
		})
	})
	t.Run("ErrPollDuringUpgrade", func(t *testing.T) {
		// A GET sent after "2probe" (a client that did not pause polling)
		// is held until the upgrade ends, then refused like any GET after
		// the upgrade.
		sid := MustOpenPolling(t, base).SID
		c, status := DialWS(t, wsURL(base, sid), true)
		if c == nil {
			t.Fatalf("upgrade refused: %d", status)
		}
		c.Send(t, "2probe")
		MustRecvText(t, c, "3probe")
		got := make(chan int, 1)
		go func() {
			st, _, _ := MustDo(t, "GET", pollURL(base, sid), "")
			got <- st
		}()
		c.Send(t, "5")
		select {
		case st := <-got:
			if st != 400 {
				t.Fatalf("GET during the upgrade: %d, want 400", st)
			}
		case <-time.After(wait):
			t.Fatal("GET during the upgrade never answered")
		}
	})
	t.Run("ErrBadProbe", func(t *testing.T) {
		sid := MustOpenPolling(t, base).SID
		c, _ := DialWS(t, wsURL(base, sid), true)
		c.Send(t, "5") // upgrade without probe
		c.WaitClosed(t)
	})
}

func TestEngineMaxPayload(t *testing.T) {
	// A patient server: a 1 MB polling POST on a loaded machine may take
	// longer than the suite's 200 ms ping timeout.
	opts := socketiotest.Options()
	opts.EngineIO.PingTimeout = 10 * time.Second
	base := MustStart(t, socketiotest.NewServer(opts, 0))

	t.Run("ErrPollingTooLarge", func(t *testing.T) {
		sid := MustOpenPolling(t, base).SID
		if st, _, _ := MustDo(t, "POST", pollURL(base, sid), "4"+strings.Repeat("a", 1_000_000)); st != 413 {
			t.Fatalf("oversized POST: %d, want 413", st)
		}
	})
	t.Run("OKPollingAtLimit", func(t *testing.T) {
		sid := MustOpenPolling(t, base).SID
		body := strings.Repeat("6\x1e", 499_999) + "6" // 999,999 bytes of noops
		if st, _, _ := MustDo(t, "POST", pollURL(base, sid), body); st != 200 {
			t.Fatalf("POST under maxPayload: %d", st)
		}
	})
	t.Run("ErrWebSocketTooLarge", func(t *testing.T) {
		c := MustDialWS(t, base)
		// The server may reset the connection mid-write; only the close matters.
		_ = c.conn.WriteString("4" + strings.Repeat("a", 1_000_001))
		c.WaitClosed(t)
	})
}

// TestEngineHeartbeatSlowHandler checks that a pong waiting unread behind
// an event the application is still handling (a send waiting for its
// commit) does not end the session: the pong deadline passes during the
// handler and is given again once the handler returns. The barrier that
// the deadline has passed is a second session, pinged after the first and
// left unanswered: once the server closed it, the first session's pong
// deadline is behind us too.
func TestEngineHeartbeatSlowHandler(t *testing.T) {
	opts := socketiotest.Options()
	opts.EngineIO.PingInterval = 100 * time.Millisecond
	opts.EngineIO.PingTimeout = 2 * time.Second // patient once the handler returns
	opts.ConnectTimeout = time.Minute           // the control session ends on its ping timeout alone
	sio := socketiotest.NewServer(opts, 0)
	entered, release := make(chan struct{}, 2), make(chan struct{})
	sio.Of("/").On("slow", func(*socketio.Socket, socketio.Args, socketio.AckFunc) {
		entered <- struct{}{}
		<-release
	})
	base := MustStart(t, sio)
	var held sync.WaitGroup
	t.Cleanup(func() { close(release); held.Wait() })

	transports(t, base, func(t *testing.T, c client) {
		mustConnect(t, c, "")
		if p, ok := c.(*pollClient); ok {
			// The POST is answered once the handler returns.
			held.Add(1)
			go func() {
				defer held.Done()
				if st := p.post(`42["slow"]`); st != 200 {
					t.Errorf("POST of the slow event: status %d", st)
				}
			}()
		} else {
			c.Send(t, `42["slow"]`)
		}
		<-entered
		// The client answers the next ping at once; the server reads the
		// answer only after the handler.
		control, _ := DialWS(t, wsURL(base, ""), false)
		control.Recv(t) // open
		MustRecvText(t, control, "2")
		control.WaitClosed(t)
		select {
		case <-entered:
			t.Fatal("a second slow event")
		default:
		}
		release <- struct{}{}
		c.Send(t, `42["message","still there"]`)
		MustRecvText(t, c, `42["message-back","still there"]`)
	})
}
