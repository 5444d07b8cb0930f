package realtime

import (
	"encoding/json"
	"errors"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/engineio"
	"github.com/parley-chat/parley/socketio"
)

// errUnauthorized is the CONNECT_ERROR message of API.md §12.
var errUnauthorized = errors.New("unauthorized")

// onSocketIOConnect authenticates a CONNECT. The connection may close
// while it runs (a second POST, a ping timeout): OnDisconnect is set only
// after the add and runs at once if the socket already left, so no hub
// entry outlives its socket.
func (h *Hub) onSocketIOConnect(sock *socketio.Socket, auth json.RawMessage) error {
	token := tokenOf(auth, sock.Request())
	id, err := h.authenticate(token)
	// Nothing else needs the handshake request: an idle socket need not
	// keep its headers and URL for life.
	sock.ReleaseRequest()
	if err != nil {
		h.authFailed("socketio", err)
		return errUnauthorized
	}
	c := &client{id: id, sio: sock}
	sock.SetData(c)
	if err := h.add(c); err != nil {
		return err
	}
	sock.OnDisconnect(func(reason string) { h.remove(c, sioReason(reason)) })
	if !h.confirm(c) {
		h.remove(c, "revoked")
		return errUnauthorized
	}
	return nil
}

// onSocketIOEvent answers a client event; the ack, when the client asked
// for one, carries the same envelope as REST.
func (h *Hub) onSocketIOEvent(name string) socketio.EventHandler {
	return func(sock *socketio.Socket, args socketio.Args, ack socketio.AckFunc) {
		c, ok := sock.Data().(*client)
		if !ok {
			return
		}
		var data json.RawMessage
		if args.Len() > 0 {
			data = args.JSON[0]
		}
		h.dispatch(c, name, data, func(reply parley.Reply) {
			if ack != nil {
				_ = ack(reply)
			}
		})
	}
}

// sioReason names why a Socket.IO socket left, for logs and metrics.
func sioReason(reason string) string {
	switch reason {
	case socketio.ReasonClientDisconnect:
		return "client"
	case engineio.ReasonTransportClose:
		return "transport_close"
	case engineio.ReasonTransportError:
		return "transport_error"
	case engineio.ReasonPingTimeout:
		return "ping_timeout"
	case engineio.ReasonParseError:
		return "parse_error"
	}
	return "other"
}
