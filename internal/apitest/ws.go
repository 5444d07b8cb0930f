package apitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"
)

// WS is a plain WebSocket (/ws) test client that records every frame.
type WS struct {
	tb     testing.TB
	conn   *gws.Conn
	mu     sync.Mutex
	frames []Frame
	closed chan struct{}
	notify chan struct{}

	contract *Contract
	calls    map[int64]string // ack id -> the event it answers
	faults   []string         // frames that do not conform, reported at cleanup
	done     bool             // the test ended; later frames are not checked
	allowed  map[string]bool  // events the test itself publishes, outside the contract
}

// AllowEvent exempts events called name from the contract check: events a
// test publishes on the bus itself, which no server code sends.
func (c *WS) AllowEvent(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.allowed[name] = true
}

// Frame is one received frame: an event or an ack.
type Frame struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
	Ack   *int64          `json:"ack"`
}

func (c *WS) OnOpen(*gws.Conn)                {}
func (c *WS) OnPing(conn *gws.Conn, p []byte) { _ = conn.WritePong(p) }
func (c *WS) OnPong(*gws.Conn, []byte)        {}
func (c *WS) OnClose(*gws.Conn, error)        { close(c.closed) }
func (c *WS) OnMessage(_ *gws.Conn, m *gws.Message) {
	var f Frame
	if err := json.Unmarshal(m.Bytes(), &f); err != nil {
		c.tb.Errorf("frame is not JSON: %q", m.Bytes())
	}
	var fault error
	switch {
	case f.Ack != nil:
		c.mu.Lock()
		event, ok := c.calls[*f.Ack]
		c.mu.Unlock()
		if ok {
			fault = c.contract.CheckAck(event, f.Data)
		}
	case f.Event != "":
		c.mu.Lock()
		allowed := c.allowed[f.Event]
		c.mu.Unlock()
		if !allowed {
			fault = c.contract.CheckEvent(f.Event, f.Data)
		}
	}
	m.Close()
	c.mu.Lock()
	c.frames = append(c.frames, f)
	if fault != nil && !c.done {
		c.faults = append(c.faults, fault.Error())
	}
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// DialWS connects to base's /ws with token, or fails the test. It returns
// once the server has registered the socket (the hub does that just after
// answering the upgrade), proven by the ack of a probe frame with id -1, so
// a test's next action cannot outrun the registration.
func DialWS(tb testing.TB, base, token string) *WS {
	tb.Helper()
	c, _, err := TryDialWS(tb, base, token, nil)
	if err != nil {
		tb.Fatalf("dial /ws: %v", err)
	}
	c.Call(tb, "_probe", nil, -1)
	return c
}

// TryDialWS connects to base's /ws with token and extra request headers; on
// failure it returns the server's HTTP response, if there was one.
func TryDialWS(tb testing.TB, base, token string, header http.Header) (*WS, *http.Response, error) {
	return TryDialWSQuery(tb, base, "token="+token, header)
}

// TryDialWSQuery connects to base's /ws with the given query string (e.g.
// "ticket=..."); on failure it returns the server's HTTP response, if any.
func TryDialWSQuery(tb testing.TB, base, query string, header http.Header) (*WS, *http.Response, error) {
	ct, err := LoadContract(&http.Client{Timeout: 20 * time.Second}, base)
	if err != nil {
		return nil, nil, fmt.Errorf("contract: %v", err)
	}
	c := &WS{tb: tb, closed: make(chan struct{}), notify: make(chan struct{}, 1), contract: ct, calls: map[int64]string{}, allowed: map[string]bool{}}
	conn, resp, err := gws.NewClient(c, &gws.ClientOption{Addr: "ws" + strings.TrimPrefix(base, "http") + "/ws?" + query,
		RequestHeader: header})
	if err != nil {
		return nil, resp, err
	}
	c.conn = conn
	go conn.ReadLoop()
	tb.Cleanup(func() {
		conn.NetConn().Close()
		c.mu.Lock()
		c.done = true
		faults := c.faults
		c.mu.Unlock()
		for _, f := range faults {
			tb.Errorf("contract: /ws frame: %s", f)
		}
	})
	return c, resp, nil
}

// Closed is closed once the server closed the connection.
func (c *WS) Closed() <-chan struct{} { return c.closed }

// SendRaw sends one text frame as is.
func (c *WS) SendRaw(tb testing.TB, data []byte) {
	tb.Helper()
	if err := c.conn.WriteMessage(gws.OpcodeText, data); err != nil {
		tb.Fatal(err)
	}
}

// TrySendRaw sends one text frame as is and returns the write error, for
// tests where the server may already have closed the connection.
func (c *WS) TrySendRaw(data []byte) error { return c.conn.WriteMessage(gws.OpcodeText, data) }

// Close drops the connection.
func (c *WS) Close() { c.conn.NetConn().Close() }

// Frames returns a copy of every frame received so far.
func (c *WS) Frames() []Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Frame(nil), c.frames...)
}

// Events returns the data of every received event called name.
func (c *WS) Events(name string) []json.RawMessage {
	var out []json.RawMessage
	for _, f := range c.Frames() {
		if f.Event == name {
			out = append(out, f.Data)
		}
	}
	return out
}

// WaitFor waits up to 10 s for a frame that satisfies match.
func (c *WS) WaitFor(tb testing.TB, match func(Frame) bool) Frame {
	tb.Helper()
	deadline := time.After(10 * time.Second)
	for {
		for _, f := range c.Frames() {
			if match(f) {
				return f
			}
		}
		select {
		case <-c.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			tb.Fatalf("no matching frame among %d", len(c.Frames()))
		}
	}
}

// WaitEvent waits for an event called name whose data contains substr.
func (c *WS) WaitEvent(tb testing.TB, name, substr string) json.RawMessage {
	tb.Helper()
	return c.WaitFor(tb, func(f Frame) bool { return f.Event == name && strings.Contains(string(f.Data), substr) }).Data
}

// Call sends an event with an ack id and waits for the ack's envelope.
func (c *WS) Call(tb testing.TB, event string, data any, id int64) json.RawMessage {
	tb.Helper()
	c.Send(tb, event, data, id)
	return c.WaitAck(tb, id)
}

// Send sends an event with an ack id without waiting for the ack.
func (c *WS) Send(tb testing.TB, event string, data any, id int64) {
	tb.Helper()
	c.mu.Lock()
	c.calls[id] = event
	c.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"event": event, "data": data, "id": id})
	if err := c.conn.WriteMessage(gws.OpcodeText, b); err != nil {
		tb.Fatal(err)
	}
}

// WaitAck waits up to 10 s for the ack of id and returns its envelope.
func (c *WS) WaitAck(tb testing.TB, id int64) json.RawMessage {
	tb.Helper()
	return c.WaitFor(tb, func(f Frame) bool { return f.Ack != nil && *f.Ack == id }).Data
}
