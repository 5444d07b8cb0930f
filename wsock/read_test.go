package wsock_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/parley-chat/parley/wsock"
)

// event is what a server-side Handler saw.
type event struct {
	t    wsock.MessageType
	data string
	err  error // set for OnClose
	end  bool  // OnClose
}

// eventLog is a Handler that records what it is called with, and checks
// that calls never overlap and OnClose comes once, last.
type eventLog struct {
	mu     sync.Mutex
	busy   bool
	closed bool
	ch     chan event
	t      testing.TB
	echo   bool
}

func newEventLog(t testing.TB, echo bool) *eventLog {
	return &eventLog{ch: make(chan event, 1024), t: t, echo: echo}
}

func (l *eventLog) enter() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy || l.closed {
		l.t.Errorf("handler called concurrently or after OnClose")
	}
	l.busy = true
}

func (l *eventLog) leave(end bool) {
	l.mu.Lock()
	l.busy = false
	l.closed = l.closed || end
	l.mu.Unlock()
}

func (l *eventLog) OnMessage(c *wsock.Conn, t wsock.MessageType, data []byte) {
	l.enter()
	defer l.leave(false)
	if l.echo {
		c.Send(t, data)
	}
	l.ch <- event{t: t, data: string(data)}
}

func (l *eventLog) OnClose(_ *wsock.Conn, err error) {
	l.enter()
	defer l.leave(true)
	l.ch <- event{err: err, end: true}
}

func (l *eventLog) next(t *testing.T) event {
	t.Helper()
	select {
	case e := <-l.ch:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event from the server within 10 s")
	}
	return event{}
}

// serve starts a server whose connections use h, started at once, and
// returns its ws:// URL and the server-side connections as they come.
func serve(t *testing.T, opts wsock.Options, h func() wsock.Handler) (string, chan *wsock.Conn) {
	t.Helper()
	up := wsock.NewUpgrader(opts)
	conns := make(chan *wsock.Conn, 1024)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, h())
		if err != nil {
			return
		}
		c.Start()
		conns <- c
	}))
	t.Cleanup(ts.Close)
	return "ws" + strings.TrimPrefix(ts.URL, "http"), conns
}

// rawClient is a WebSocket client written byte by byte, to send what a
// library would refuse to.
type rawClient struct {
	net.Conn
	br *bufio.Reader
}

// dialRaw opens a TCP connection and sends the opening handshake followed
// by first (in the same write), then reads the 101.
func dialRaw(t testing.TB, url string, first []byte) *rawClient {
	t.Helper()
	host := strings.TrimPrefix(url, "ws://")
	nc, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	req := "GET / HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := nc.Write(append([]byte(req), first...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("handshake answered %d, accept %q", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	return &rawClient{Conn: nc, br: br}
}

// frame encodes a client frame; mask=false makes an invalid one.
func frame(fin bool, op byte, payload []byte, mask bool) []byte {
	b := []byte{op, 0}
	if fin {
		b[0] |= 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b[1] = byte(n)
	case n <= 0xFFFF:
		b[1] = 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] = 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !mask {
		return append(b, payload...)
	}
	b[1] |= 0x80
	key := []byte{1, 2, 3, 4}
	b = append(b, key...)
	for i, c := range payload {
		b = append(b, c^key[i&3])
	}
	return b
}

// readFrame reads one server frame (servers do not mask).
func (c *rawClient) readFrame(t *testing.T) (op byte, payload []byte) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	n := int(h[1] & 0x7F)
	switch n {
	case 126:
		var l [2]byte
		_, _ = io.ReadFull(c.br, l[:])
		n = int(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		_, _ = io.ReadFull(c.br, l[:])
		n = int(binary.BigEndian.Uint64(l[:]))
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		t.Fatalf("reading a payload: %v", err)
	}
	return h[0] & 0x0F, payload
}

// expectClose reads frames until a close frame and returns its code, then
// checks that the server closes the TCP connection.
func (c *rawClient) expectClose(t *testing.T) uint16 {
	t.Helper()
	for {
		op, p := c.readFrame(t)
		if op != 0x8 {
			continue
		}
		code := uint16(0)
		if len(p) >= 2 {
			code = binary.BigEndian.Uint16(p)
		}
		if _, err := c.br.ReadByte(); err == nil {
			t.Fatal("data after the close frame")
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the server did not close the connection after its close frame")
		}
		return code
	}
}

