package socketio_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/parley-chat/parley/engineio"
	"github.com/parley-chat/parley/socketio"
	"github.com/parley-chat/parley/socketio/socketiotest"
)

// wait bounds every blocking step of the protocol tests.
const wait = 20 * time.Second

// MustStart serves sio (or the test-suite server when nil) on 127.0.0.1:0
// and returns its base URL ("http://127.0.0.1:port").
func MustStart(tb testing.TB, sio *socketio.Server) string {
	tb.Helper()
	if sio == nil {
		sio = socketiotest.NewServer(socketiotest.Options(), 0)
	}
	ts := httptest.NewServer(socketiotest.Handler(sio))
	tb.Cleanup(func() {
		sio.Close()
		ts.CloseClientConnections()
		ts.Close()
	})
	return ts.URL
}

var httpClient = &http.Client{Timeout: wait}

// MustDo sends one HTTP request and returns status and body.
func MustDo(tb testing.TB, method, url, body string, header ...string) (int, string, http.Header) {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func pollURL(base, sid string) string {
	u := base + "/socket.io/?EIO=4&transport=polling"
	if sid != "" {
		u += "&sid=" + sid
	}
	return u
}

func wsURL(base, sid string) string {
	u := "ws" + strings.TrimPrefix(base, "http") + "/socket.io/?EIO=4&transport=websocket"
	if sid != "" {
		u += "&sid=" + sid
	}
	return u
}

type openPacket struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}

// MustOpenPolling performs a polling handshake and returns the open packet.
func MustOpenPolling(tb testing.TB, base string) openPacket {
	tb.Helper()
	status, body, _ := MustDo(tb, "GET", pollURL(base, ""), "")
	if status != 200 || !strings.HasPrefix(body, "0") {
		tb.Fatalf("handshake: %d %q", status, body)
	}
	var op openPacket
	if err := json.Unmarshal([]byte(body[1:]), &op); err != nil {
		tb.Fatalf("open packet %q: %v", body, err)
	}
	return op
}

// msg is one received Engine.IO packet (text with its type char, or binary).
type msg struct {
	data   []byte
	binary bool
}

func (m msg) String() string {
	if m.binary {
		return "binary:" + string(m.data)
	}
	return string(m.data)
}

// client speaks raw Engine.IO over one transport; pings are answered
// automatically unless autoPong is off.
type client interface {
	Send(tb testing.TB, text string)
	SendBinary(tb testing.TB, data []byte)
	Recv(tb testing.TB) msg
	WaitClosed(tb testing.TB)
}

// wsClient is a raw WebSocket Engine.IO client.
type wsClient struct {
	conn     *gws.Conn
	in       chan msg
	closed   chan struct{}
	autoPong bool
}

func (c *wsClient) OnOpen(*gws.Conn)             {}
func (c *wsClient) OnPing(s *gws.Conn, p []byte) { _ = s.WritePong(p) }
func (c *wsClient) OnPong(*gws.Conn, []byte)     {}
func (c *wsClient) OnClose(*gws.Conn, error)     { close(c.closed) }
func (c *wsClient) OnMessage(s *gws.Conn, m *gws.Message) {
	defer m.Close()
	data := bytes.Clone(m.Bytes())
	bin := m.Opcode == gws.OpcodeBinary
	if c.autoPong && !bin && string(data) == "2" {
		_ = s.WriteString("3")
		return
	}
	select {
	case c.in <- msg{data, bin}:
	case <-time.After(wait):
	}
}

// DialWS opens a WebSocket; it returns the HTTP status and nil on refusal.
func DialWS(tb testing.TB, url string, autoPong bool, header ...string) (*wsClient, int) {
	tb.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	c := &wsClient{in: make(chan msg, 64), closed: make(chan struct{}), autoPong: autoPong}
	conn, resp, err := gws.NewClient(c, &gws.ClientOption{Addr: url, RequestHeader: h, HandshakeTimeout: wait})
	if err != nil {
		if resp != nil {
			return nil, resp.StatusCode
		}
		tb.Fatalf("dial %s: %v", url, err)
	}
	c.conn = conn
	go conn.ReadLoop()
	tb.Cleanup(func() { _ = conn.NetConn().Close() })
	return c, 101
}

// MustDialWS opens a WebSocket session and checks its open packet.
func MustDialWS(tb testing.TB, base string) *wsClient {
	tb.Helper()
	c, status := DialWS(tb, wsURL(base, ""), true)
	if c == nil {
		tb.Fatalf("websocket refused: %d", status)
	}
	if m := c.Recv(tb); !strings.HasPrefix(m.String(), `0{"sid":"`) {
		tb.Fatalf("first message %q, want open packet", m)
	}
	return c
}

