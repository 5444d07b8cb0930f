package realtime

import (
	"encoding/json"
	"errors"

	"github.com/parley-chat/parley/socketio"
)

// errUnauthorized is the CONNECT_ERROR message of API.md §12.
var errUnauthorized = errors.New("unauthorized")

func (h *Hub) onSocketIOConnect(sock *socketio.Socket, auth json.RawMessage) error {
	id, err := h.authenticate(tokenOf(auth, sock.Request()))
	// Nothing else needs the handshake request: an idle socket need not
	// keep its headers and URL for life.
	sock.ReleaseRequest()
	if err != nil {
		return errUnauthorized
	}
	c := &client{id: id, sio: sock}
	sock.SetData(c)
	sock.OnDisconnect(func(string) { h.remove(c) })
	h.add(c)
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
		reply := h.call(c, name, data)
		if ack != nil {
			_ = ack(reply)
		}
	}
}