// TestReadProtocol checks, against a raw client, that the reader accepts
// what RFC 6455 allows (fragments with control frames between them, frames
// sent with the handshake) and fails the connection with the right close
// code otherwise.
func TestReadProtocol(t *testing.T) {
	var cur atomic.Pointer[eventLog]
	url, _ := serve(t, wsock.Options{ReadLimit: 1000}, func() wsock.Handler { return cur.Load() })
	for _, tc := range []struct {
		name  string
		send  []byte
		msgs  []string // text messages the handler must see
		pong  string   // payload of the pong expected first, if any
		code  uint16   // close code expected from the server
		cause func(error) bool
	}{
		{name: "OKFragmentsAndPing", send: bytes.Join([][]byte{
			frame(false, 1, []byte("he"), true),
			frame(true, 9, []byte("ping!"), true),
			frame(true, 0, []byte("llo"), true),
			frame(true, 1, bytes.Repeat([]byte("x"), 1000), true),
			frame(true, 8, []byte{0x03, 0xE9, 'b', 'y', 'e'}, true),
		}, nil), msgs: []string{"hello", strings.Repeat("x", 1000)}, pong: "ping!", code: 1000,
			cause: func(err error) bool {
				var ce *gws.CloseError
				return errors.As(err, &ce) && ce.Code == 1001 && string(ce.Reason) == "bye"
			}},
		{name: "OKCloseEchoesAppCode", send: frame(true, 8, []byte{0x0F, 0xA0}, true), code: 4000,
			cause: func(err error) bool { var ce *gws.CloseError; return errors.As(err, &ce) && ce.Code == 4000 }},
		{name: "ErrReservedCloseCode", send: frame(true, 8, []byte{0x03, 0xED}, true), code: 1002,
			cause: func(err error) bool { var ce *gws.CloseError; return errors.As(err, &ce) && ce.Code == 1005 }},
		{name: "ErrUnmasked", send: frame(true, 1, []byte("x"), false), code: 1002, cause: isProtocolErr},
		{name: "ErrTooLarge", send: frame(true, 2, make([]byte, 1001), true), code: 1009, cause: isProtocolErr},
		{name: "ErrFragmentsTooLarge", send: bytes.Join([][]byte{
			frame(false, 2, make([]byte, 600), true),
			frame(true, 0, make([]byte, 600), true),
		}, nil), code: 1009, cause: isProtocolErr},
		{name: "ErrFragmentedPing", send: frame(false, 9, nil, true), code: 1002, cause: isProtocolErr},
		{name: "ErrContinuation", send: frame(true, 0, []byte("x"), true), code: 1002, cause: isProtocolErr},
		{name: "OKUTF8", send: bytes.Join([][]byte{
			frame(true, 1, []byte("h\u00e9llo \u4e16\u754c \U0001F600"), true),
			frame(true, 8, []byte{0x03, 0xE8}, true),
		}, nil), msgs: []string{"h\u00e9llo \u4e16\u754c \U0001F600"}, code: 1000,
			cause: func(err error) bool { var ce *gws.CloseError; return errors.As(err, &ce) && ce.Code == 1000 }},
		{name: "ErrNotUTF8", send: frame(true, 1, []byte("ok\xff"), true), code: 1007, cause: isProtocolErr},
		// A character split across fragments is valid once reassembled; a
		// truncated one is not.
		{name: "OKUTF8AcrossFragments", send: bytes.Join([][]byte{
			frame(false, 1, []byte("\xe4\xb8"), true),
			frame(true, 0, []byte("\x96"), true),
			frame(true, 8, []byte{0x03, 0xE8}, true),
		}, nil), msgs: []string{"\u4e16"}, code: 1000,
			cause: func(err error) bool { var ce *gws.CloseError; return errors.As(err, &ce) && ce.Code == 1000 }},
		{name: "ErrCloseReasonNotUTF8", send: frame(true, 8, []byte{0x03, 0xE8, 0xc3}, true), code: 1007,
			cause: func(err error) bool { var ce *gws.CloseError; return errors.As(err, &ce) && ce.Code == 1000 }},
		{name: "ErrTruncatedUTF8", send: frame(true, 1, []byte("\xe4\xb8"), true), code: 1007, cause: isProtocolErr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := newEventLog(t, false)
			cur.Store(log)
			// The frames go out in the handshake's own write: they reach the
			// server in net/http's buffer, the first thing it parses.
			c := dialRaw(t, url, tc.send)
			if tc.pong != "" {
				if op, p := c.readFrame(t); op != 0xA || string(p) != tc.pong {
					t.Fatalf("got frame %x %q, want pong %q", op, p, tc.pong)
				}
			}
			if code := c.expectClose(t); code != tc.code {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
			for _, m := range tc.msgs {
				if e := log.next(t); e.end || e.t != wsock.Text || e.data != m {
					t.Fatalf("got %+v, want message of %d bytes", e, len(m))
				}
			}
			if e := log.next(t); !e.end || !tc.cause(e.err) {
				t.Fatalf("got %+v, want OnClose with the cause", e)
			}
		})
	}
}

