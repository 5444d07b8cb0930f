package server_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/hkdf"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/natstest"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/server"
)

// pushReceiver is a Web Push service and user agent on loopback: it owns a
// subscription's P-256 key pair and auth secret, checks each push's VAPID
// token against the server's public key, and decrypts its aes128gcm body
// (RFC 8291) itself.
type pushReceiver struct {
	t      testing.TB
	srv    *httptest.Server
	key    *ecdh.PrivateKey
	auth   []byte
	vapid  *ecdsa.PublicKey // the key the server serves; set before any push
	vapidS string

	mu     sync.Mutex
	status int               // the answer to pushes; 201 by default
	got    []json.RawMessage // decrypted payloads
	topics []string          // the Topic header of each of got
	tries  int               // requests, answered with any status
	faults []string
	wake   chan struct{}
	// onPush, when set, runs after a push is recorded in got (the push
	// service has taken it) and before it is answered.
	onPush func(req *http.Request)
}

func newPushReceiver(t testing.TB) *pushReceiver {
	t.Helper()
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r := &pushReceiver{t: t, key: key, auth: make([]byte, 16), status: http.StatusCreated, wake: make(chan struct{}, 1)}
	_, _ = rand.Read(r.auth)
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		r.srv.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, f := range r.faults {
			t.Errorf("push receiver: %s", f)
		}
	})
	return r
}

func (r *pushReceiver) subscription() map[string]any {
	return map[string]any{"endpoint": r.srv.URL + "/push/sub1", "keys": map[string]string{
		"p256dh": base64.RawURLEncoding.EncodeToString(r.key.PublicKey().Bytes()),
		"auth":   base64.RawURLEncoding.EncodeToString(r.auth)}}
}

func (r *pushReceiver) setStatus(code int) {
	r.mu.Lock()
	r.status = code
	r.mu.Unlock()
}

func (r *pushReceiver) attempts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tries
}

func (r *pushReceiver) pushes() []json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]json.RawMessage(nil), r.got...)
}

// pushTopics returns the Topic header of every push received.
func (r *pushReceiver) pushTopics() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.topics...)
}

func (r *pushReceiver) setOnPush(f func(req *http.Request)) {
	r.mu.Lock()
	r.onPush = f
	r.mu.Unlock()
}

// waitPushes waits up to 15 s for n pushes in all.
func (r *pushReceiver) waitPushes(t testing.TB, n int) []json.RawMessage {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		if got := r.pushes(); len(got) >= n {
			return got
		}
		select {
		case <-r.wake:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("got %d pushes, want %d", len(r.pushes()), n)
		}
	}
}

func (r *pushReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	payload, err := r.check(req, body)
	r.mu.Lock()
	status := r.status
	r.tries++
	if err != nil {
		r.faults = append(r.faults, err.Error())
		status = http.StatusBadRequest
	} else if status < 300 {
		r.got = append(r.got, payload)
		r.topics = append(r.topics, req.Header.Get("Topic"))
	}
	onPush := r.onPush
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	if onPush != nil && err == nil && status < 300 {
		onPush(req)
	}
	w.WriteHeader(status)
}

