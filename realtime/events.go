package realtime

import (
	"context"
	"encoding/json"
	"reflect"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/httpapi"
	"github.com/parley-chat/parley/service"
)

// decodeInto decodes a client event's data into v (an absent payload is
// {}); flat is httpapi.FlatFieldsOf v's struct type (nil: none).
func decodeInto(data json.RawMessage, v any, flat httpapi.FlatFields) error {
	if len(data) == 0 || string(data) == "null" {
		return nil
	}
	// The same rules as a REST body: a typo in a field name must not look
	// like success.
	return httpapi.DecodeJSONFlat(data, v, flat)
}

// handle adapts a service call taking input In to a Handler.
func handle[In any](fn func(context.Context, *parley.Identity, In) (any, error)) Handler {
	flat := httpapi.FlatFieldsOf(reflect.TypeFor[In]())
	return func(ctx context.Context, caller *parley.Identity, data json.RawMessage) (any, error) {
		var in In
		if err := decodeInto(data, &in, flat); err != nil {
			return nil, err
		}
		return fn(ctx, caller, in)
	}
}

// clientEvents is the table of client → server events (API.md §12). Each
// entry decodes its data and calls one service method; the result goes
// back in the ack with the same envelope as REST.
func (h *Hub) clientEvents() map[string]Handler {
	s := h.svc
	return map[string]Handler{
		"send_message": handle(func(ctx context.Context, c *parley.Identity, in service.SendInput) (any, error) {
			return s.SendMessage(ctx, c, in)
		}),
		"send_group_message": handle(func(ctx context.Context, c *parley.Identity, in service.GroupSendInput) (any, error) {
			return s.SendGroupMessage(ctx, c, in)
		}),
		"send_channel_message": handle(func(ctx context.Context, c *parley.Identity, in service.ChannelSendInput) (any, error) {
			return s.SendChannelMessage(ctx, c, in)
		}),
		"typing": handle(func(ctx context.Context, c *parley.Identity, in service.TypingInput) (any, error) {
			return nil, s.Typing(ctx, c, in)
		}),
		"message_status": handle(func(ctx context.Context, c *parley.Identity, in service.StatusInput) (any, error) {
			return s.MarkStatus(ctx, c, in)
		}),
		"call_signal": handle(func(ctx context.Context, c *parley.Identity, in service.SignalInput) (any, error) {
			return s.Signal(ctx, c, in)
		}),
	}
}
