package service

// Push notifications (API.md §10): devices, and the outbox that turns new
// messages, calls, join requests and key requests for users without a
// socket into pushes.
//
// Where pushes come from. The outbox rows are derived from the durable
// change log with a cursor, not written in the send transaction: the send
// path commits batches of hundreds of messages (sqlstore/send.go) and
// would otherwise have to look up every recipient's devices, mutes and
// presence inside its hot transaction. The change log already records
// every committed message in commit order, so one leased job reading it
// after a cursor sees each message exactly once; it writes the pushes and
// moves the cursor in one transaction (a lapsed lease makes the other
// node's write a no-op, see NotifyStore.EnqueuePushes), so a restart or a
// node dying loses nothing and repeats nothing.
//
// What notifies. New direct, group and channel messages (to every member
// but the sender), and the changes addressed to one user that ask them
// to act: call_incoming (the callee; a call that no longer rings by then
// is skipped), community_join_request (each admin) and channel_key_needed
// (the admins who can hand the key). Each kind has its topic: a device's
// message pushes collapse into one, a call is its own, a community's
// requests collapse into one per community.
//
// Who gets one. The job reads a change only once it is PresenceGrace old:
// a user with a socket then, or one lost less than the grace period ago,
// had a socket when the message was committed and got it live; anyone
// else gets a push on each registered device. Never the sender, never a
// recipient who muted the sender.
//
// Collapse. A device has at most one pending push; messages arriving
// before it is sent join it (its count), and a device gets at most one
// push per PushCollapse, so a burst of 100 messages is one or two pushes.
//
// Delivery. The same job sends due pushes; a failure is retried with
// exponential backoff kept in the database (so across restarts and
// nodes), a device the provider reports gone is removed. A node claims a
// push in the database before sending it (Config.PushClaim), so no other
// node sends it meanwhile. A node being stopped finishes the request in
// flight and records its outcome: a graceful stop repeats nothing. A node
// dying (or losing its database) after the provider took a push but
// before the commit that removes it leaves the claim to run out, and the
// next holder of the lease sends it once more: the same notificationId
// and the same Topic (Web Push Topic, APNs collapse id, FCM
// collapse_key), so the push service replaces it and the client drops
// it. A push is therefore delivered at least once, and a node that dies
// mid-send leaves at most Config.PushConcurrency pushes (those in flight)
// to be sent twice; exactly once is not possible with providers that have
// no idempotency key.

import (
	"context"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/jobs"
	"golang.org/x/sync/errgroup"
)

// JobPushOutbox is the leased background job that turns new messages into
// pushes and sends them.
const JobPushOutbox = "push-outbox"

const (
	pushBatch       = 500              // changes read per step
	pushSendBatch   = 100              // pushes sent per step
	maxPushAttempts = 15               // about 9 hours of retries
	maxPushBackoff  = time.Hour        // the longest wait between attempts
	pushSendTimeout = 15 * time.Second // one provider request, at most
)

// PushDeviceInput is the body of POST /api/notifications/devices.
type PushDeviceInput struct {
	DeviceID string `json:"deviceId"`
	Platform string `json:"platform"` // webpush | fcm | apns
	Token    string `json:"token,omitempty"`
	// Subscription is a browser's PushSubscription as JSON:
	// {endpoint, keys: {p256dh, auth}} (webpush only).
	Subscription json.RawMessage `json:"subscription,omitempty"`
}

// PushDeviceView is a registered device as its owner sees it (never the
// token or subscription).
type PushDeviceView struct {
	DeviceID  string      `json:"deviceId"`
	Platform  string      `json:"platform"`
	CreatedAt parley.Time `json:"createdAt"`
}

// VAPIDKey is the answer of GET /api/notifications/vapid-public-key.
type VAPIDKey struct {
	PublicKey string `json:"publicKey"` // base64url, uncompressed P-256 point: the applicationServerKey
}

// NotifySettingsInput is the body of PUT /api/notifications/settings.
type NotifySettingsInput struct {
	PushPreviews *bool `json:"pushPreviews"` // name the sender in pushes
}

// NotifySettings is the caller's notification settings.
type NotifySettings struct {
	PushPreviews bool `json:"pushPreviews"`
}

