package server_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
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

// fcmStandIn plays Google's OAuth2 token endpoint and the FCM HTTP v1
// API on loopback: it checks the service account's signed JWT, issues
// access tokens, requires one on each send, and answers UNREGISTERED once
// told the device is gone.
type fcmStandIn struct {
	srv *httptest.Server
	pub *rsa.PublicKey

	mu     sync.Mutex
	issued map[string]bool
	gone   bool
	got    []map[string]any // accepted messages
	faults []string
}

func (f *fcmStandIn) fault(w http.ResponseWriter, format string, args ...any) {
	f.faults = append(f.faults, fmt.Sprintf(format, args...))
	w.WriteHeader(http.StatusBadRequest)
}

func (f *fcmStandIn) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/token":
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
			f.fault(w, "token request %v", r.PostForm)
			return
		}
		parts := strings.Split(r.PostForm.Get("assertion"), ".")
		if len(parts) != 3 {
			f.fault(w, "assertion is no JWT")
			return
		}
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if err := rsa.VerifyPKCS1v15(f.pub, crypto.SHA256, h[:], sig); err != nil {
			f.fault(w, "assertion signature: %v", err)
			return
		}
		var claims struct {
			Iss, Scope, Aud string
			Exp             int64
		}
		cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
		if json.Unmarshal(cb, &claims) != nil || claims.Iss != "parley@parley-test.iam.gserviceaccount.com" ||
			claims.Scope != "https://www.googleapis.com/auth/firebase.messaging" || claims.Aud != f.srv.URL+"/token" || claims.Exp < time.Now().Unix() {
			f.fault(w, "assertion claims %s", cb)
			return
		}
		tok := fmt.Sprintf("ya29.test-%d", len(f.issued))
		f.issued[tok] = true
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, tok)
	case "/v1/projects/parley-test/messages:send":
		bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !f.issued[bearer] {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"code":401,"status":"UNAUTHENTICATED"}}`))
			f.faults = append(f.faults, "send without an issued access token")
			return
		}
		var body struct{ Message map[string]any }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Message["token"] != "fcm-token-1" {
			f.fault(w, "send body %v %v", body, err)
			return
		}
		if f.gone {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":404,"status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`))
			return
		}
		f.got = append(f.got, body.Message)
		_, _ = w.Write([]byte(`{"name":"projects/parley-test/messages/1"}`))
	default:
		f.fault(w, "%s %s", r.Method, r.URL.Path)
	}
}

func TestFCM(t *testing.T) {
	t.Parallel()
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) { testFCM(t, backend) })
	}
}

func testFCM(t *testing.T, backend string) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	fcm := &fcmStandIn{pub: &key.PublicKey, issued: map[string]bool{}}
	fcm.srv = httptest.NewServer(http.HandlerFunc(fcm.serve))
	t.Cleanup(func() {
		fcm.srv.Close()
		for _, f := range fcm.faults {
			t.Errorf("fcm stand-in: %s", f)
		}
	})
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	creds, _ := json.Marshal(map[string]string{"type": "service_account", "project_id": "parley-test",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "parley@parley-test.iam.gserviceaccount.com", "token_uri": fcm.srv.URL + "/token"})
	credsFile := filepath.Join(t.TempDir(), "service-account.json")
	if err := os.WriteFile(credsFile, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := apitest.MustStart(t, backend, func(c *server.Config) {
		c.FCMCredentialsFile, c.FCMEndpoint = credsFile, fcm.srv.URL
		c.NotifyTick = 50 * time.Millisecond
		c.PushCollapse = 100 * time.Millisecond
	})
	ann := apitest.Register(t, srv.URL(), apitest.Unique("ann"))
	bob := apitest.Register(t, srv.URL(), apitest.Unique("bob"))
	bob.Must(t, 400, "POST", "/api/notifications/devices", map[string]any{"deviceId": "phone", "platform": "fcm", "token": "a/../b"})
	bob.Must(t, 201, "POST", "/api/notifications/devices", map[string]any{"deviceId": "phone", "platform": "fcm", "token": "fcm-token-1"})

	send(t, ann, bob, "fcm-secret-content", nil) // bob never connected: offline
	eventually(t, "a message at the FCM stand-in", 15*time.Second, func() bool {
		fcm.mu.Lock()
		defer fcm.mu.Unlock()
		return len(fcm.got) > 0
	})
	fcm.mu.Lock()
	raw, _ := json.Marshal(fcm.got[0])
	data, _ := fcm.got[0]["data"].(map[string]any)
	android, _ := fcm.got[0]["android"].(map[string]any)
	fcm.gone = true
	fcm.mu.Unlock()
	if strings.Contains(string(raw), "fcm-secret-content") || data["conversationId"] == nil || data["count"] != "1" ||
		data["senderName"] != "User "+ann.Username || android["collapse_key"] == nil {
		t.Fatalf("message %s", raw)
	}

	send(t, ann, bob, "to-an-unregistered-phone", nil)
	eventually(t, "bob's phone to be removed", 15*time.Second, func() bool {
		var list []any
		bob.Must(t, 200, "GET", "/api/notifications/devices", nil).Decode(t, &list)
		return len(list) == 0
	})
}
