package realtime

import (
	"context"
)

// joined tells the service about a new socket of a device (a device of a
// call that lost its connection has it back) and rings it for the calls
// still ringing for its user: a callee who had no socket when a call
// started, or opens another, hears it ring there too. It runs before the
// connect completes: Socket.IO holds these sends back until its CONNECT
// answer, and a /ws connection is already upgraded.
func (h *Hub) joined(c *client) {
	h.svc.DeviceSocketOpened(c.id)
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.EventTimeout)
	defer cancel()
	rings, err := h.svc.RingingFor(ctx, c.id)
	if err != nil {
		h.log.Warn("calls ringing for a new socket", "user", c.id.UserID, "err", err)
		return
	}
	for _, ev := range rings {
		c.send(&frames{ev: ev})
	}
}