type webPushSubscription struct {
	Endpoint string `json:"endpoint"`
	Keys     struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

// RegisterPushDevice adds (or replaces) one of the caller's devices for
// pushes. Errors: EINVALID, ECONFLICT (too many devices), EUNAVAILABLE
// (the platform is not configured on this server).
func (s *Service) RegisterPushDevice(ctx context.Context, caller *parley.Identity, in PushDeviceInput) (*PushDeviceView, error) {
	if err := required("deviceId", in.DeviceID); err != nil {
		return nil, err
	}
	if err := validateDevice(in.DeviceID, "", false); err != nil {
		return nil, err
	}
	d := &parley.PushDevice{UserID: caller.UserID, DeviceID: in.DeviceID, Platform: in.Platform, SessionHash: caller.TokenHash, CreatedAt: s.now()}
	switch in.Platform {
	case parley.PlatformWebPush:
		if in.Token != "" {
			return nil, parley.Errorf(parley.EINVALID, "token is for fcm and apns; webpush takes subscription")
		}
		sub, err := s.validSubscription(ctx, in.Subscription)
		if err != nil {
			return nil, err
		}
		d.Subscription = sub
	case parley.PlatformFCM, parley.PlatformAPNs:
		if len(in.Subscription) > 0 && string(in.Subscription) != "null" {
			return nil, parley.Errorf(parley.EINVALID, "subscription is for webpush; %s takes token", in.Platform)
		}
		if err := required("token", in.Token); err != nil {
			return nil, err
		}
		if len(in.Token) > parley.MaxPushTokenLen {
			return nil, parley.Errorf(parley.EINVALID, "token must be at most %d bytes", parley.MaxPushTokenLen)
		}
		for _, c := range in.Token {
			if c < 0x21 || c > 0x7e || c == '/' || c == '?' || c == '#' || c == '%' {
				return nil, parley.Errorf(parley.EINVALID, "token must be printable ASCII without spaces, '/', '?', '#' or '%%'")
			}
			if in.Platform == parley.PlatformAPNs && !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return nil, parley.Errorf(parley.EINVALID, "an apns token is hexadecimal")
			}
		}
		d.Token = in.Token
	default:
		return nil, parley.Errorf(parley.EINVALID, "platform must be webpush, fcm or apns")
	}
	if s.cfg.PushSenders[d.Platform] == nil {
		return nil, parley.Errorf(parley.EUNAVAILABLE, "pushes through %s are not configured on this server", d.Platform)
	}
	if err := s.store.Notify.SavePushDevice(ctx, d); err != nil {
		return nil, err
	}
	return &PushDeviceView{DeviceID: d.DeviceID, Platform: d.Platform, CreatedAt: parley.Time{Time: d.CreatedAt}}, nil
}

// validSubscription checks a Web Push subscription and returns it in the
// form stored. The endpoint must be https (http only when configured, for
// tests), its host a public address or a name that resolves only to
// public addresses (unless Config.PushAllowInternal), the keys an
// uncompressed P-256 point and a 16-byte secret.
func (s *Service) validSubscription(ctx context.Context, raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", parley.Errorf(parley.EINVALID, "subscription is required for webpush")
	}
	if len(raw) > parley.MaxSubscriptionJSON {
		return "", parley.Errorf(parley.EINVALID, "subscription must be at most %d bytes", parley.MaxSubscriptionJSON)
	}
	var sub webPushSubscription
	if err := json.Unmarshal(raw, &sub); err != nil {
		return "", parley.Errorf(parley.EINVALID, "subscription must be an object {endpoint, keys: {p256dh, auth}}")
	}
	if sub.Endpoint == "" || len(sub.Endpoint) > parley.MaxPushEndpointLen {
		return "", parley.Errorf(parley.EINVALID, "subscription.endpoint is required, at most %d bytes", parley.MaxPushEndpointLen)
	}
	u, err := url.Parse(sub.Endpoint)
	if err != nil || u.Host == "" || u.User != nil || !(u.Scheme == "https" || u.Scheme == "http" && s.cfg.PushAllowHTTP) {
		return "", parley.Errorf(parley.EINVALID, "subscription.endpoint must be an https URL")
	}
	if !s.cfg.PushAllowInternal {
		if err := s.publicHost(ctx, u.Hostname()); err != nil {
			return "", err
		}
	}
	p256dh, err1 := decodeB64URL(sub.Keys.P256dh)
	auth, err2 := decodeB64URL(sub.Keys.Auth)
	if err1 != nil || len(p256dh) != 65 || err2 != nil || len(auth) != 16 {
		return "", parley.Errorf(parley.EINVALID, "subscription.keys must hold p256dh (65 bytes) and auth (16 bytes), base64url")
	}
	if _, err := ecdh.P256().NewPublicKey(p256dh); err != nil {
		return "", parley.Errorf(parley.EINVALID, "subscription.keys.p256dh is not a P-256 public key")
	}
	out, err := json.Marshal(sub)
	return string(out), err
}

