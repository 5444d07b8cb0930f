// Package socketiotest builds the reference server of the official
// Socket.IO protocol test-suite, shared by cmd/socketio-testserver and the
// black-box tests of package socketio.
package socketiotest

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/parley-chat/parley/engineio"
	"github.com/parley-chat/parley/socketio"
)

// Options returns the test-suite's server options: pingInterval 300 ms,
// pingTimeout 200 ms, maxPayload 1000000, CORS "*", and a 1 s connect
// timeout so "no handshake" cases end quickly.
func Options() socketio.Options {
	return socketio.Options{
		EngineIO: engineio.Options{
			PingInterval:   300 * time.Millisecond,
			PingTimeout:    200 * time.Millisecond,
			MaxPayload:     1_000_000,
			AllowedOrigins: []string{"*"},
		},
		ConnectTimeout: time.Second,
	}
}

// NewServer returns the test-suite server built on opts: namespaces "/" and
// "/custom" emit "auth" with the handshake auth on connect; "/" echoes
// "message" as "message-back", answers "message-with-ack" with its args and
// closes the connection on "drop-connection".
//
// With authDelay > 0 the "auth" emit is written that long after the
// CONNECT answer instead of right behind it. The official suite needs this:
// its client attaches each "message" listener only once the previous one has
// fired, and its ws client fires every frame of one TCP read in the same
// turn, so an "auth" frame that arrives in the same read as the CONNECT
// answer is never seen. The stock Node server gets the same gap for free: it
// writes the emit on a later turn of its event loop. The order of packets
// is the same either way; only the harness waits.
func NewServer(opts socketio.Options, authDelay time.Duration) *socketio.Server {
	s := socketio.NewServer(opts)
	emitAuth := func(sock *socketio.Socket, auth json.RawMessage) error {
		if authDelay <= 0 {
			return sock.Emit("auth", auth)
		}
		time.AfterFunc(authDelay, func() { _ = sock.Emit("auth", auth) })
		return nil
	}
	main := s.Of("/")
	main.OnConnect(emitAuth)
	main.On("message", func(sock *socketio.Socket, args socketio.Args, _ socketio.AckFunc) {
		_ = sock.Emit("message-back", args.Values()...)
	})
	main.On("message-with-ack", func(_ *socketio.Socket, args socketio.Args, ack socketio.AckFunc) {
		if ack != nil {
			_ = ack(args.Values()...)
		}
	})
	// Not in the reference server: lets the interop test make the server
	// drop a connection and watch the client reconnect.
	main.On("drop-connection", func(sock *socketio.Socket, _ socketio.Args, _ socketio.AckFunc) {
		sock.CloseConn()
	})
	s.Of("/custom").OnConnect(emitAuth)
	return s
}

// Handler returns an http.Handler serving the test-suite server at
// /socket.io/.
func Handler(s *socketio.Server) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", s)
	return mux
}
