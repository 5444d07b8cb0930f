package wsock_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/parley-chat/parley/wsock"
)

func dial(t *testing.T, url string, origin string, h gws.Event) (*gws.Conn, int) {
	t.Helper()
	hdr := http.Header{}
	if origin != "" {
		hdr.Set("Origin", origin)
	}
	c, resp, err := gws.NewClient(h, &gws.ClientOption{Addr: url, RequestHeader: hdr, HandshakeTimeout: 3 * time.Second})
	if err != nil {
		if resp != nil {
			return nil, resp.StatusCode
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.NetConn().Close() })
	return c, 101
}

func TestUpgradeOrigin(t *testing.T) {
	up := wsock.NewUpgrader(wsock.Options{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := up.Upgrade(w, r, nil); err == nil {
			c.Start()
		}
	}))
	defer ts.Close()
	url := "ws" + strings.TrimPrefix(ts.URL, "http")
	for _, tc := range []struct {
		name, origin string
		status       int
	}{
		{"OKNoOrigin", "", 101},
		{"OKSameOrigin", ts.URL, 101},
		{"ErrCrossOrigin", "https://evil.example", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, status := dial(t, url, tc.origin, gws.BuiltinEventHandler{}); status != tc.status {
				t.Fatalf("status %d, want %d", status, tc.status)
			}
		})
	}
}

// serveNonReader starts a server with opts and a client that never reads,
// so the socket buffers fill; it returns the server's started Conn and
// where its close error will come.
func serveNonReader(t *testing.T, opts wsock.Options) (*wsock.Conn, <-chan error) {
	t.Helper()
	closed := make(chan error, 1)
	conns := make(chan *wsock.Conn, 1)
	opts.OnClose = func(_ *wsock.Conn, err error) { closed <- err }
	up := wsock.NewUpgrader(opts)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := up.Upgrade(w, r, nil); err == nil {
			c.Start()
			conns <- c
		}
	}))
	t.Cleanup(ts.Close)
	dial(t, "ws"+strings.TrimPrefix(ts.URL, "http"), "", gws.BuiltinEventHandler{}) // no read loop
	return <-conns, closed
}

// TestSendSlowReader checks that a peer that never reads is disconnected
// once its queue is full, while Send never blocks.
func TestSendSlowReader(t *testing.T) {
	c, closed := serveNonReader(t, wsock.Options{QueueSize: 8})
	payload := make([]byte, 64<<10)
	start := time.Now()
	sent := 0
	for i := 0; i < 10_000 && c.Send(wsock.Binary, payload); i++ {
		sent++
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Send blocked for %v", d)
	}
	if sent == 10_000 {
		t.Fatal("queue never overflowed")
	}
	select {
	case err := <-closed:
		if err != wsock.ErrQueueFull {
			t.Fatalf("close error %v, want ErrQueueFull", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("slow reader not disconnected")
	}
	if c.Send(wsock.Text, []byte("x")) {
		t.Fatal("Send after close returned true")
	}
}

// TestWriteTimeout checks that a write the peer never takes ends the
// connection within WriteTimeout (the deadline is moved only at half,
// see writeBatch), while its queue still has room.
func TestWriteTimeout(t *testing.T) {
	c, closed := serveNonReader(t, wsock.Options{WriteTimeout: 300 * time.Millisecond})
	payload := make([]byte, 1<<20)
	// More than loopback buffers take, less than the queue; Send refuses
	// once the timeout has closed the connection (on a slow machine,
	// before the last one).
	for i := 0; i < 16 && c.Send(wsock.Binary, payload); i++ {
	}
	select {
	case err := <-closed:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("close error %v, want a write timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write the peer never took did not time out")
	}
}