// echo is a Handler sending each message back.
type echo struct{}

func (echo) OnMessage(c *wsock.Conn, t wsock.MessageType, data []byte) { c.Send(t, data) }
func (echo) OnClose(*wsock.Conn, error)                                {}

func isProtocolErr(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "wsock: ") }

// TestEcho checks messages of every length encoding, sent one by one and
// pipelined, through a real client, so that frames split across reads and
// reads holding many frames are both parsed.
func TestEcho(t *testing.T) {
	log := newEventLog(t, true)
	url, _ := serve(t, wsock.Options{QueueSize: 4096}, func() wsock.Handler { return log })
	rec := newRecorder()
	client, _ := dial(t, url, "", rec)
	go client.ReadLoop()
	var want []string
	for i, n := range []int{0, 1, 125, 126, 4000, 65535, 65536, 300_000, 17, 1 << 20} {
		m := strings.Repeat(string(rune('a'+i)), n)
		want = append(want, m)
		if err := client.WriteString(m); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 500 {
		m := fmt.Sprintf("pipelined %d", i)
		want = append(want, m)
		client.WriteAsync(gws.OpcodeText, []byte(m), nil)
	}
	got := rec.waitFor(t, len(want))
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("echo %d has %d bytes, want %d", i, len(got[i]), len(want[i]))
		}
	}
}

// TestCloseIdle checks that a connection closed by the server while idle
// (nothing to read: no goroutine is reading it) still reaches OnClose,
// for CloseNow, Close and a peer that vanishes.
func TestCloseIdle(t *testing.T) {
	var cur atomic.Pointer[eventLog]
	url, conns := serve(t, wsock.Options{}, func() wsock.Handler { return cur.Load() })
	for _, tc := range []struct {
		name  string
		close func(c *wsock.Conn, raw *rawClient)
		code  uint16 // close code the client gets, 0 for none
		cause error
	}{
		{"CloseNow", func(c *wsock.Conn, _ *rawClient) { c.CloseNow() }, 0, net.ErrClosed},
		{"Close", func(c *wsock.Conn, _ *rawClient) { c.Close() }, 1000, nil},
		{"PeerGone", func(_ *wsock.Conn, raw *rawClient) { _ = raw.Close() }, 0, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := newEventLog(t, false)
			cur.Store(log)
			raw := dialRaw(t, url, nil)
			c := <-conns
			if !c.Send(wsock.Text, []byte("hi")) {
				t.Fatal("Send refused")
			}
			if op, p := raw.readFrame(t); op != 1 || string(p) != "hi" {
				t.Fatalf("got %x %q", op, p)
			}
			tc.close(c, raw)
			if tc.code != 0 {
				if code := raw.expectClose(t); code != tc.code {
					t.Fatalf("close code %d, want %d", code, tc.code)
				}
			}
			e := log.next(t)
			if !e.end || (tc.cause != nil && !errors.Is(e.err, tc.cause)) {
				t.Fatalf("got %+v, want OnClose(%v)", e, tc.cause)
			}
			if c.Send(wsock.Text, []byte("late")) {
				t.Fatal("Send after close returned true")
			}
		})
	}
}