// check verifies the VAPID authorization and decrypts the body.
func (r *pushReceiver) check(req *http.Request, body []byte) (json.RawMessage, error) {
	if req.Method != "POST" || req.URL.Path != "/push/sub1" {
		return nil, fmt.Errorf("%s %s", req.Method, req.URL.Path)
	}
	if ce := req.Header.Get("Content-Encoding"); ce != "aes128gcm" {
		return nil, fmt.Errorf("Content-Encoding %q", ce)
	}
	if req.Header.Get("TTL") == "" {
		return nil, fmt.Errorf("no TTL header")
	}
	// Authorization: vapid t=<JWT>, k=<public key>
	auth, ok := strings.CutPrefix(req.Header.Get("Authorization"), "vapid ")
	if !ok {
		return nil, fmt.Errorf("Authorization %q is not vapid", req.Header.Get("Authorization"))
	}
	var tok, k string
	for _, p := range strings.Split(auth, ",") {
		p = strings.TrimSpace(p)
		if v, ok := strings.CutPrefix(p, "t="); ok {
			tok = v
		} else if v, ok := strings.CutPrefix(p, "k="); ok {
			k = v
		}
	}
	if k != r.vapidS {
		return nil, fmt.Errorf("k=%q is not the served VAPID key %q", k, r.vapidS)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("malformed JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return nil, fmt.Errorf("JWT signature is not 64 bytes")
	}
	h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(r.vapid, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return nil, fmt.Errorf("JWT signature does not verify with the served VAPID key")
	}
	var hdr struct{ Alg string }
	var claims struct {
		Aud, Sub string
		Exp      int64
	}
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if json.Unmarshal(hb, &hdr) != nil || hdr.Alg != "ES256" || json.Unmarshal(cb, &claims) != nil {
		return nil, fmt.Errorf("JWT header %s claims %s", hb, cb)
	}
	if claims.Aud != r.srv.URL || !strings.HasPrefix(claims.Sub, "mailto:") || claims.Exp < time.Now().Unix() ||
		claims.Exp > time.Now().Add(24*time.Hour).Unix() {
		return nil, fmt.Errorf("JWT claims %s", cb)
	}
	return r.decrypt(body)
}

// decrypt opens an aes128gcm body (RFC 8188 framing, RFC 8291 keys).
func (r *pushReceiver) decrypt(body []byte) (json.RawMessage, error) {
	if len(body) < 21 {
		return nil, fmt.Errorf("body of %d bytes", len(body))
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if len(body) < 21+idlen || idlen != 65 {
		return nil, fmt.Errorf("keyid of %d bytes", idlen)
	}
	asPublic, ct := body[21:21+idlen], body[21+idlen:]
	if uint32(len(ct)) > rs {
		return nil, fmt.Errorf("more than one record (%d > %d)", len(ct), rs)
	}
	as, err := ecdh.P256().NewPublicKey(asPublic)
	if err != nil {
		return nil, fmt.Errorf("keyid is not a P-256 key: %v", err)
	}
	secret, err := r.key.ECDH(as)
	if err != nil {
		return nil, err
	}
	info := append(append([]byte("WebPush: info\x00"), r.key.PublicKey().Bytes()...), asPublic...)
	ikm := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret, r.auth, info), ikm); err != nil {
		return nil, err
	}
	cek, nonce := make([]byte, 16), make([]byte, 12)
	if _, err := io.ReadFull(hkdf.New(sha256.New, ikm, salt, []byte("Content-Encoding: aes128gcm\x00")), cek); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(hkdf.New(sha256.New, ikm, salt, []byte("Content-Encoding: nonce\x00")), nonce); err != nil {
		return nil, err
	}
	block, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(block)
	plain, err := gcm.Open(nil, nonce, ct, nil)
	if err != nil {
		return nil, fmt.Errorf("decrypt: %v", err)
	}
	plain = bytes.TrimRight(plain, "\x00")
	if len(plain) == 0 || plain[len(plain)-1] != 2 {
		return nil, fmt.Errorf("no last-record delimiter")
	}
	return plain[:len(plain)-1], nil
}

type pushPayload struct {
	NotificationID string  `json:"notificationId"`
	Type           string  `json:"type"`
	ConversationID string  `json:"conversationId"`
	Count          int     `json:"count"`
	SenderName     *string `json:"senderName"`
}

func decodePush(t testing.TB, raw json.RawMessage) pushPayload {
	t.Helper()
	var p pushPayload
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("push payload %s: %v", raw, err)
	}
	if p.NotificationID == "" || p.Type != "message" || p.ConversationID == "" || p.Count < 1 {
		t.Fatalf("push payload %s", raw)
	}
	return p
}

// waitOutboxPast waits until the outbox has read the change log past the
// message and sent every push it made: the barrier before checking that a
// message caused no push.
func waitOutboxPast(t *testing.T, db *sql.DB, messageID string) {
	t.Helper()
	eventually(t, "the outbox to pass message "+messageID, 15*time.Second, func() bool {
		var pending int
		var passed bool
		err := db.QueryRow(`SELECT (SELECT last FROM push_cursor) >= (SELECT MAX(id) FROM changes WHERE message_id = $1),
			(SELECT COUNT(*) FROM push_outbox)`, messageID).Scan(&passed, &pending)
		if err != nil {
			t.Fatal(err)
		}
		return passed && pending == 0
	})
}

