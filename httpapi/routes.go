package httpapi

import (
	"context"
	"net/http"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/service"
)

// Response shapes that exist only in the transport.
type (
	healthData struct {
		Status string `json:"status"`
	}
	emailInput struct {
		Email string `json:"email"`
	}
	resetInput struct {
		Token       string `json:"token"`
		NewPassword string `json:"newPassword"`
	}
	contactInput struct {
		ContactID string `json:"contactId"`
	}
)

// table lists every REST route. The OpenAPI description is generated from
// it, so a route cannot exist without being described.
func (a *API) table(cfg Config) []route {
	s := a.svc
	register, login, reset := newLimiter(cfg, "register"), newLimiter(cfg, "login"), newLimiter(cfg, "reset")
	return []route{
		{Method: "GET", Path: "/api/health", Public: true, Summary: "Health check: 200 when the database answers, 503 otherwise.",
			Out: healthData{}, handle: func(ctx context.Context, c *call) (any, error) {
				if err := s.Health(ctx); err != nil {
					return nil, err
				}
				return withMessage{healthData{"ok"}, "API is healthy"}, nil
			}},
		{Method: "POST", Path: "/api/users/register", Public: true, Status: http.StatusCreated, limit: register,
			Summary: "Create an account with its first device and sign it in.", In: service.RegisterInput{}, Out: service.RegisterResult{},
			handle: func(ctx context.Context, c *call) (any, error) {
				var in service.RegisterInput
				if err := c.body(&in); err != nil {
					return nil, err
				}
				return s.Register(ctx, in)
			}},
		{Method: "POST", Path: "/api/auth/login", Public: true, limit: login,
			Summary: "Sign in; a new deviceId with a publicKey adds that device.", In: service.LoginInput{}, Out: service.LoginResult{},
			handle: func(ctx context.Context, c *call) (any, error) {
				var in service.LoginInput
				if err := c.body(&in); err != nil {
					return nil, err
				}
				in.ClientAddr = forwardedClientAddr(c.r, cfg.TrustedProxies)
				return s.Login(ctx, in)
			}},
		{Method: "POST", Path: "/api/auth/logout", Summary: "Revoke this token at once, on every node.",
			handle: func(ctx context.Context, c *call) (any, error) {
				return messageOnly("Logged out"), s.Logout(ctx, c.caller)
			}},
		{Method: "POST", Path: "/api/auth/password/forgot", Public: true, limit: reset,
			Summary: "E-mail a single-use reset token if the address is known; always 200.", In: emailInput{},
			handle: func(ctx context.Context, c *call) (any, error) {
				var in emailInput
				if err := c.body(&in); err != nil {
					return nil, err
				}
				return messageOnly("If the address is registered, a reset e-mail is on its way"), s.ForgotPassword(ctx, in.Email)
			}},
		{Method: "POST", Path: "/api/auth/password/reset", Public: true, limit: reset,
			Summary: "Set a new password with a reset token; revokes every session of the user.", In: resetInput{},
			handle: func(ctx context.Context, c *call) (any, error) {
				var in resetInput
				if err := c.body(&in); err != nil {
					return nil, err
				}
				return messageOnly("Password reset"), s.ResetPassword(ctx, in.Token, in.NewPassword)
			}},
		{Method: "GET", Path: "/api/users/me", Summary: "The caller's own profile, with e-mail and settings.", Out: service.OwnProfile{},
			handle: func(ctx context.Context, c *call) (any, error) { return s.Me(ctx, c.caller) }},
		{Method: "PUT", Path: "/api/users/me/profile", Summary: "Update name, about or avatar; profile_updated goes to contacts.",
			In: service.ProfileInput{}, Out: service.PublicProfile{},
			handle: func(ctx context.Context, c *call) (any, error) {
				var in service.ProfileInput
				if err := c.body(&in); err != nil {
					return nil, err
				}
				return s.UpdateProfile(ctx, c.caller, "", in)
			}},
		{Method: "PUT", Path: "/api/users/{userId}/profile", Summary: "Same as PUT /api/users/me/profile; userId must be the caller (else 403).",
			In: service.ProfileInput{}, Out: service.PublicProfile{},
			handle: func(ctx context.Context, c *call) (any, error) {
				var in service.ProfileInput
				if err := c.body(&in); err != nil {
					return nil, err
				}
				return s.UpdateProfile(ctx, c.caller, c.r.PathValue("userId"), in)
			}},
		{Method: "GET", Path: "/api/users/search", Summary: "Users whose username or name starts with q (at most 20).",
			Query: []param{{"q", "prefix of a username or display name (required)"}}, Out: []service.PublicProfile{},
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.SearchUsers(ctx, c.caller, c.r.URL.Query().Get("q"))
			}},
		{Method: "GET", Path: "/api/users/blocked", Summary: "Ids of the users the caller blocked.", Out: []string{},
			handle: func(ctx context.Context, c *call) (any, error) { return s.Blocked(ctx, c.caller) }},
		{Method: "GET", Path: "/api/users/{userId}", Summary: "A user's public profile with every device key.", Out: service.PublicProfile{},
			handle: func(ctx context.Context, c *call) (any, error) { return s.User(ctx, c.caller, c.r.PathValue("userId")) }},
		{Method: "GET", Path: "/api/users/{userId}/keys", Summary: "Every device key of a user.", Out: []service.DeviceKey{},
			handle: func(ctx context.Context, c *call) (any, error) { return s.Keys(ctx, c.caller, c.r.PathValue("userId")) }},
		{Method: "POST", Path: "/api/users/keys", Summary: "Add or rotate a device key of the caller; key_changed goes to contacts.",
			In: service.KeyInput{}, Out: service.DeviceKey{},
			handle: withBody(s.SetKey)},
		{Method: "GET", Path: "/api/users/{userId}/presence", Summary: "A user's presence; lastSeen is null where their settings hide it.",
			Out: service.Presence{},
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.PresenceOf(ctx, c.caller, c.r.PathValue("userId"))
			}},
		{Method: "PUT", Path: "/api/users/me/settings", Summary: "Update privacy settings; absent fields keep their value.",
			In: service.SettingsInput{}, Out: parley.Settings{},
			handle: withBody(s.UpdateSettings)},
		{Method: "POST", Path: "/api/users/block", Summary: "Block a user: no messages, calls, typing or presence either way.",
			In: service.BlockInput{}, Out: service.BlockResult{},
			handle: func(ctx context.Context, c *call) (any, error) {
				var in service.BlockInput
				if err := c.body(&in); err != nil {
					return nil, err
				}
				res, err := s.Block(ctx, c.caller, in)
				return withMessage{res, "User blocked successfully"}, err
			}},
		{Method: "POST", Path: "/api/users/unblock", Summary: "Lift a block.", In: service.BlockInput{}, Out: service.BlockResult{},
			handle: func(ctx context.Context, c *call) (any, error) {
				var in service.BlockInput
				if err := c.body(&in); err != nil {
					return nil, err
				}
				res, err := s.Unblock(ctx, c.caller, in)
				return withMessage{res, "User unblocked successfully"}, err
			}},
		{Method: "POST", Path: "/api/users/mute", Summary: "Mute a user's push notifications for duration seconds, or until unmuted.",
			In: service.MuteInput{}, Out: service.MuteResult{},
			handle: func(ctx context.Context, c *call) (any, error) {
				var in service.MuteInput
				if err := c.body(&in); err != nil {
					return nil, err
				}
				res, err := s.Mute(ctx, c.caller, in)
				return withMessage{res, "User muted successfully"}, err
			}},
		{Method: "POST", Path: "/api/users/unmute", Summary: "Lift a mute.", In: service.MuteInput{}, Out: service.MuteResult{},
			handle: func(ctx context.Context, c *call) (any, error) {
				var in service.MuteInput
				if err := c.body(&in); err != nil {
					return nil, err
				}
				res, err := s.Unmute(ctx, c.caller, in)
				return withMessage{res, "User unmuted successfully"}, err
			}},
		{Method: "POST", Path: "/api/contacts", Summary: "Add a contact.", In: contactInput{}, Out: service.Contact{}, Status: http.StatusCreated,
			handle: func(ctx context.Context, c *call) (any, error) {
				var in contactInput
				if err := c.body(&in); err != nil {
					return nil, err
				}
				return s.AddContact(ctx, c.caller, in.ContactID)
			}},
		{Method: "DELETE", Path: "/api/contacts/{userId}", Summary: "Remove a contact; 404 if they were not one.",
			handle: func(ctx context.Context, c *call) (any, error) {
				return messageOnly("Contact removed"), s.RemoveContact(ctx, c.caller, c.r.PathValue("userId"))
			}},
		{Method: "GET", Path: "/api/contacts", Summary: "The caller's contacts with presence.", Out: []service.Contact{},
			handle: func(ctx context.Context, c *call) (any, error) { return s.Contacts(ctx, c.caller) }},
	}
}
