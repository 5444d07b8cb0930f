package realtime

// clientEvents is the table of client → server events (API.md §12). Each
// entry decodes its data and calls one service method; the result goes
// back in the ack.
func (h *Hub) clientEvents() map[string]Handler {
	return map[string]Handler{}
}
