package httpapi

import (
	"context"
	"net/http"

	"github.com/parley-chat/parley/service"
)

// notificationRoutes are the push notification routes of API.md §10.
func (a *API) notificationRoutes() []route {
	s := a.svc
	return []route{
		{Method: "POST", Path: "/api/notifications/devices", Status: http.StatusCreated, In: service.PushDeviceInput{}, Out: service.PushDeviceView{},
			Summary: "Register (or replace) one of your devices for pushes: webpush with subscription {endpoint, keys: {p256dh, auth}}, " +
				"or fcm/apns with token. At most 20 devices; 503 for a platform this server is not configured for.",
			handle: func(ctx context.Context, c *call) (any, error) {
				var in service.PushDeviceInput
				if err := c.body(&in); err != nil {
					return nil, err
				}
				return s.RegisterPushDevice(ctx, c.caller, in)
			}},
		{Method: "GET", Path: "/api/notifications/devices", Out: []service.PushDeviceView{},
			Summary: "Your devices registered for pushes (without their tokens).",
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.PushDevices(ctx, c.caller)
			}},
		{Method: "DELETE", Path: "/api/notifications/devices/{deviceId}",
			Summary: "Stop pushes to one of your devices (404 if you have no such device).",
			handle: func(ctx context.Context, c *call) (any, error) {
				return messageOnly("Device removed"), s.RemovePushDevice(ctx, c.caller, c.r.PathValue("deviceId"))
			}},
		{Method: "GET", Path: "/api/notifications/vapid-public-key", Out: service.VAPIDKey{},
			Summary: "The server's VAPID public key, the applicationServerKey browsers subscribe with (the same on every node).",
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.VAPIDPublicKey()
			}},
		{Method: "PUT", Path: "/api/notifications/settings", In: service.NotifySettingsInput{}, Out: service.NotifySettings{},
			Summary: "pushPreviews: whether pushes name the sender (\"New message from Ann\"); they never carry content. " +
				"Per-chat silence is the mute of POST /api/users/mute.",
			handle: func(ctx context.Context, c *call) (any, error) {
				var in service.NotifySettingsInput
				if err := c.body(&in); err != nil {
					return nil, err
				}
				return s.UpdateNotifySettings(ctx, c.caller, in)
			}},
	}
}
