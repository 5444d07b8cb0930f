package socketio_test

import (
	"encoding/json"
	"testing"

	"github.com/parley-chat/parley/socketio"
	"github.com/parley-chat/parley/socketio/socketiotest"
)

// TestReleaseRequest checks that a connect hook can read the handshake
// request and then drop it, and that the socket works on without it.
func TestReleaseRequest(t *testing.T) {
	srv := socketio.NewServer(socketiotest.Options())
	type seen struct {
		token    string
		released bool
	}
	hooks := make(chan seen, 4)
	srv.Of("/").OnConnect(func(sock *socketio.Socket, _ json.RawMessage) error {
		s := seen{token: sock.Request().URL.Query().Get("token")}
		sock.ReleaseRequest()
		s.released = sock.Request() == nil
		hooks <- s
		return sock.Emit("after", "release")
	})
	base := MustStart(t, srv)
	c, _ := DialWS(t, wsURL(base, "")+"&token=t1", true)
	c.Recv(t) // open
	c.Send(t, `40`)
	MustRecvText(t, c, `40{"sid":"*`)
	MustRecvText(t, c, `42["after","release"]`)
	if s := <-hooks; s.token != "t1" || !s.released {
		t.Fatalf("hook saw token %q, released %v", s.token, s.released)
	}
}
