package server_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/server"
)

// TestAccounts drives the account routes of API.md §2 end to end, as a
// client would, on every database backend.
func TestAccounts(t *testing.T) {
	t.Parallel()
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := apitest.MustStart(t, backend, nil)
			testAccounts(t, srv)
		})
	}
}

func testAccounts(t *testing.T, srv *server.Server) {
	base := srv.URL()
	anon := apitest.NewClient(base)

	t.Run("Health", func(t *testing.T) {
		r := anon.Must(t, 200, "GET", "/api/health", nil)
		if string(r.Data) != `{"status":"ok"}` || r.Message != "API is healthy" {
			t.Fatalf("health = %s %q", r.Data, r.Message)
		}
	})

	ann := apitest.Register(t, base, "ann")
	bob := apitest.Register(t, base, "bob")

	t.Run("Register", func(t *testing.T) {
		t.Run("ErrUsernameTaken", func(t *testing.T) {
			r := anon.Must(t, 409, "POST", "/api/users/register", map[string]string{"username": "ANN", "password": "12345678", "deviceId": "d", "publicKey": "k"})
			if r.Error.Code != "username_taken" {
				t.Fatalf("code = %s", r.Error.Code)
			}
		})
		cases := []struct {
			name, body, field string
		}{
			{"ErrShortUsername", `{"username":"ab","password":"12345678","deviceId":"d","publicKey":"k"}`, "username"},
			{"ErrBadUsername", `{"username":"a b c","password":"12345678","deviceId":"d","publicKey":"k"}`, "username"},
			{"ErrShortPassword", `{"username":"carol","password":"1234567","deviceId":"d","publicKey":"k"}`, "password"},
			{"ErrMissingDevice", `{"username":"carol","password":"12345678","publicKey":"k"}`, "deviceId"},
			{"ErrMissingKey", `{"username":"carol","password":"12345678","deviceId":"d"}`, "publicKey"},
			{"ErrWrongType", `{"username":"carol","password":12345678,"deviceId":"d","publicKey":"k"}`, "password"},
			{"ErrMalformed", `{"username":"carol",`, "JSON"},
			{"ErrNotObject", `[1,2]`, "object"},
			{"ErrBadEmail", `{"username":"carol","password":"12345678","deviceId":"d","publicKey":"k","email":"nope"}`, "email"},
			{"ErrEmpty", ``, "username"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := anon.Must(t, 400, "POST", "/api/users/register", tc.body)
				if r.Error.Code != "invalid_argument" || !strings.Contains(r.Error.Message, tc.field) {
					t.Fatalf("error = %+v, want invalid_argument naming %s", r.Error, tc.field)
				}
			})
		}
		t.Run("ErrTooLarge", func(t *testing.T) {
			big := `{"username":"carol","name":"` + strings.Repeat("x", 2<<20) + `"}`
			if r := anon.Must(t, 413, "POST", "/api/users/register", big); r.Error.Code != "too_large" {
				t.Fatalf("code = %s", r.Error.Code)
			}
		})
		t.Run("ErrNameTooLong", func(t *testing.T) {
			body := map[string]string{"username": "carol", "password": "12345678", "deviceId": "d", "publicKey": "k", "name": strings.Repeat("x", 101)}
			anon.Must(t, 400, "POST", "/api/users/register", body)
		})
	})

	t.Run("Login", func(t *testing.T) {
		r := anon.Must(t, 200, "POST", "/api/auth/login", map[string]string{"username": "ANN", "password": "password-ann"})
		var res struct {
			Token, UserID, DeviceID, ExpiresAt string
		}
		r.Decode(t, &res)
		if res.UserID != ann.UserID || res.DeviceID != "dev-ann" || res.Token == "" || res.Token == ann.Token {
			t.Fatalf("login = %+v", res)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", res.ExpiresAt); err != nil {
			t.Fatalf("expiresAt %q: %v", res.ExpiresAt, err)
		}
		wrong := anon.Must(t, 401, "POST", "/api/auth/login", map[string]string{"username": "ann", "password": "wrong-password"})
		unknown := anon.Must(t, 401, "POST", "/api/auth/login", map[string]string{"username": "nobody", "password": "wrong-password"})
		if wrong.Error != unknown.Error || wrong.Error.Code != "invalid_credentials" {
			t.Fatalf("wrong password %+v and unknown user %+v must answer the same", wrong.Error, unknown.Error)
		}
		t.Run("NewDevice", func(t *testing.T) {
			anon.Must(t, 400, "POST", "/api/auth/login", map[string]string{"username": "ann", "password": "password-ann", "deviceId": "phone"})
			r := anon.Must(t, 200, "POST", "/api/auth/login", map[string]string{"username": "ann", "password": "password-ann", "deviceId": "phone", "publicKey": "pk-phone"})
			var res struct{ DeviceID string }
			r.Decode(t, &res)
			if res.DeviceID != "phone" {
				t.Fatalf("device = %s", res.DeviceID)
			}
			var keys []struct{ DeviceID, PublicKey string }
			bob.Must(t, 200, "GET", "/api/users/"+ann.UserID+"/keys", nil).Decode(t, &keys)
			if len(keys) != 2 || keys[1].DeviceID != "phone" || keys[1].PublicKey != "pk-phone" {
				t.Fatalf("keys = %+v", keys)
			}
			if !waitForMail(t, srv, "New sign-in") {
				t.Fatal("no sign-in alert e-mail")
			}
		})
	})

	t.Run("Auth", func(t *testing.T) {
		for _, h := range []string{"", "Bearer ", "Bearer prl_nope", "Basic abc"} {
			req, _ := http.NewRequest("GET", base+"/api/users/me", nil)
			if h != "" {
				req.Header.Set("Authorization", h)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Fatalf("Authorization %q: status %d", h, resp.StatusCode)
			}
		}
	})

	t.Run("Profile", func(t *testing.T) {
		var me struct {
			UserID, Username, Email string
			Settings                struct{ LastSeenVisibility string }
		}
		ann.Must(t, 200, "GET", "/api/users/me", nil).Decode(t, &me)
		if me.UserID != ann.UserID || me.Email != "ann@example.test" || me.Settings.LastSeenVisibility != "everyone" {
			t.Fatalf("me = %+v", me)
		}
		var p struct{ Name, About, Avatar string }
		ann.Must(t, 200, "PUT", "/api/users/me/profile", map[string]string{"name": "Ann A", "about": "hello"}).Decode(t, &p)
		if p.Name != "Ann A" || p.About != "hello" {
			t.Fatalf("profile = %+v", p)
		}
		ann.Must(t, 200, "PUT", "/api/users/"+ann.UserID+"/profile", map[string]string{"avatar": "file_1"}).Decode(t, &p)
		if p.Name != "Ann A" || p.Avatar != "file_1" {
			t.Fatalf("profile = %+v", p)
		}
		if r := ann.Must(t, 403, "PUT", "/api/users/"+bob.UserID+"/profile", map[string]string{"name": "hacked"}); r.Error.Code != "forbidden" {
			t.Fatalf("code = %s", r.Error.Code)
		}
		ann.Must(t, 400, "PUT", "/api/users/me/profile", map[string]string{"about": strings.Repeat("x", 501)})
		var pub map[string]any
		bob.Must(t, 200, "GET", "/api/users/"+ann.UserID, nil).Decode(t, &pub)
		if pub["name"] != "Ann A" || pub["email"] != nil || pub["publicKey"] == "" || pub["passwordHash"] != nil {
			t.Fatalf("public profile = %v", pub)
		}
		bob.Must(t, 404, "GET", "/api/users/usr_nope", nil)
	})

	t.Run("Search", func(t *testing.T) {
		apitest.Register(t, base, "annika")
		var got []struct{ Username string }
		bob.Must(t, 200, "GET", "/api/users/search?q=AN", nil).Decode(t, &got)
		if len(got) != 2 || got[0].Username != "ann" || got[1].Username != "annika" {
			t.Fatalf("search = %+v", got)
		}
		bob.Must(t, 400, "GET", "/api/users/search", nil)
	})

	t.Run("Keys", func(t *testing.T) {
		var k struct{ DeviceID, PublicKey string }
		bob.Must(t, 200, "POST", "/api/users/keys", map[string]string{"deviceId": "dev-bob", "publicKey": "rotated"}).Decode(t, &k)
		if k.PublicKey != "rotated" {
			t.Fatalf("key = %+v", k)
		}
		bob.Must(t, 403, "POST", "/api/users/keys", map[string]string{"deviceId": "x", "publicKey": "y", "userId": ann.UserID})
		bob.Must(t, 400, "POST", "/api/users/keys", map[string]string{"deviceId": "x"})
		ann.Must(t, 404, "GET", "/api/users/usr_nope/keys", nil)
	})

	t.Run("Contacts", func(t *testing.T) {
		ann.Must(t, 201, "POST", "/api/contacts", map[string]string{"contactId": bob.UserID})
		ann.Must(t, 404, "POST", "/api/contacts", map[string]string{"contactId": "usr_nope"})
		ann.Must(t, 400, "POST", "/api/contacts", map[string]string{"contactId": ann.UserID})
		var list []struct {
			UserID   string
			Online   bool
			LastSeen *string
		}
		ann.Must(t, 200, "GET", "/api/contacts", nil).Decode(t, &list)
		if len(list) != 1 || list[0].UserID != bob.UserID || list[0].Online {
			t.Fatalf("contacts = %+v", list)
		}
		ann.Must(t, 200, "DELETE", "/api/contacts/"+bob.UserID, nil)
		ann.Must(t, 404, "DELETE", "/api/contacts/"+bob.UserID, nil)
	})

	t.Run("Block", func(t *testing.T) {
		var res struct {
			BlockedUserID string
			Blocked       bool
		}
		ann.Must(t, 200, "POST", "/api/users/block", map[string]string{"blockedUserId": bob.UserID}).Decode(t, &res)
		if !res.Blocked || res.BlockedUserID != bob.UserID {
			t.Fatalf("block = %+v", res)
		}
		ann.Must(t, 403, "POST", "/api/users/block", map[string]string{"userId": bob.UserID, "blockedUserId": ann.UserID})
		ann.Must(t, 404, "POST", "/api/users/block", map[string]string{"blockedUserId": "usr_nope"})
		var ids []string
		ann.Must(t, 200, "GET", "/api/users/blocked", nil).Decode(t, &ids)
		if len(ids) != 1 || ids[0] != bob.UserID {
			t.Fatalf("blocked = %v", ids)
		}
		var pres struct {
			Online   bool
			LastSeen *string
		}
		bob.Must(t, 200, "GET", "/api/users/"+ann.UserID+"/presence", nil).Decode(t, &pres)
		if pres.LastSeen != nil {
			t.Fatalf("presence across a block = %+v", pres)
		}
		ann.Must(t, 200, "POST", "/api/users/unblock", map[string]string{"userId": ann.UserID, "blockedUserId": bob.UserID})
		ann.Must(t, 200, "GET", "/api/users/blocked", nil).Decode(t, &ids)
		if len(ids) != 0 {
			t.Fatalf("blocked after unblock = %v", ids)
		}
	})

	t.Run("Mute", func(t *testing.T) {
		r := ann.Must(t, 200, "POST", "/api/users/mute", map[string]any{"mutedUserId": bob.UserID, "duration": 3600})
		if !strings.Contains(string(r.Data), `"expiresIn":3600`) {
			t.Fatalf("mute = %s", r.Data)
		}
		r = ann.Must(t, 200, "POST", "/api/users/mute", map[string]any{"mutedUserId": bob.UserID})
		if !strings.Contains(string(r.Data), `"expiresIn":null`) {
			t.Fatalf("mute = %s", r.Data)
		}
		ann.Must(t, 400, "POST", "/api/users/mute", map[string]any{"mutedUserId": bob.UserID, "duration": -5})
		ann.Must(t, 400, "POST", "/api/users/mute", map[string]any{"mutedUserId": bob.UserID, "duration": "soon"})
		ann.Must(t, 200, "POST", "/api/users/unmute", map[string]any{"mutedUserId": bob.UserID})
	})

	t.Run("Settings", func(t *testing.T) {
		var s struct {
			LastSeenVisibility string
			ReadReceipts       bool
			PushPreviews       bool
		}
		ann.Must(t, 200, "PUT", "/api/users/me/settings", map[string]any{"lastSeenVisibility": "nobody", "readReceipts": false}).Decode(t, &s)
		if s.LastSeenVisibility != "nobody" || s.ReadReceipts || !s.PushPreviews {
			t.Fatalf("settings = %+v", s)
		}
		ann.Must(t, 400, "PUT", "/api/users/me/settings", map[string]any{"lastSeenVisibility": "friends"})
		var pres map[string]any
		bob.Must(t, 200, "GET", "/api/users/"+ann.UserID+"/presence", nil).Decode(t, &pres)
		if pres["lastSeen"] != nil || pres["online"] != false {
			t.Fatalf("presence = %v", pres)
		}
	})

	t.Run("PasswordReset", func(t *testing.T) {
		carol := apitest.Register(t, base, "carol")
		anon.Must(t, 200, "POST", "/api/auth/password/forgot", map[string]string{"email": "nobody@example.test"})
		anon.Must(t, 200, "POST", "/api/auth/password/forgot", map[string]string{"email": "CAROL@example.test"})
		anon.Must(t, 400, "POST", "/api/auth/password/forgot", map[string]string{})
		var token string
		deadline := time.Now().Add(20 * time.Second)
		for token == "" && time.Now().Before(deadline) {
			token = resetToken(t, srv, "carol")
			time.Sleep(20 * time.Millisecond)
		}
		if token == "" {
			t.Fatal("no reset e-mail for carol")
		}
		anon.Must(t, 400, "POST", "/api/auth/password/reset", map[string]string{"token": token, "newPassword": "short"})
		anon.Must(t, 404, "POST", "/api/auth/password/reset", map[string]string{"token": "prl_wrong", "newPassword": "new-password-1"})
		anon.Must(t, 200, "POST", "/api/auth/password/reset", map[string]string{"token": token, "newPassword": "new-password-1"})
		if r := anon.Do(t, "POST", "/api/auth/password/reset", map[string]string{"token": token, "newPassword": "new-password-2"}); r.Status != 404 {
			t.Fatalf("reset token used twice: status %d", r.Status)
		}
		carol.Must(t, 401, "GET", "/api/users/me", nil) // every session revoked
		anon.Must(t, 401, "POST", "/api/auth/login", map[string]string{"username": "carol", "password": "password-carol"})
		anon.Must(t, 200, "POST", "/api/auth/login", map[string]string{"username": "carol", "password": "new-password-1"})
	})

	t.Run("Logout", func(t *testing.T) {
		dave := apitest.Register(t, base, "dave")
		dave.Must(t, 200, "GET", "/api/users/me", nil)
		dave.Must(t, 200, "POST", "/api/auth/logout", nil)
		if r := dave.Must(t, 401, "GET", "/api/users/me", nil); r.Error.Code != "unauthorized" {
			t.Fatalf("code = %s", r.Error.Code)
		}
	})

	t.Run("Routes", func(t *testing.T) {
		if r := anon.Must(t, 404, "GET", "/api/nope", nil); r.Error.Code != "not_found" {
			t.Fatalf("code = %s", r.Error.Code)
		}
		anon.Must(t, 405, "DELETE", "/api/health", nil)
		anon.Must(t, 401, "GET", "/api/contacts", nil)
		r := ann.Do(t, "POST", "/api/contacts", nil)
		if r.Status != 400 {
			t.Fatalf("empty body: %d", r.Status)
		}
	})
}

