package server_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/server"
)

// TestBodyTimeout checks that a client trickling a request body is cut off
// after BodyTimeout, on an unauthenticated route and on a Socket.IO polling
// POST, while normal requests (and a long-polling GET, which has no body)
// are not affected.
func TestBodyTimeout(t *testing.T) {
	srv := apitest.MustStart(t, "sqlite", func(c *server.Config) { c.BodyTimeout = time.Second })
	ann := apitest.Register(t, srv.URL(), "ann") // a normal body arrives in time

	trickle := func(t *testing.T, requestLine string) {
		t.Helper()
		conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL(), "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n{", requestLine)
		stop := make(chan struct{})
		defer close(stop)
		go func() { // a byte every 100 ms: the body would take more than 3 minutes
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}()
		start := time.Now()
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("trickled body still being read after %s", time.Since(start).Round(time.Second))
		}
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Fatalf("trickled body answered %d", resp.StatusCode)
			}
		}
	}
	t.Run("Login", func(t *testing.T) { trickle(t, "POST /api/auth/login") })
	t.Run("Polling", func(t *testing.T) {
		resp, err := http.Get(srv.URL() + "/socket.io/?EIO=4&transport=polling")
		if err != nil {
			t.Fatal(err)
		}
		var open string
		fmt.Fscan(resp.Body, &open)
		resp.Body.Close()
		i := strings.Index(open, `"sid":"`)
		if i < 0 {
			t.Fatalf("handshake = %q", open)
		}
		sid := open[i+7:]
		sid = sid[:strings.IndexByte(sid, '"')]
		trickle(t, "POST /socket.io/?EIO=4&transport=polling&sid="+sid)
	})
	ann.Must(t, 200, "GET", "/api/users/me", nil) // the server still serves
}
