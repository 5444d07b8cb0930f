package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/server"
)

// apnsStandIn answers like APNs over HTTP/2 on loopback: it checks the
// ES256 provider token against the public half of the key the server was
// given, and answers 200, or 410 Unregistered once told the device is gone.
type apnsStandIn struct {
	srv *httptest.Server
	pub *ecdsa.PublicKey

	mu     sync.Mutex
	gone   bool
	got    []map[string]any // the bodies of accepted pushes
	faults []string
}

const (
	apnsKeyID, apnsTeamID, apnsTopic = "KEY1234567", "TEAM123456", "chat.parley.app"
)

func (a *apnsStandIn) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	fault := a.check(r, body)
	a.mu.Lock()
	defer a.mu.Unlock()
	if fault != "" {
		a.faults = append(a.faults, fault)
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"reason":"InvalidProviderToken"}`))
		return
	}
	if a.gone {
		w.WriteHeader(http.StatusGone)
		_, _ = fmt.Fprintf(w, `{"reason":"Unregistered","timestamp":%d}`, time.Now().UnixMilli())
		return
	}
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	a.got = append(a.got, m)
	w.Header().Set("apns-id", "9B3E0F6A-0000-0000-0000-000000000001")
	w.WriteHeader(http.StatusOK)
}

func (a *apnsStandIn) check(r *http.Request, body []byte) string {
	if r.ProtoMajor != 2 || r.Method != "POST" || r.URL.Path != "/3/device/aabbccddeeff00112233" {
		return fmt.Sprintf("%s %s %s", r.Proto, r.Method, r.URL.Path)
	}
	if r.Header.Get("apns-topic") != apnsTopic || r.Header.Get("apns-push-type") != "alert" || r.Header.Get("apns-collapse-id") == "" {
		return fmt.Sprintf("headers %v", r.Header)
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "bearer ")
	parts := strings.Split(tok, ".")
	if !ok || len(parts) != 3 {
		return "no bearer provider token"
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err != nil || len(sig) != 64 || !ecdsa.Verify(a.pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return "provider token signature does not verify"
	}
	var hdr struct{ Alg, Kid string }
	var claims struct {
		Iss string
		Iat int64
	}
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if json.Unmarshal(hb, &hdr) != nil || json.Unmarshal(cb, &claims) != nil || hdr.Alg != "ES256" || hdr.Kid != apnsKeyID ||
		claims.Iss != apnsTeamID || time.Since(time.Unix(claims.Iat, 0)) > time.Hour {
		return fmt.Sprintf("provider token header %s claims %s", hb, cb)
	}
	if len(body) > 4096 {
		return "payload over 4 KiB"
	}
	return ""
}

func TestAPNs(t *testing.T) {
	t.Parallel()
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) { testAPNs(t, backend) })
	}
}

func testAPNs(t *testing.T, backend string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "AuthKey.p8")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	apns := &apnsStandIn{pub: &key.PublicKey}
	apns.srv = httptest.NewUnstartedServer(http.HandlerFunc(apns.serve))
	apns.srv.EnableHTTP2 = true
	apns.srv.StartTLS()
	t.Cleanup(func() {
		apns.srv.Close()
		for _, f := range apns.faults {
			t.Errorf("apns stand-in: %s", f)
		}
	})
	pool := x509.NewCertPool()
	pool.AddCert(apns.srv.Certificate())

	srv := apitest.MustStart(t, backend, func(c *server.Config) {
		c.APNsKeyFile, c.APNsKeyID, c.APNsTeamID, c.APNsTopic, c.APNsHost = keyFile, apnsKeyID, apnsTeamID, apnsTopic, apns.srv.URL
		c.PushRootCAs = pool
		c.NotifyTick = 50 * time.Millisecond
		c.PushCollapse = 100 * time.Millisecond
	})
	ann := apitest.Register(t, srv.URL(), apitest.Unique("ann"))
	bob := apitest.Register(t, srv.URL(), apitest.Unique("bob"))
	bob.Must(t, 400, "POST", "/api/notifications/devices", map[string]any{"deviceId": "phone", "platform": "apns", "token": "not/hex"})
	bob.Must(t, 400, "POST", "/api/notifications/devices", map[string]any{"deviceId": "phone", "platform": "apns"})
	bob.Must(t, 201, "POST", "/api/notifications/devices", map[string]any{"deviceId": "phone", "platform": "apns", "token": "aabbccddeeff00112233"})

	// Bob has never connected: he is offline.
	send(t, ann, bob, "apns-secret-content", nil)
	eventually(t, "a push at the APNs stand-in", 15*time.Second, func() bool {
		apns.mu.Lock()
		defer apns.mu.Unlock()
		return len(apns.got) > 0
	})
	apns.mu.Lock()
	got := apns.got[0]
	apns.mu.Unlock()
	raw, _ := json.Marshal(got)
	aps, _ := got["aps"].(map[string]any)
	alert, _ := aps["alert"].(map[string]any)
	if strings.Contains(string(raw), "apns-secret-content") || got["conversationId"] == nil || got["notificationId"] == nil ||
		alert["body"] != "New message from User "+ann.Username {
		t.Fatalf("push %s", raw)
	}

	apns.mu.Lock()
	apns.gone = true
	apns.mu.Unlock()
	send(t, ann, bob, "to-an-unregistered-phone", nil)
	eventually(t, "bob's phone to be removed", 15*time.Second, func() bool {
		var list []any
		bob.Must(t, 200, "GET", "/api/notifications/devices", nil).Decode(t, &list)
		return len(list) == 0
	})
}
