package realtime

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/lxzan/gws"
	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/wsock"
)

// wsFrame is a frame of the plain WebSocket protocol, both ways:
// {"event": "...", "data": {...}, "id"?: n}.
type wsFrame struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data,omitempty"`
	ID    *int64          `json:"id,omitempty"`
}

// appendWSFrame appends the wsFrame of an event with data (an encoder's
// output, parley.Event) without an id: what json.Marshal makes of it,
// without re-validating data, which would cost more than the rest.
func appendWSFrame(b []byte, event string, data json.RawMessage) []byte {
	name, _ := json.Marshal(event)
	b = append(append(b, `{"event":`...), name...)
	if len(data) > 0 {
		b = append(append(b, `,"data":`...), data...)
	}
	return append(b, '}')
}

// wsAck answers a client frame that carried an id.
type wsAck struct {
	Ack  int64        `json:"ack"`
	Data parley.Reply `json:"data"`
}

// serveWS upgrades /ws?token= (or an Authorization header, or a
// single-use ?ticket= from POST /api/auth/ws-ticket) to a plain WebSocket.
// A bad token or ticket is refused with 401 before the upgrade.
func (h *Hub) serveWS(w http.ResponseWriter, r *http.Request) {
	var id *parley.Identity
	var err error
	if ticket := r.URL.Query().Get("ticket"); ticket != "" {
		id, err = h.authenticateTicket(ticket)
	} else {
		id, err = h.authenticate(tokenOf(nil, r))
	}
	if err != nil {
		h.authFailed("ws", err)
		writeReply(w, http.StatusUnauthorized, parley.Errorf(parley.EUNAUTHORIZED, "unauthorized"))
		return
	}
	if h.socketsOf(id.UserID) >= h.cfg.MaxSocketsPerUser {
		writeReply(w, http.StatusTooManyRequests, parley.Errorf(parley.ERATELIMITED, "too many sockets"))
		return
	}
	c := &client{id: id}
	handler := &wsHandler{h: h, c: c}
	conn, err := h.ws.Upgrade(w, r, handler)
	if err != nil {
		return // the upgrader already answered (403 origin, 400 bad handshake)
	}
	c.conn = conn
	if err := h.add(c); err != nil {
		// Lost a race for the last slot after the check above.
		b, _ := json.Marshal(wsFrame{Event: "error", Data: mustJSON(parley.ReplyOf(nil, parley.Errorf(parley.ERATELIMITED, "too many sockets")))})
		conn.Send(wsock.Text, b)
		handler.added.Store(false)
		conn.Close()
		conn.Start()
		return
	}
	handler.added.Store(true)
	if !h.confirm(c) {
		conn.CloseNow()
	}
	conn.Start()
}

func writeReply(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(parley.ReplyOf(nil, err))
}

// socketsOf counts the sockets of one user on this node.
func (h *Hub) socketsOf(userID string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.users[userID])
}

// wsHandler reads one plain WebSocket connection. Events of one connection
// are handled one at a time, in order, by whichever goroutine wsock has
// reading it (on Linux one started when the socket is readable).
type wsHandler struct {
	h     *Hub
	c     *client
	added atomic.Bool // c joined the hub; set before the read loop starts
	once  sync.Once
}

func (x *wsHandler) OnMessage(conn *wsock.Conn, t wsock.MessageType, data []byte) {
	var f wsFrame
	if t != wsock.Text || json.Unmarshal(data, &f) != nil || f.Event == "" {
		reply := parley.ReplyOf(nil, parley.Errorf(parley.EINVALID, `frames must be JSON text: {"event": "...", "data": {...}, "id": n}`))
		b, _ := json.Marshal(wsFrame{Event: "error", Data: mustJSON(reply)})
		conn.Send(wsock.Text, b)
		return
	}
	id := f.ID
	x.h.dispatch(x.c, f.Event, f.Data, func(reply parley.Reply) {
		if id != nil {
			b, _ := json.Marshal(wsAck{Ack: *id, Data: reply})
			conn.Send(wsock.Text, b)
		}
	})
}

func (x *wsHandler) OnClose(_ *wsock.Conn, err error) {
	if x.added.Load() {
		x.once.Do(func() { x.h.remove(x.c, wsReason(err)) })
	}
}

// wsReason names why a plain WebSocket closed, for logs and metrics.
func wsReason(err error) string {
	switch {
	case err == nil:
		return "client"
	case errors.Is(err, wsock.ErrQueueFull):
		return "queue_full"
	default:
		var ce *gws.CloseError
		if errors.As(err, &ce) {
			return "client"
		}
		return "transport_close"
	}
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
