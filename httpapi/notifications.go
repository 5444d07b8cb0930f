package httpapi

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/ratelimit"
	"github.com/parley-chat/parley/service"
)

// adminSendsPerMinute bounds the pushes and e-mails one admin may queue:
// bursts of that many, then one every 60/adminSendsPerMinute seconds.
const adminSendsPerMinute = 10

// notificationRoutes are the push notification routes of API.md §10.
func (a *API) notificationRoutes() []route {
	s := a.svc
	// Keyed by the admin, shared by the nodes like the sign-in limits.
	adminLimit := &limiter{name: "admin-notify", perMinute: adminSendsPerMinute, burst: adminSendsPerMinute, shared: a.shared,
		local: ratelimit.New(adminSendsPerMinute/60.0, adminSendsPerMinute)}
	limited := func(ctx context.Context, c *call) error {
		if !s.IsAdmin(ctx, c.caller) {
			return nil // the service answers 403 without spending a token
		}
		if ok, wait := adminLimit.allow(ctx, loggerFrom(c.r), c.caller.UserID, time.Now()); !ok {
			secs := int(math.Ceil(wait.Seconds()))
			c.w.Header().Set("Retry-After", strconv.Itoa(secs))
			return parley.Errorf(parley.ERATELIMITED, "too many notifications, retry in %d s", secs)
		}
		return nil
	}
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
		{Method: "POST", Path: "/api/notifications/push", In: service.AdminPushInput{}, Out: service.AdminPushResult{},
			Summary: "Admins: queue a push with message (at most 1000 bytes, shown as the notification's text) to every device of userId, " +
				"through the push outbox. 403 for anyone else, 404 for no such user; at most 10 a minute per admin (429 with Retry-After).",
			handle: func(ctx context.Context, c *call) (any, error) {
				var in service.AdminPushInput
				if err := c.body(&in); err != nil {
					return nil, err
				}
				if err := limited(ctx, c); err != nil {
					return nil, err
				}
				return s.AdminPush(ctx, c.caller, in)
			}},
		{Method: "POST", Path: "/api/notifications/email", In: service.AdminEmailInput{}, Out: service.AdminEmailResult{},
			Summary: "Admins: queue an e-mail (subject one line of at most 200 bytes, plain-text body of at most 16 KiB) to the user whose address is userEmail, " +
				"through the mail outbox (SMTP, or the mail folder). 403 for anyone else, 404 when no user has the address; " +
				"shares the limit of POST /api/notifications/push.",
			handle: func(ctx context.Context, c *call) (any, error) {
				var in service.AdminEmailInput
				if err := c.body(&in); err != nil {
					return nil, err
				}
				if err := limited(ctx, c); err != nil {
					return nil, err
				}
				return s.AdminEmail(ctx, c.caller, in)
			}},
	}
}