func (c *wsClient) Send(tb testing.TB, text string) {
	tb.Helper()
	if err := c.conn.WriteString(text); err != nil {
		tb.Fatalf("send %q: %v", trunc(text), err)
	}
}

func (c *wsClient) SendBinary(tb testing.TB, data []byte) {
	tb.Helper()
	if err := c.conn.WriteMessage(gws.OpcodeBinary, data); err != nil {
		tb.Fatalf("send binary: %v", err)
	}
}

func (c *wsClient) Recv(tb testing.TB) msg {
	tb.Helper()
	select {
	case m := <-c.in:
		return m
	case <-c.closed:
		select {
		case m := <-c.in:
			return m
		default:
		}
		tb.Fatal("connection closed while waiting for a message")
	case <-time.After(wait):
		tb.Fatal("no message within", wait)
	}
	return msg{}
}

func (c *wsClient) WaitClosed(tb testing.TB) {
	tb.Helper()
	select {
	case <-c.closed:
	case <-time.After(wait):
		tb.Fatal("connection not closed within", wait)
	}
}

// pollClient is a raw long-polling Engine.IO client: a goroutine keeps one
// GET pending and answers pings; POSTs are serialised as the spec requires.
type pollClient struct {
	base, sid string
	postMu    sync.Mutex
	in        chan msg
	closed    chan struct{}
}

// MustOpenPollClient opens a polling session with a background poller.
func MustOpenPollClient(tb testing.TB, base string) *pollClient {
	tb.Helper()
	op := MustOpenPolling(tb, base)
	c := &pollClient{base: base, sid: op.SID, in: make(chan msg, 64), closed: make(chan struct{})}
	stop := make(chan struct{})
	tb.Cleanup(func() { close(stop) })
	go c.loop(stop)
	return c
}

func (c *pollClient) loop(stop chan struct{}) {
	defer close(c.closed)
	for {
		select {
		case <-stop:
			return
		default:
		}
		resp, err := httpClient.Get(pollURL(c.base, c.sid))
		if err != nil {
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return
		}
		packets, err := engineio.DecodePayload(body)
		if err != nil {
			return
		}
		for _, p := range packets {
			switch {
			case p.Binary:
				c.in <- msg{bytes.Clone(p.Data), true}
			case p.Type == engineio.PacketPing:
				go c.post("3")
			case p.Type == engineio.PacketNoop:
			case p.Type == engineio.PacketClose:
				return
			default:
				c.in <- msg{append([]byte{byte(p.Type)}, p.Data...), false}
			}
		}
	}
}

func (c *pollClient) post(body string) int {
	c.postMu.Lock()
	defer c.postMu.Unlock()
	resp, err := httpClient.Post(pollURL(c.base, c.sid), "text/plain", strings.NewReader(body))
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (c *pollClient) Send(tb testing.TB, text string) {
	tb.Helper()
	if st := c.post(text); st != 200 {
		tb.Fatalf("POST %q: status %d", trunc(text), st)
	}
}

func (c *pollClient) SendBinary(tb testing.TB, data []byte) {
	tb.Helper()
	var b []byte
	b = append(b, 'b')
	b = base64.StdEncoding.AppendEncode(b, data)
	if st := c.post(string(b)); st != 200 {
		tb.Fatalf("POST binary: status %d", st)
	}
}

func (c *pollClient) Recv(tb testing.TB) msg {
	tb.Helper()
	select {
	case m := <-c.in:
		return m
	case <-time.After(wait):
		tb.Fatal("no message within", wait)
	}
	return msg{}
}

func (c *pollClient) WaitClosed(tb testing.TB) {
	tb.Helper()
	select {
	case <-c.closed:
	case <-time.After(wait):
		tb.Fatal("session not closed within", wait)
	}
}

// transports runs f over a fresh WebSocket and a fresh polling client.
func transports(t *testing.T, base string, f func(t *testing.T, c client)) {
	t.Run("websocket", func(t *testing.T) { f(t, MustDialWS(t, base)) })
	t.Run("polling", func(t *testing.T) { f(t, MustOpenPollClient(t, base)) })
}

// MustRecvText receives one message and checks it is text equal to want
// (or, when want ends in "*", starts with it).
func MustRecvText(tb testing.TB, c client, want string) string {
	tb.Helper()
	m := c.Recv(tb)
	got := m.String()
	if m.binary {
		tb.Fatalf("got %s, want text %q", got, want)
	}
	if p, ok := strings.CutSuffix(want, "*"); ok {
		if !strings.HasPrefix(got, p) {
			tb.Fatalf("got %q, want prefix %q", got, p)
		}
		return got
	}
	if got != want {
		tb.Fatalf("got %q, want %q", got, want)
	}
	return got
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
