package wsock

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"
)

// ErrHandshake is returned by Upgrade for a request that is not a valid
// WebSocket (version 13) opening handshake; the client got a 400.
var ErrHandshake = errors.New("wsock: not a WebSocket handshake")

// Upgrade completes the WebSocket handshake. It answers 403 and returns
// ErrOrigin when the origin is refused, and a 400 with ErrHandshake for a
// malformed handshake. The returned connection does not read until Start is
// called, so the caller can finish its own bookkeeping first. h may be nil
// to use the Options callbacks.
func (u *Upgrader) Upgrade(w http.ResponseWriter, r *http.Request, h Handler) (*Conn, error) {
	if !u.opts.CheckOrigin(r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return nil, ErrOrigin
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if r.Method != http.MethodGet || key == "" ||
		!headerHas(r.Header, "Connection", "upgrade") || !headerHas(r.Header, "Upgrade", "websocket") {
		http.Error(w, "not a WebSocket handshake", http.StatusBadRequest)
		return nil, ErrHandshake
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		http.Error(w, "unsupported WebSocket version", http.StatusBadRequest)
		return nil, ErrHandshake
	}
	if h == nil {
		h = funcHandler{onMessage: u.opts.OnMessage, onClose: u.opts.OnClose}
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "cannot upgrade", http.StatusInternalServerError)
		return nil, err
	}
	c := &Conn{nc: nc, h: h, u: u, rd: frameReader{limit: u.opts.ReadLimit}}
	// A client may send its first frames right behind the request; what
	// net/http read of them is parsed first.
	if n := brw.Reader.Buffered(); n > 0 {
		c.early = make([]byte, n)
		_, _ = brw.Reader.Read(c.early)
	}
	resp := make([]byte, 0, 160)
	resp = append(resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	resp = append(resp, acceptKey(key)...)
	resp = append(resp, "\r\n\r\n"...)
	if err := nc.SetWriteDeadline(time.Now().Add(u.opts.WriteTimeout)); err != nil {
		_ = nc.Close()
		return nil, err
	}
	if _, err := nc.Write(resp); err != nil {
		_ = nc.Close()
		return nil, err
	}
	// net/http's deadlines (ReadTimeout...) must not outlive the request;
	// the writer sets its own, and Start the heartbeat.
	if err := nc.SetDeadline(time.Time{}); err != nil {
		_ = nc.Close()
		return nil, err
	}
	c.initPoll()
	return c, nil
}

// headerHas reports whether a comma-separated header of h lists token
// (case-insensitive).
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// acceptKey is the Sec-WebSocket-Accept answering key (RFC 6455 §4.2.2).
func acceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte("258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}