// resetToken reads the reset token from the newest reset e-mail to username
// in the server's mail folder.
func resetToken(t *testing.T, srv *server.Server, username string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(srv.DataDir(), "mail", "*.eml"))
	re := regexp.MustCompile(`(?m)^\s+(prl_[A-Za-z0-9_-]+)\s*$`)
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), "To: "+username+"@example.test") && strings.Contains(string(b), "Reset your Parley password") {
			if m := re.FindStringSubmatch(string(b)); m != nil {
				return m[1]
			}
		}
	}
	return ""
}

func waitForMail(t *testing.T, srv *server.Server, subject string) bool {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		files, _ := filepath.Glob(filepath.Join(srv.DataDir(), "mail", "*.eml"))
		for _, f := range files {
			if b, _ := os.ReadFile(f); strings.Contains(string(b), subject) {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// TestRateLimit checks that register, login and reset are limited per
// client address with 429 and Retry-After.
func TestRateLimit(t *testing.T) {
	srv := apitest.MustStart(t, "sqlite", func(c *server.Config) { c.AuthRatePerMinute = 4 })
	anon := apitest.NewClient(srv.URL())
	var last *apitest.Response
	for i := 0; i < 3; i++ {
		last = anon.Do(t, "POST", "/api/auth/login", map[string]string{"username": "x", "password": "wrong-password"})
	}
	if last.Status != 429 || last.Error.Code != "rate_limited" || last.Header.Get("Retry-After") == "" {
		t.Fatalf("third login: status %d %+v retry-after %q", last.Status, last.Error, last.Header.Get("Retry-After"))
	}
	// Other routes are not limited by the login bucket.
	anon.Must(t, 200, "GET", "/api/health", nil)
	anon.Must(t, 201, "POST", "/api/users/register", map[string]string{"username": "erin", "password": "12345678", "deviceId": "d", "publicKey": "k"})
}

// TestConcurrentRegistrations registers users from many goroutines at once:
// no "database is locked", every user gets a working token.
func TestConcurrentRegistrations(t *testing.T) {
	t.Parallel()
	srv := apitest.MustStart(t, "sqlite", nil)
	var wg sync.WaitGroup
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := apitest.Register(t, srv.URL(), "user"+string(rune('a'+i%26))+strings.Repeat("x", i/26+1))
			c.Must(t, 200, "GET", "/api/users/me", nil)
			c.Must(t, 200, "PUT", "/api/users/me/profile", map[string]string{"name": "n"})
		}(i)
	}
	wg.Wait()
}

// TestOpenAPI checks that the served description is OpenAPI 3.1 and covers
// the routes of API.md §2 (the document is generated from the route table).
func TestOpenAPI(t *testing.T) {
	srv := apitest.MustStart(t, "sqlite", nil)
	resp, err := http.Get(srv.URL() + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi = %q", doc.OpenAPI)
	}
	for _, want := range []string{"POST /api/users/register", "POST /api/auth/login", "POST /api/auth/logout", "POST /api/auth/password/forgot",
		"POST /api/auth/password/reset", "GET /api/users/me", "PUT /api/users/me/profile", "PUT /api/users/{userId}/profile",
		"GET /api/users/{userId}", "GET /api/users/search", "GET /api/users/{userId}/keys", "POST /api/users/keys",
		"POST /api/users/block", "POST /api/users/unblock", "GET /api/users/blocked", "POST /api/users/mute", "POST /api/users/unmute",
		"POST /api/contacts", "DELETE /api/contacts/{userId}", "GET /api/contacts", "GET /api/users/{userId}/presence",
		"PUT /api/users/me/settings", "GET /api/health"} {
		m, p, _ := strings.Cut(want, " ")
		if doc.Paths[p][strings.ToLower(m)] == nil {
			t.Errorf("OpenAPI misses %s", want)
		}
	}
}