// readPushKey points the receiver at the VAPID key the server serves.
func readPushKey(t *testing.T, c *apitest.Client, rcv *pushReceiver) {
	t.Helper()
	var key struct{ PublicKey string }
	c.Must(t, 200, "GET", "/api/notifications/vapid-public-key", nil).Decode(t, &key)
	raw, err := base64.RawURLEncoding.DecodeString(key.PublicKey)
	if err != nil {
		t.Fatalf("vapid key %q: %v", key.PublicKey, err)
	}
	if rcv.vapid, err = ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw); err != nil {
		t.Fatalf("vapid key: %v", err)
	}
	rcv.vapidS = key.PublicKey
}

// TestNotificationsTwoNodes checks that a socket on the node that does not
// run the outbox still keeps pushes away, and that both nodes serve the
// same VAPID key.
func TestNotificationsTwoNodes(t *testing.T) {
	dsn := testdb.DSN(t, "postgres")
	ns := natstest.Start(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	node := func(name string) *server.Server {
		return apitest.MustStart(t, "postgres", func(c *server.Config) {
			c.DB, c.Bus, c.NodeID = dsn, ns.URL(), name
			c.PushAllowHTTP, c.PushAllowInternal = true, true
			c.NotifyTick = 50 * time.Millisecond
		})
	}
	nodes := map[string]*server.Server{"node-a": node("node-a"), "node-b": node("node-b")}
	var holder string
	eventually(t, "a node to take the push outbox", 15*time.Second, func() bool {
		return db.QueryRow(`SELECT holder FROM job_leases WHERE name = 'push-outbox'`).Scan(&holder) == nil
	})
	runner, other := nodes[holder], nodes["node-a"]
	if holder == "node-a" {
		other = nodes["node-b"]
	}

	ann := apitest.Register(t, runner.URL(), apitest.Unique("ann"))
	bob := apitest.Register(t, other.URL(), apitest.Unique("bob"))
	ann.Must(t, 201, "POST", "/api/contacts", map[string]string{"contactId": bob.UserID}) // ann hears bob's presence
	rcv := newPushReceiver(t)
	readPushKey(t, ann, rcv)
	var key struct{ PublicKey string }
	bob.Must(t, 200, "GET", "/api/notifications/vapid-public-key", nil).Decode(t, &key)
	if key.PublicKey != rcv.vapidS {
		t.Fatalf("the nodes serve different VAPID keys: %s and %s", rcv.vapidS, key.PublicKey)
	}
	bob.Must(t, 201, "POST", "/api/notifications/devices", map[string]any{"deviceId": "bob-laptop", "platform": "webpush",
		"subscription": rcv.subscription()})

	annWS := apitest.DialWS(t, runner.URL(), ann.Token)
	bobWS := apitest.DialWS(t, other.URL(), bob.Token)
	annWS.WaitFor(t, func(f apitest.Frame) bool {
		return f.Event == "presence_update" && strings.Contains(string(f.Data), bob.UserID) && strings.Contains(string(f.Data), `"online":true`)
	})
	m := send(t, ann, bob, "bob-is-on-the-other-node", nil)
	bobWS.WaitEvent(t, "new_message", m.MessageID)
	waitOutboxPast(t, db, m.MessageID)
	if got := rcv.pushes(); len(got) != 0 {
		t.Fatalf("pushes while bob has a socket on %s: %s", other.Addr(), got)
	}
	bobWS.Close()
	annWS.WaitFor(t, func(f apitest.Frame) bool {
		return f.Event == "presence_update" && strings.Contains(string(f.Data), bob.UserID) && strings.Contains(string(f.Data), `"online":false`)
	})
	send(t, ann, bob, "now-offline", nil)
	decodePush(t, rcv.waitPushes(t, 1)[0])
}

func TestNotifications(t *testing.T) {
	t.Parallel()
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) { testNotifications(t, backend) })
	}
}

