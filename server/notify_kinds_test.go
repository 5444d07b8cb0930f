package server_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/server"
)

// anyPush is a push payload of any kind.
type anyPush struct {
	NotificationID string `json:"notificationId"`
	Type           string `json:"type"`
	Count          int    `json:"count"`
	CallID         string `json:"callId"`
	CallType       string `json:"callType"`
	CallerName     string `json:"callerName"`
	CommunityID    string `json:"communityId"`
	ChannelID      string `json:"channelId"`
	UserID         string `json:"userId"`
	RequesterName  string `json:"requesterName"`
	Message        string `json:"message"`
}

func decodeAnyPush(t *testing.T, raw json.RawMessage) anyPush {
	t.Helper()
	var p anyPush
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || p.NotificationID == "" || p.Count < 1 {
		t.Fatalf("push payload %s: %v", raw, err)
	}
	return p
}

// TestPushKinds checks the pushes beyond messages (a call to a callee with
// no socket, a join request to the community's admin), the admin routes,
// that a device dies with the session that registered it, and that an
// internal Web Push endpoint is refused when the blocklist is on.
func TestPushKinds(t *testing.T) {
	dsn := testdb.DSN(t, "sqlite")
	admin := apitest.Unique("root")
	srv := apitest.MustStart(t, "sqlite", func(c *server.Config) {
		c.DB = dsn
		c.PushAllowHTTP, c.PushAllowInternal = true, true
		c.NotifyTick = 50 * time.Millisecond
		c.Admins = []string{admin}
	})
	db, err := sql.Open("sqlite", strings.TrimPrefix(dsn, "sqlite:"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	outboxEmpty := func(t *testing.T) {
		t.Helper()
		eventually(t, "the outbox to read the change log and send everything", 15*time.Second, func() bool {
			var passed bool
			var pending int
			if err := db.QueryRow(`SELECT (SELECT last FROM push_cursor) >= (SELECT MAX(id) FROM changes),
				(SELECT COUNT(*) FROM push_outbox)`).Scan(&passed, &pending); err != nil {
				t.Fatal(err)
			}
			return passed && pending == 0
		})
	}

	root := apitest.Register(t, srv.URL(), admin)
	ann := apitest.Register(t, srv.URL(), apitest.Unique("ann"))
	bob := apitest.Register(t, srv.URL(), apitest.Unique("bob"))
	rcv := newPushReceiver(t)
	readPushKey(t, bob, rcv)
	bob.Must(t, 201, "POST", "/api/notifications/devices", map[string]any{"deviceId": "bob-laptop", "platform": "webpush",
		"subscription": rcv.subscription()})

	t.Run("CallToOfflineCallee", func(t *testing.T) {
		var c struct{ CallID string }
		ann.Must(t, 200, "POST", "/api/calls/initiate", map[string]any{"receiverId": bob.UserID, "type": "video"}).Decode(t, &c)
		got := rcv.waitPushes(t, 1)
		p := decodeAnyPush(t, got[0])
		if p.Type != "call" || p.CallID != c.CallID || p.CallType != "video" || p.CallerName != "User "+ann.Username {
			t.Fatalf("call push %s", got[0])
		}
		ann.Must(t, 200, "POST", "/api/calls/end", map[string]any{"callId": c.CallID})
	})

	t.Run("NoCallPushWithASocket", func(t *testing.T) {
		n := len(rcv.pushes())
		ws := apitest.DialWS(t, srv.URL(), bob.Token)
		var c struct{ CallID string }
		ann.Must(t, 200, "POST", "/api/calls/initiate", map[string]any{"receiverId": bob.UserID, "type": "voice"}).Decode(t, &c)
		ws.WaitEvent(t, "call_incoming", c.CallID)
		outboxEmpty(t)
		if got := rcv.pushes(); len(got) != n {
			t.Fatalf("a call pushed to a callee with a socket: %s", got[n:])
		}
		ann.Must(t, 200, "POST", "/api/calls/end", map[string]any{"callId": c.CallID})
		ws.Close()
		eventually(t, "bob offline", 10*time.Second, func() bool {
			var p struct{ Online bool }
			ann.Must(t, 200, "GET", "/api/users/"+bob.UserID+"/presence", nil).Decode(t, &p)
			return !p.Online
		})
	})

	t.Run("JoinRequestToAdmin", func(t *testing.T) {
		n := len(rcv.pushes())
		var c struct{ CommunityID string }
		bob.Must(t, 201, "POST", "/api/communities/create", map[string]any{"name": "Club", "description": "d", "isPrivate": true}).Decode(t, &c)
		ann.Must(t, 200, "POST", "/api/communities/join", map[string]any{"communityId": c.CommunityID})
		got := rcv.waitPushes(t, n+1)
		p := decodeAnyPush(t, got[n])
		if p.Type != "join_request" || p.CommunityID != c.CommunityID || p.UserID != ann.UserID || p.RequesterName != "User "+ann.Username {
			t.Fatalf("join request push %s", got[n])
		}
	})

	t.Run("AdminPush", func(t *testing.T) {
		n := len(rcv.pushes())
		ann.Must(t, 403, "POST", "/api/notifications/push", map[string]any{"userId": bob.UserID, "message": "hi"})
		root.Must(t, 400, "POST", "/api/notifications/push", map[string]any{"userId": bob.UserID, "message": strings.Repeat("x", 1001)})
		root.Must(t, 400, "POST", "/api/notifications/push", map[string]any{"message": "no user"})
		root.Must(t, 404, "POST", "/api/notifications/push", map[string]any{"userId": "usr_nobody", "message": "hi"})
		var res struct {
			NotificationID string
			Devices        int
		}
		root.Must(t, 200, "POST", "/api/notifications/push", map[string]any{"userId": bob.UserID, "message": "Maintenance at 22:00"}).Decode(t, &res)
		got := rcv.waitPushes(t, n+1)
		p := decodeAnyPush(t, got[n])
		if res.Devices != 1 || p.Type != "admin" || p.Message != "Maintenance at 22:00" || p.NotificationID != res.NotificationID {
			t.Fatalf("admin push %+v: %s", res, got[n])
		}
	})

	t.Run("AdminEmail", func(t *testing.T) {
		ann.Must(t, 403, "POST", "/api/notifications/email", map[string]any{"userEmail": bob.Username + "@example.test", "subject": "s", "body": "b"})
		root.Must(t, 400, "POST", "/api/notifications/email", map[string]any{"userEmail": bob.Username + "@example.test", "subject": "a\r\nBcc: x@y", "body": "b"})
		root.Must(t, 400, "POST", "/api/notifications/email", map[string]any{"userEmail": bob.Username + "@example.test", "subject": "s",
			"body": strings.Repeat("b", 16<<10+1)})
		root.Must(t, 404, "POST", "/api/notifications/email", map[string]any{"userEmail": "nobody@example.test", "subject": "s", "body": "b"})
		root.Must(t, 200, "POST", "/api/notifications/email", map[string]any{"userEmail": bob.Username + "@example.test",
			"subject": "Planned maintenance", "body": "The server restarts at 22:00."})
		eventually(t, "the admin's e-mail in the mail folder", 15*time.Second, func() bool {
			files, _ := filepath.Glob(filepath.Join(srv.DataDir(), "mail", "*.eml"))
			for _, f := range files {
				b, _ := os.ReadFile(f)
				if strings.Contains(string(b), "Planned maintenance") && strings.Contains(string(b), bob.Username+"@example.test") {
					return true
				}
			}
			return false
		})
	})

	t.Run("AdminRateLimited", func(t *testing.T) {
		for i := 0; ; i++ {
			res := root.Do(t, "POST", "/api/notifications/push", map[string]any{"userId": ann.UserID, "message": "again"})
			if res.Status == http.StatusTooManyRequests {
				if res.Error.Code != "rate_limited" || res.Header.Get("Retry-After") == "" {
					t.Fatalf("429 %q without Retry-After %q", res.Error.Code, res.Header.Get("Retry-After"))
				}
				return
			}
			if res.Status != 200 || i > 20 {
				t.Fatalf("admin push %d: %d, want 200 until a 429", i, res.Status)
			}
		}
	})

	t.Run("DeviceDiesWithSession", func(t *testing.T) {
		var login struct{ Token string }
		apitest.NewClient(srv.URL()).Must(t, 200, "POST", "/api/auth/login", map[string]any{"username": bob.Username,
			"password": "password-" + bob.Username}).Decode(t, &login)
		phone := *bob
		phone.Token = login.Token
		phone.Must(t, 201, "POST", "/api/notifications/devices", map[string]any{"deviceId": "bob-browser-2", "platform": "webpush",
			"subscription": rcv.subscription()})
		var list []struct{ DeviceID string }
		bob.Must(t, 200, "GET", "/api/notifications/devices", nil).Decode(t, &list)
		if len(list) != 2 {
			t.Fatalf("devices %+v", list)
		}
		phone.Must(t, 200, "POST", "/api/auth/logout", nil)
		bob.Must(t, 200, "GET", "/api/notifications/devices", nil).Decode(t, &list)
		if len(list) != 1 || list[0].DeviceID != "bob-laptop" {
			t.Fatalf("after the second session logged out, devices %+v", list)
		}
	})
}

// TestPushEndpointBlocklist checks that, with the blocklist on (the
// default), Web Push subscriptions on internal addresses are refused.
func TestPushEndpointBlocklist(t *testing.T) {
	srv := apitest.MustStart(t, "sqlite", func(c *server.Config) { c.PushAllowHTTP = true })
	bob := apitest.Register(t, srv.URL(), apitest.Unique("bob"))
	rcv := newPushReceiver(t)
	keys := rcv.subscription()["keys"]
	for _, endpoint := range []string{rcv.srv.URL + "/push/sub1", "http://localhost:9/x", "http://[::1]/x", "https://10.1.2.3/x",
		"https://169.254.169.254/latest", "https://[::ffff:127.0.0.1]/x", "https://100.64.0.1/x"} {
		res := bob.Do(t, "POST", "/api/notifications/devices", map[string]any{"deviceId": "d", "platform": "webpush",
			"subscription": map[string]any{"endpoint": endpoint, "keys": keys}})
		if res.Status != 400 || res.Error.Code != "invalid_argument" {
			t.Errorf("endpoint %s: %d %q, want 400 invalid_argument", endpoint, res.Status, res.Error.Code)
		}
	}
	if n := rcv.attempts(); n != 0 {
		t.Fatalf("the receiver got %d requests", n)
	}
}

// TestKeyRequestPush checks the push of a key request end to end: when a
// member of an encrypted channel lacks its key (channel_key_needed), a
// community admin with no socket gets a key_request push on their device
// naming the community, the channel and the member and nothing else; the
// pushes of one community share a topic, another community's have their
// own; an admin with a socket gets none.
func TestKeyRequestPush(t *testing.T) {
	t.Parallel()
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) { testKeyRequestPush(t, backend) })
	}
}