// TestFrozenPeer checks that a peer that completes the handshake and then
// sends nothing, not even a pong, is pinged and then closed.
func TestFrozenPeer(t *testing.T) {
	log := newEventLog(t, false)
	url, _ := serve(t, wsock.Options{PingInterval: 50 * time.Millisecond, PingTimeout: 300 * time.Millisecond},
		func() wsock.Handler { return log })
	raw := dialRaw(t, url, nil)
	if op, _ := raw.readFrame(t); op != 0x9 {
		t.Fatalf("first frame %x, want a ping", op)
	}
	e := log.next(t)
	if !e.end || !errors.Is(e.err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %+v, want OnClose with a timeout", e)
	}
}

// slowHandler holds the message "slow" until release is closed, as a send
// waiting for its commit holds its connection's reader, and echoes others.
type slowHandler struct{ release chan struct{} }

func (h slowHandler) OnMessage(c *wsock.Conn, t wsock.MessageType, data []byte) {
	if string(data) == "slow" {
		<-h.release
		return
	}
	c.Send(t, data)
}

func (slowHandler) OnClose(*wsock.Conn, error) {}

// TestSlowHandlerNotFrozen checks that the time a handler holds the
// connection does not count as the peer's silence: the peer's frames wait
// unread meanwhile. Pings keep coming while the handler holds "slow"; the
// 15th is sent at least 15 PingIntervals after the peer's last frame, past
// PingInterval+PingTimeout, when a peer taken for frozen would have been
// closed instead. Once released, the connection still answers.
func TestSlowHandlerNotFrozen(t *testing.T) {
	h := slowHandler{release: make(chan struct{})}
	url, _ := serve(t, wsock.Options{PingInterval: 20 * time.Millisecond, PingTimeout: 200 * time.Millisecond},
		func() wsock.Handler { return h })
	release := sync.OnceFunc(func() { close(h.release) })
	t.Cleanup(release) // before the server's: it waits for the handler
	raw := dialRaw(t, url, frame(true, 1, []byte("slow"), true))
	for i := 0; i < 15; i++ {
		if op, p := raw.readFrame(t); op != 0x9 {
			t.Fatalf("frame %d: %x %q while the handler held the connection, want a ping", i, op, p)
		}
	}
	if _, err := raw.Write(frame(true, 1, []byte("after"), true)); err != nil {
		t.Fatal(err)
	}
	release()
	for {
		op, p := raw.readFrame(t)
		if op == 0x9 {
			continue
		}
		if op != 1 || string(p) != "after" {
			t.Fatalf("got %x %q, want the echo of \"after\"", op, p)
		}
		return
	}
}

// goroutinesAbove returns how many goroutines run beyond base once done
// accepts that number, or after 10 s. The count changes with no event to
// wait on (net/http's and the poller's goroutines end on their own), so it
// is polled; the pause only paces the polling, the deadline bounds it.
func goroutinesAbove(base int, done func(extra int) bool) int {
	extra := runtime.NumGoroutine() - base
	for deadline := time.Now().Add(10 * time.Second); !done(extra) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		extra = runtime.NumGoroutine() - base
	}
	return extra
}

// TestIdleConnsNoGoroutines checks that idle connections own no
// goroutine: 1,000 of them add a handful (the poller) to the count, not
// one each, and still answer; and that the poller goes away with them.
func TestIdleConnsNoGoroutines(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("connections are polled on Linux only")
	}
	const n = 1000
	url, conns := serve(t, wsock.Options{PingInterval: time.Hour}, func() wsock.Handler { return echo{} })
	base := runtime.NumGoroutine()
	clients := make([]*rawClient, n)
	for i := range clients {
		clients[i] = dialRaw(t, url, nil)
		<-conns
	}
	// The net/http goroutines of the handshakes end once their handlers
	// returned; wait for that, for a few seconds at most.
	extra := goroutinesAbove(base, func(extra int) bool { return extra < 20 })
	if extra >= 20 {
		t.Fatalf("%d idle connections added %d goroutines", n, extra)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		if _, err := clients[i].Write(frame(true, 1, []byte("still there"), true)); err != nil {
			t.Fatal(err)
		}
		if op, p := clients[i].readFrame(t); op != 1 || string(p) != "still there" {
			t.Fatalf("client %d got %x %q", i, op, p)
		}
	}
	// Once the last connection is gone the poller stops too.
	for _, c := range clients {
		_ = c.Close()
	}
	if extra = goroutinesAbove(base, func(extra int) bool { return extra <= 0 }); extra <= 0 {
		return
	}
	t.Fatalf("%d goroutines more than before the connections, after they all closed", extra)
}
