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