// publicHost refuses a Web Push endpoint's host that is, or resolves to,
// an internal address: the server must not be made to call into its own
// network. The sender checks again as it connects (webpusher), since a
// name can resolve differently later. Errors: EINVALID.
func (s *Service) publicHost(ctx context.Context, host string) error {
	refuse := parley.Errorf(parley.EINVALID, "subscription.endpoint must be on the public internet, not an internal address")
	if a, err := netip.ParseAddr(host); err == nil {
		if parley.IsInternalAddr(a) {
			return refuse
		}
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := s.cfg.Resolver.LookupNetIP(lctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return parley.Errorf(parley.EINVALID, "subscription.endpoint's host does not resolve")
	}
	for _, a := range addrs {
		if parley.IsInternalAddr(a) {
			return refuse
		}
	}
	return nil
}

func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// RemovePushDevice removes one of the caller's devices. Errors: ENOTFOUND.
func (s *Service) RemovePushDevice(ctx context.Context, caller *parley.Identity, deviceID string) error {
	if len(deviceID) > parley.MaxDeviceIDLen {
		return parley.Errorf(parley.ENOTFOUND, "device not found")
	}
	ok, err := s.store.Notify.DeletePushDevice(ctx, caller.UserID, deviceID)
	if err == nil && !ok {
		err = parley.Errorf(parley.ENOTFOUND, "device not found")
	}
	return err
}

// PushDevices lists the caller's devices registered for pushes.
func (s *Service) PushDevices(ctx context.Context, caller *parley.Identity) ([]PushDeviceView, error) {
	list, err := s.store.Notify.PushDevices(ctx, caller.UserID)
	if err != nil {
		return nil, err
	}
	out := make([]PushDeviceView, 0, len(list))
	for _, d := range list {
		out = append(out, PushDeviceView{DeviceID: d.DeviceID, Platform: d.Platform, CreatedAt: parley.Time{Time: d.CreatedAt}})
	}
	return out, nil
}

// VAPIDPublicKey returns the key browsers subscribe with. Errors:
// EUNAVAILABLE when Web Push is not configured.
func (s *Service) VAPIDPublicKey() (*VAPIDKey, error) {
	if s.cfg.VAPIDPublicKey == "" {
		return nil, parley.Errorf(parley.EUNAVAILABLE, "web push is not configured on this server")
	}
	return &VAPIDKey{PublicKey: s.cfg.VAPIDPublicKey}, nil
}

// UpdateNotifySettings changes the caller's notification settings (the
// same pushPreviews as PUT /api/users/me/settings). Errors: EINVALID.
func (s *Service) UpdateNotifySettings(ctx context.Context, caller *parley.Identity, in NotifySettingsInput) (*NotifySettings, error) {
	if in.PushPreviews == nil {
		return nil, parley.Errorf(parley.EINVALID, "pushPreviews is required")
	}
	set, err := s.UpdateSettings(ctx, caller, SettingsInput{PushPreviews: in.PushPreviews})
	if err != nil {
		return nil, err
	}
	return &NotifySettings{PushPreviews: set.PushPreviews}, nil
}

// addNotifyJobs registers the outbox job when some push platform is configured.
func (s *Service) addNotifyJobs(r *jobs.Runner) {
	if len(s.cfg.PushSenders) == 0 {
		return
	}
	r.Add(jobs.Job{Name: JobPushOutbox, Every: s.cfg.NotifyTick, Leased: true, Timeout: 5 * time.Minute, Run: s.runPushOutbox})
}

// runPushOutbox turns the messages old enough into pushes, then sends
// the pushes that are due.
func (s *Service) runPushOutbox(ctx context.Context) error {
	if err := s.enqueuePushes(ctx); err != nil {
		return err
	}
	return s.sendDuePushes(ctx)
}

func (s *Service) enqueuePushes(ctx context.Context) error {
	for {
		now := s.now()
		cands, from, to, err := s.store.Notify.PushCandidates(ctx, now.Add(-s.cfg.PresenceGrace), now, pushBatch)
		if err != nil || to == from {
			return err
		}
		online := map[string]bool{}
		var users []string
		for _, c := range cands {
			if _, seen := online[c.UserID]; !seen {
				online[c.UserID] = false
				users = append(users, c.UserID)
			}
		}
		if len(users) > 0 {
			on, err := s.presence.onlineAmong(ctx, users)
			if err != nil {
				return err
			}
			for id := range on {
				online[id] = true
			}
		}
		ev := newPushEvents(s, now)
		byDevice := map[[3]string]*parley.Push{}
		var pushes []*parley.Push
		for _, c := range cands {
			if online[c.UserID] || s.cfg.PushSenders[c.Platform] == nil {
				continue
			}
			p, err := ev.push(ctx, c)
			if err != nil {
				return err
			}
			if p == nil {
				continue
			}
			key := [3]string{c.UserID, c.DeviceID, p.Topic}
			if q := byDevice[key]; q != nil {
				q.Count++
				q.ConversationID, q.SenderName, q.Data = p.ConversationID, p.SenderName, p.Data
				continue
			}
			byDevice[key] = p
			pushes = append(pushes, p)
		}
		moved, err := s.store.Notify.EnqueuePushes(ctx, from, to, pushes)
		if err != nil || !moved {
			return err
		}
	}
}

// pushEvents turns the candidates of one batch into pushes, remembering
// what it looked up (calls, names, mutes) for the rest of the batch.
type pushEvents struct {
	s       *Service
	now     time.Time
	ringing map[string]bool   // call id: still ringing
	names   map[string]string // user id: display name
	muted   map[[2]string]bool
}

func newPushEvents(s *Service, now time.Time) *pushEvents {
	return &pushEvents{s: s, now: now, ringing: map[string]bool{}, names: map[string]string{}, muted: map[[2]string]bool{}}
}

// push returns the push c makes for its device, or nil when it makes none.
func (e *pushEvents) push(ctx context.Context, c *parley.PushCandidate) (*parley.Push, error) {
	p := &parley.Push{Device: parley.PushDevice{UserID: c.UserID, DeviceID: c.DeviceID, Platform: c.Platform},
		NotificationID: parley.NewID("ntf"), Count: 1, NextAt: e.now}
	switch c.Event {
	case parley.EventCallIncoming:
		var in callIncoming
		if err := json.Unmarshal(c.Payload, &in); err != nil || in.CallID == "" {
			e.s.log.Warn("push: unreadable call_incoming change", "change", c.ChangeID)
			return nil, nil
		}
		ringing, ok := e.ringing[in.CallID]
		if !ok {
			call, err := e.s.store.Calls.CallByID(ctx, in.CallID)
			if err != nil && parley.ErrorCode(err) != parley.ENOTFOUND {
				return nil, err
			}
			ringing = err == nil && call.State == parley.CallRinging
			e.ringing[in.CallID] = ringing
		}
		if !ringing {
			return nil, nil // answered, declined, missed or hung up already
		}
		if muted, err := e.isMuted(ctx, c.UserID, in.CallerID); err != nil || muted {
			return nil, err
		}
		p.Kind, p.Topic = parley.PushCall, pushTopic("c", in.CallID)
		p.Data = parley.PushData{CallID: in.CallID, CallType: in.Type}
		if c.Previews {
			name, err := e.name(ctx, in.CallerID)
			if err != nil {
				return nil, err
			}
			p.SenderName = name
		}
	case parley.EventCommunityJoinRequest:
		var in joinRequestEvent
		if err := json.Unmarshal(c.Payload, &in); err != nil || in.CommunityID == "" {
			e.s.log.Warn("push: unreadable community_join_request change", "change", c.ChangeID)
			return nil, nil
		}
		p.Kind, p.Topic = parley.PushJoinRequest, pushTopic("j", in.CommunityID)
		p.Data = parley.PushData{CommunityID: in.CommunityID, UserID: in.UserID}
		if c.Previews {
			name, err := e.name(ctx, in.UserID)
			if err != nil {
				return nil, err
			}
			p.SenderName = name
		}
	case parley.EventChannelKeyNeeded:
		var in keyNeededEvent
		if err := json.Unmarshal(c.Payload, &in); err != nil || in.ChannelID == "" {
			e.s.log.Warn("push: unreadable channel_key_needed change", "change", c.ChangeID)
			return nil, nil
		}
		p.Kind, p.Topic = parley.PushKeyRequest, pushTopic("k", in.CommunityID)
		p.Data = parley.PushData{CommunityID: in.CommunityID, ChannelID: in.ChannelID, UserID: in.UserID}
	default: // a new message
		p.Kind, p.Topic = parley.PushMessage, messageTopic
		p.ConversationID, p.SenderName = c.ConversationID, c.SenderName
		// A device gets at most one message push per PushCollapse.
		if t := c.LastPushAt.Add(e.s.cfg.PushCollapse); t.After(p.NextAt) {
			p.NextAt = t
		}
	}
	return p, nil
}

func (e *pushEvents) name(ctx context.Context, userID string) (string, error) {
	if n, ok := e.names[userID]; ok {
		return n, nil
	}
	u, err := e.s.store.Users.UserByID(ctx, userID)
	if parley.ErrorCode(err) == parley.ENOTFOUND {
		return "", nil
	} else if err != nil {
		return "", err
	}
	n := u.Name
	if n == "" {
		n = u.Username
	}
	e.names[userID] = n
	return n, nil
}

func (e *pushEvents) isMuted(ctx context.Context, userID, mutedID string) (bool, error) {
	key := [2]string{userID, mutedID}
	if m, ok := e.muted[key]; ok {
		return m, nil
	}
	m, err := e.s.store.Social.IsMuted(ctx, userID, mutedID, e.now)
	e.muted[key] = m
	return m, err
}

// messageTopic is the topic every message push of a device shares.
const messageTopic = "m"

// pushTopic is the topic of the pushes about id: a prefix naming the kind
// and a digest of id, short enough for Web Push (32 characters of the
// base64url alphabet) and APNs collapse ids.
func pushTopic(prefix, id string) string {
	sum := sha256.Sum256([]byte(id))
	return prefix + hex.EncodeToString(sum[:12])
}

// sendDuePushes sends the due pushes, Config.PushConcurrency at a time:
// each is claimed, sent and recorded on its own (sendPush), so they need
// no order among them. A store error or a stop ends the run once the
// requests in flight are recorded; what was not started is left to the
// next run.
func (s *Service) sendDuePushes(ctx context.Context) error {
	for {
		due, err := s.store.Notify.DuePushes(ctx, s.now(), pushSendBatch)
		if err != nil || len(due) == 0 {
			return err
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(s.cfg.PushConcurrency)
		for _, p := range due {
			if gctx.Err() != nil {
				break
			}
			g.Go(func() error { return s.sendPush(gctx, p) })
		}
		if err := g.Wait(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err // stopping: the rest is left to the next holder
		}
		if len(due) < pushSendBatch {
			return nil
		}
	}
}

// sendPush sends one push and records the outcome; it returns only store
// errors (a provider's failure is recorded and retried later).
func (s *Service) sendPush(ctx context.Context, p *parley.Push) error {
	log := s.log.With("user", p.Device.UserID, "device", p.Device.DeviceID, "provider", p.Device.Platform, "kind", p.Kind,
		"notification", p.NotificationID)
	sender := s.cfg.PushSenders[p.Device.Platform]
	if sender == nil {
		log.Warn("push dropped: provider not configured")
		return s.store.Notify.PushFailed(ctx, p, time.Time{})
	}
	// The claim keeps other nodes off the push while it is sent, even if
	// this node loses the job's lease meanwhile; if this node dies, the
	// push is sent again once the claim ends. The request gets at most
	// half the claim, leaving the other half to record its outcome.
	//
	// A stop (ctx) before the claim leaves the push to the next holder. Once
	// claiming has begun, the stop no longer cuts it off: a claim cut off
	// mid-statement may still commit, and would hold the push back from
	// every node for the whole claim without this node sending it.
	if err := ctx.Err(); err != nil {
		return err
	}
	now := s.now()
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.StoreTimeout)
	ok, err := s.store.Notify.ClaimPush(cctx, p, now, now.Add(s.cfg.PushClaim))
	ccancel()
	if err != nil || !ok {
		return err
	}
	// The request in flight and the record of its outcome outlive the
	// node's stop (ctx): a push the provider took must not be left
	// claimed and unrecorded, to be sent again by the next node. Both are
	// bounded, so a stop waits at most that long.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(pushSendTimeout, s.cfg.PushClaim/2))
	err = sender.Send(sctx, p)
	cancel()
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.StoreTimeout)
	defer rcancel()
	now = s.now()
	switch {
	case err == nil:
		log.Info("push sent", "events", p.Count, "attempt", p.Attempts+1)
		return s.store.Notify.PushSent(rctx, p, now, now.Add(s.cfg.PushCollapse))
	case errors.Is(err, parley.ErrPushGone):
		log.Info("push device removed: the provider reports it gone", "answer", err.Error())
		_, err := s.store.Notify.DeletePushDevice(rctx, p.Device.UserID, p.Device.DeviceID)
		return err
	case p.Attempts+1 >= maxPushAttempts:
		log.Warn("push dropped after its last attempt", "attempts", p.Attempts+1, "answer", err.Error())
		return s.store.Notify.PushFailed(rctx, p, time.Time{})
	default:
		wait := min(time.Second<<p.Attempts, maxPushBackoff)
		log.Warn("push failed; retrying", "attempt", p.Attempts+1, "retryIn", wait.String(), "answer", err.Error())
		return s.store.Notify.PushFailed(rctx, p, now.Add(wait))
	}
}
