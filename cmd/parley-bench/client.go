package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/lxzan/gws"
)

// errClosed answers the acks still pending when a connection closes.
var errClosed = errors.New("connection closed")

// sioClient is one Socket.IO client connection to the default namespace
// over the WebSocket transport. Events and acks are handled on the
// connection's read goroutine, one at a time.
type sioClient struct {
	conn    *gws.Conn
	token   string
	onEvent func(name string, args []json.RawMessage)
	onRaw   func(payload []byte)

	ready     chan error    // the outcome of the namespace CONNECT, sent once
	readyOnce sync.Once     // guards ready
	closed    chan struct{} // closed when the connection is gone

	mu      sync.Mutex // guards the fields below; never held while calling callbacks
	nextID  int64
	pending map[int64]func(json.RawMessage, error)
	err     error // why the connection closed
}

// dialOptions says where and how to connect.
type dialOptions struct {
	base     *url.URL // http://127.0.0.1:8080
	token    string
	sourceIP net.IP        // local address to dial from; nil: any
	timeout  time.Duration // TCP, WebSocket and Socket.IO handshakes together
	// onEvent receives every server event; nil ignores them.
	onEvent func(name string, args []json.RawMessage)
	// onRaw, when set, receives instead the bytes of every event packet
	// without an ack id (`["name",{...}]`, aliasing the read buffer, valid
	// during the call), undecoded and unchecked: scenarios that receive
	// tens of thousands of events a second on the same cores as the server
	// pick out the one field they need.
	onRaw func(payload []byte)
}

// dialSIO connects and joins the default namespace with the token. It
// returns the server's CONNECT_ERROR message as an error when refused.
func dialSIO(ctx context.Context, o dialOptions) (*sioClient, error) {
	c := &sioClient{token: o.token, onEvent: o.onEvent, onRaw: o.onRaw, ready: make(chan error, 1), closed: make(chan struct{}),
		pending: map[int64]func(json.RawMessage, error){}}
	u := *o.base
	u.Scheme = map[string]string{"https": "wss"}[u.Scheme]
	if u.Scheme == "" {
		u.Scheme = "ws"
	}
	u.Path = "/socket.io/"
	u.RawQuery = "EIO=4&transport=websocket"
	dialer := &net.Dialer{Timeout: o.timeout}
	if o.sourceIP != nil {
		dialer.LocalAddr = &net.TCPAddr{IP: o.sourceIP}
	}
	conn, _, err := gws.NewClient(c, &gws.ClientOption{
		Addr:             u.String(),
		HandshakeTimeout: o.timeout,
		ReadBufferSize:   4096,
		NewDialer:        func() (gws.Dialer, error) { return dialer, nil },
	})
	if err != nil {
		return nil, err
	}
	c.conn = conn
	go conn.ReadLoop()
	t := time.NewTimer(o.timeout)
	defer t.Stop()
	select {
	case err = <-c.ready:
	case <-t.C:
		err = errors.New("socket.io handshake timed out")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the connection; pending acks get errClosed.
func (c *sioClient) Close() { c.conn.WriteClose(1000, nil) }

// Done is closed once the connection is gone.
func (c *sioClient) Done() <-chan struct{} { return c.closed }

// Err says why the connection closed (after Done).
func (c *sioClient) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Pending is the number of acks awaited.
func (c *sioClient) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// EmitAck sends event name with one JSON argument and calls cb once with
// the ack's first argument, or with an error if the connection closes
// first. cb runs on the read goroutine and must not block.
func (c *sioClient) EmitAck(name string, arg json.RawMessage, cb func(json.RawMessage, error)) error {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	id := c.nextID
	c.nextID++
	c.pending[id] = cb
	c.mu.Unlock()
	if err := c.conn.WriteMessage(gws.OpcodeText, appendEvent(nil, id, name, arg)); err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return err
	}
	return nil
}

func (c *sioClient) connected(err error) {
	c.readyOnce.Do(func() { c.ready <- err })
}

func (c *sioClient) OnOpen(*gws.Conn) {}

func (c *sioClient) OnPing(conn *gws.Conn, p []byte) { _ = conn.WritePong(p) }

func (c *sioClient) OnPong(*gws.Conn, []byte) {}

func (c *sioClient) OnClose(_ *gws.Conn, err error) {
	if err == nil {
		err = errClosed
	}
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	pending := c.pending
	c.pending = map[int64]func(json.RawMessage, error){}
	c.mu.Unlock()
	c.connected(fmt.Errorf("closed before connect: %w", err))
	for _, cb := range pending {
		cb(nil, errClosed)
	}
	close(c.closed)
}

func (c *sioClient) OnMessage(conn *gws.Conn, m *gws.Message) {
	defer m.Close()
	if m.Opcode != gws.OpcodeText {
		c.fail(conn, errors.New("binary frame from server"))
		return
	}
	b := m.Bytes()
	if len(b) == 0 {
		c.fail(conn, errPacket)
		return
	}
	switch b[0] {
	case eioOpen:
		if err := conn.WriteMessage(gws.OpcodeText, connectFrame(c.token)); err != nil {
			c.fail(conn, err)
		}
	case eioPing:
		_ = conn.WriteMessage(gws.OpcodeText, []byte{eioPong})
	case eioClose:
		conn.NetConn().Close()
	case eioNoop:
	case eioMessage:
		if c.onRaw != nil && len(b) > 2 && b[1] == sioEvent && b[2] == '[' {
			c.onRaw(b[2:])
			return
		}
		p, err := decodeSIO(b[1:])
		if err != nil {
			c.fail(conn, fmt.Errorf("%w: %.80q", err, b))
			return
		}
		c.dispatch(conn, p)
	default:
		c.fail(conn, fmt.Errorf("unknown Engine.IO packet %.80q", b))
	}
}

func (c *sioClient) dispatch(conn *gws.Conn, p sioPacket) {
	switch p.Type {
	case sioConnect:
		c.connected(nil)
	case sioConnectError:
		var e struct{ Message string }
		_ = json.Unmarshal(p.Data, &e)
		c.connected(fmt.Errorf("connect_error: %s", e.Message))
		conn.NetConn().Close()
	case sioDisconnect:
		conn.NetConn().Close()
	case sioEvent:
		name, args, err := eventArgs(p.Data)
		if err != nil {
			c.fail(conn, err)
			return
		}
		if c.onEvent != nil {
			c.onEvent(name, args)
		}
	case sioAck:
		var args []json.RawMessage
		if json.Unmarshal(p.Data, &args) != nil {
			c.fail(conn, errPacket)
			return
		}
		c.mu.Lock()
		cb := c.pending[p.ID]
		delete(c.pending, p.ID)
		c.mu.Unlock()
		if cb == nil {
			return // unknown id: nothing asked for it
		}
		var first json.RawMessage
		if len(args) > 0 {
			first = args[0]
		}
		cb(first, nil)
	}
}

func (c *sioClient) fail(conn *gws.Conn, err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	conn.NetConn().Close()
}