func testNotifications(t *testing.T, backend string) {
	dsn := testdb.DSN(t, backend)
	srv := apitest.MustStart(t, backend, func(c *server.Config) {
		c.DB = dsn
		c.PushAllowHTTP, c.PushAllowInternal = true, true
		c.NotifyTick = 50 * time.Millisecond
		c.PushCollapse = time.Second
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
	outboxPast := func(t *testing.T, messageID string) { t.Helper(); waitOutboxPast(t, db, messageID) }

	ann := apitest.Register(t, srv.URL(), apitest.Unique("ann"))
	bob := apitest.Register(t, srv.URL(), apitest.Unique("bob"))
	rcv := newPushReceiver(t)

	readPushKey(t, bob, rcv)

	t.Run("Devices", func(t *testing.T) {
		sub := rcv.subscription()
		badKeys := map[string]any{"endpoint": sub["endpoint"], "keys": map[string]string{"p256dh": "AAAA", "auth": "AAAA"}}
		for _, tc := range []struct {
			name string
			body map[string]any
			want int
		}{
			{"ErrNoDeviceID", map[string]any{"platform": "webpush", "subscription": sub}, 400},
			{"ErrPlatform", map[string]any{"deviceId": "d1", "platform": "pager", "subscription": sub}, 400},
			{"ErrNoSubscription", map[string]any{"deviceId": "d1", "platform": "webpush"}, 400},
			{"ErrBadKeys", map[string]any{"deviceId": "d1", "platform": "webpush", "subscription": badKeys}, 400},
			{"ErrEndpoint", map[string]any{"deviceId": "d1", "platform": "webpush", "subscription": map[string]any{
				"endpoint": "ftp://x/y", "keys": sub["keys"]}}, 400},
			{"ErrLongDeviceID", map[string]any{"deviceId": strings.Repeat("d", 200), "platform": "webpush", "subscription": sub}, 400},
			{"ErrFCMNotConfigured", map[string]any{"deviceId": "d1", "platform": "fcm", "token": "abc"}, 503},
		} {
			t.Run(tc.name, func(t *testing.T) { bob.Must(t, tc.want, "POST", "/api/notifications/devices", tc.body) })
		}
		bob.Must(t, 201, "POST", "/api/notifications/devices", map[string]any{"deviceId": "bob-laptop", "platform": "webpush", "subscription": sub})
		var list []struct{ DeviceID, Platform, CreatedAt string }
		bob.Must(t, 200, "GET", "/api/notifications/devices", nil).Decode(t, &list)
		if len(list) != 1 || list[0].DeviceID != "bob-laptop" || list[0].Platform != "webpush" || list[0].CreatedAt == "" {
			t.Fatalf("devices = %+v", list)
		}
		ann.Must(t, 404, "DELETE", "/api/notifications/devices/bob-laptop", nil) // not ann's
		ann.Must(t, 200, "GET", "/api/notifications/devices", nil).Decode(t, &list)
		if len(list) != 0 {
			t.Fatalf("ann sees devices %+v", list)
		}
		bob.Must(t, 400, "PUT", "/api/notifications/settings", map[string]any{})
	})

	annWS := apitest.DialWS(t, srv.URL(), ann.Token)
	bobWS := apitest.DialWS(t, srv.URL(), bob.Token)

	t.Run("NoneWhileConnected", func(t *testing.T) {
		m := send(t, ann, bob, "while-online", nil)
		bobWS.WaitEvent(t, "new_message", m.MessageID)
		outboxPast(t, m.MessageID)
		if got := rcv.pushes(); len(got) != 0 {
			t.Fatalf("pushes while bob has a socket: %s", got)
		}
	})

	bobWS.Close()
	annWS.WaitFor(t, func(f apitest.Frame) bool {
		return f.Event == "presence_update" && strings.Contains(string(f.Data), bob.UserID) && strings.Contains(string(f.Data), `"online":false`)
	})

	var conversationID string
	t.Run("OfflineGetsOneWithoutContent", func(t *testing.T) {
		m := send(t, ann, bob, "secret-content-xyz", nil)
		got := rcv.waitPushes(t, 1)
		p := decodePush(t, got[0])
		if strings.Contains(string(got[0]), "secret-content-xyz") || p.Count != 1 {
			t.Fatalf("push %s", got[0])
		}
		if p.SenderName == nil || *p.SenderName != "User "+ann.Username {
			t.Fatalf("push previews are on by default; push %s", got[0])
		}
		conversationID = p.ConversationID
		outboxPast(t, m.MessageID)
	})

	t.Run("NoneForOwnOrMuted", func(t *testing.T) {
		n := len(rcv.pushes())
		own := send(t, bob, ann, "bob-writes", nil)
		outboxPast(t, own.MessageID)
		bob.Must(t, 200, "POST", "/api/users/mute", map[string]any{"mutedUserId": ann.UserID})
		muted := send(t, ann, bob, "while-muted", nil)
		outboxPast(t, muted.MessageID)
		if got := rcv.pushes(); len(got) != n {
			t.Fatalf("pushes for bob's own or a muted message: %s", got[n:])
		}
		bob.Must(t, 200, "POST", "/api/users/unmute", map[string]any{"mutedUserId": ann.UserID})
	})

	t.Run("NoneForMutedGroup", func(t *testing.T) {
		var g struct{ GroupID string }
		ann.Must(t, 201, "POST", "/api/groups/create", map[string]any{"name": "Trip", "members": []string{bob.UserID}}).Decode(t, &g)
		bob.Must(t, 200, "POST", "/api/chats/mute", map[string]any{"conversationId": g.GroupID})
		n := len(rcv.pushes())
		muted := groupSend(t, ann, g.GroupID, "group-while-muted")
		outboxPast(t, muted.MessageID)
		if got := rcv.pushes(); len(got) != n {
			t.Fatalf("pushes for a muted group: %s", got[n:])
		}
		bob.Must(t, 200, "POST", "/api/chats/unmute", map[string]any{"conversationId": g.GroupID})
		groupSend(t, ann, g.GroupID, "group-unmuted")
		got := rcv.waitPushes(t, n+1)
		if p := decodePush(t, got[n]); p.ConversationID == conversationID || strings.Contains(string(got[n]), "group-unmuted") {
			t.Fatalf("group push %s", got[n])
		}
	})

	t.Run("PreviewsOff", func(t *testing.T) {
		var set struct{ PushPreviews bool }
		bob.Must(t, 200, "PUT", "/api/notifications/settings", map[string]any{"pushPreviews": false}).Decode(t, &set)
		if set.PushPreviews {
			t.Fatal("pushPreviews still on")
		}
		n := len(rcv.pushes())
		send(t, ann, bob, "no-preview", nil)
		got := rcv.waitPushes(t, n+1)
		p := decodePush(t, got[n])
		if p.SenderName != nil || p.ConversationID != conversationID {
			t.Fatalf("push %s, want no senderName, conversation %s", got[n], conversationID)
		}
	})

	t.Run("BurstCollapses", func(t *testing.T) {
		n := len(rcv.pushes())
		const burst = 20
		start := time.Now()
		var last sendRes
		for i := range burst {
			last = send(t, ann, bob, fmt.Sprintf("burst-%d", i), nil)
		}
		took := time.Since(start)
		outboxPast(t, last.MessageID)
		got := rcv.pushes()[n:]
		total := 0
		for _, raw := range got {
			total += decodePush(t, raw).Count
		}
		// One push per second (PushCollapse) at most, plus the first.
		if total != burst || len(got) > 2+int(took/time.Second) {
			t.Fatalf("%d pushes for %d messages sent in %v, counting %d", len(got), burst, took, total)
		}
	})

	t.Run("RetriedUntilDelivered", func(t *testing.T) {
		n, tries := len(rcv.pushes()), rcv.attempts()
		rcv.setStatus(http.StatusServiceUnavailable)
		send(t, ann, bob, "while-the-push-service-is-down", nil)
		eventually(t, "two failed attempts", 15*time.Second, func() bool { return rcv.attempts() >= tries+2 })
		if len(rcv.pushes()) != n {
			t.Fatal("a push counted as delivered while the service answered 503")
		}
		rcv.setStatus(http.StatusCreated)
		got := rcv.waitPushes(t, n+1)
		if p := decodePush(t, got[n]); p.Count != 1 || p.ConversationID != conversationID {
			t.Fatalf("push after retries %s", got[n])
		}
	})

	t.Run("GoneRemovesDevice", func(t *testing.T) {
		rcv.setStatus(http.StatusGone)
		send(t, ann, bob, "to-a-gone-device", nil)
		eventually(t, "bob's device to be removed", 15*time.Second, func() bool {
			var list []any
			bob.Must(t, 200, "GET", "/api/notifications/devices", nil).Decode(t, &list)
			return len(list) == 0
		})
	})
}