func testKeyRequestPush(t *testing.T, backend string) {
	dsn := testdb.DSN(t, backend)
	srv := apitest.MustStart(t, backend, func(c *server.Config) {
		c.DB = dsn
		c.PushAllowHTTP, c.PushAllowInternal = true, true
		c.NotifyTick = 50 * time.Millisecond
	})
	driver, source := "pgx", dsn
	if backend == "sqlite" {
		driver, source = "sqlite", strings.TrimPrefix(dsn, "sqlite:")
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// The cursor stops at the last change that may push (channel_key_needed
	// here), not at the last change.
	outboxEmpty := func(t *testing.T) {
		t.Helper()
		eventually(t, "the outbox to read the change log and send everything", 15*time.Second, func() bool {
			var passed bool
			var pending int
			if err := db.QueryRow(`SELECT (SELECT last FROM push_cursor) >= (SELECT COALESCE(MAX(id), 0) FROM changes WHERE event = 'channel_key_needed'),
				(SELECT COUNT(*) FROM push_outbox)`).Scan(&passed, &pending); err != nil {
				t.Fatal(err)
			}
			return passed && pending == 0
		})
	}

	base := srv.URL()
	ann, bob := apitest.Register(t, base, apitest.Unique("ann")), apitest.Register(t, base, apitest.Unique("bob"))
	eve, fred := apitest.Register(t, base, apitest.Unique("eve")), apitest.Register(t, base, apitest.Unique("fred"))
	rcv := newPushReceiver(t)
	readPushKey(t, bob, rcv)
	bob.Must(t, 201, "POST", "/api/notifications/devices", map[string]any{"deviceId": "bob-laptop", "platform": "webpush",
		"subscription": rcv.subscription()})

	// A community ann owns and bob administers, with a private (end-to-end
	// encrypted) channel only ann reads so far.
	club := func(name string) (communityID, channelID string) {
		c := createCommunity(t, ann, name, false)
		for _, u := range []*apitest.Client{bob, eve, fred} {
			u.Must(t, 200, "POST", "/api/communities/join", map[string]any{"communityId": c.CommunityID})
		}
		ann.Must(t, 200, "POST", "/api/communities/members/role", map[string]any{"communityId": c.CommunityID, "memberId": bob.UserID, "role": "admin"})
		ch := createChannel(t, ann, c.CommunityID, "vault-"+name, "text", true, nil, map[string]string{ann.UserID: "k-ann"})
		if !ch.IsPrivate || ch.E2EEMode != "true" {
			t.Fatalf("channel %+v", ch)
		}
		return c.CommunityID, ch.ChannelID
	}
	community, channel := club("Club")

	// keyRequest makes ann add user to the channel without a key for
	// them, and returns bob's push about it and its topic.
	keyRequest := func(t *testing.T, communityID, channelID string, user *apitest.Client) (anyPush, string) {
		t.Helper()
		n := len(rcv.pushes())
		ann.Must(t, 200, "POST", "/api/channels/members/add", map[string]any{"channelId": channelID, "memberIds": []string{user.UserID}})
		got := rcv.waitPushes(t, n+1)
		p, topic := decodeAnyPush(t, got[n]), rcv.pushTopics()[n]
		if p.Type != "key_request" || p.CommunityID != communityID || p.ChannelID != channelID || p.UserID != user.UserID || p.Count != 1 ||
			p.CallID != "" || p.RequesterName != "" || p.Message != "" || p.CallerName != "" {
			t.Fatalf("key request push %s, want key_request for community %s, channel %s, user %s", got[n], communityID, channelID, user.UserID)
		}
		for _, secret := range []string{"vault-", "k-ann", "Club", user.Username} {
			if strings.Contains(string(got[n]), secret) {
				t.Fatalf("push %s names %q", got[n], secret)
			}
		}
		// RFC 8030 §5.4: at most 32 characters of the base64url alphabet.
		if topic == "" || len(topic) > 32 || strings.Trim(topic, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			t.Fatalf("topic %q", topic)
		}
		return p, topic
	}

	var first anyPush
	var topic string
	t.Run("ToAdminWithoutSocket", func(t *testing.T) {
		first, topic = keyRequest(t, community, channel, eve)
	})

	t.Run("OneTopicPerCommunity", func(t *testing.T) {
		second, sameTopic := keyRequest(t, community, channel, fred)
		if sameTopic != topic || second.NotificationID == first.NotificationID {
			t.Fatalf("second key request of the community: topic %q id %s; first: topic %q id %s",
				sameTopic, second.NotificationID, topic, first.NotificationID)
		}
		otherCommunity, otherChannel := club("Guild")
		_, otherTopic := keyRequest(t, otherCommunity, otherChannel, eve)
		if otherTopic == topic {
			t.Fatalf("two communities' key requests share the topic %q", topic)
		}
	})

	t.Run("NoneWithASocket", func(t *testing.T) {
		gus := apitest.Register(t, base, apitest.Unique("gus"))
		gus.Must(t, 200, "POST", "/api/communities/join", map[string]any{"communityId": community})
		outboxEmpty(t)
		n := len(rcv.pushes())
		ws := apitest.DialWS(t, base, bob.Token)
		ann.Must(t, 200, "POST", "/api/channels/members/add", map[string]any{"channelId": channel, "memberIds": []string{gus.UserID}})
		ws.WaitEvent(t, "channel_key_needed", gus.UserID)
		outboxEmpty(t)
		if got := rcv.pushes(); len(got) != n {
			t.Fatalf("a key request pushed to an admin with a socket: %s", got[n:])
		}
	})
}
