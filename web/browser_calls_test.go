package web_test

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/server"
)

// pushService stands in for a browser vendor's push service (FCM, Mozilla
// autopush): it takes the server's Web Push requests and hands their
// encrypted bodies to the scenario, which decrypts them with the keys of
// the browser's subscription and delivers them to the service worker.
type pushService struct {
	mu     sync.Mutex
	pushes []pushRecord
}

type pushRecord struct {
	Endpoint string `json:"endpoint"`
	Body     string `json:"body"` // base64 of the aes128gcm body
	Encoding string `json:"encoding"`
}

func (p *pushService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == "POST" && strings.HasPrefix(r.URL.Path, "/push/"):
		b, err := io.ReadAll(io.LimitReader(r.Body, 8<<10))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		p.pushes = append(p.pushes, pushRecord{Endpoint: r.URL.Path, Body: base64.StdEncoding.EncodeToString(b),
			Encoding: r.Header.Get("Content-Encoding")})
		p.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	case r.Method == "GET" && r.URL.Path == "/pushes":
		p.mu.Lock()
		b, _ := json.Marshal(p.pushes)
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	default:
		http.NotFound(w, r)
	}
}

func (p *pushService) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pushes)
}

// seededDays writes message statistics for the 13 days before today
// straight into the database, as if people had used the server for two
// weeks, and returns them by date (YYYY-MM-DD) for the scenario to find
// in the dashboard's charts. Today's numbers come from the scenario's
// own messages.
func seededDays(t *testing.T, dbFile string) map[string][2]int {
	t.Helper()
	// The server runs (its jobs write): wait for its write lock rather than fail.
	db, err := sql.Open("sqlite", dbFile+"?_pragma=busy_timeout(30000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	today := parley.DayOf(time.Now())
	out := map[string][2]int{}
	for i := 1; i <= 13; i++ {
		day := today - parley.Day(i)
		msgs, users := 40+(i*37)%90, 3+(i*5)%11
		// daily_sender_gaps: every sender counted as new that day (gap 367),
		// so the range's distinct users is the sum of the days'.
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO daily_stats (day, messages_sent, active_users) VALUES (?, ?, ?)`, []any{int64(day), msgs, users}},
			{`INSERT INTO daily_sender_gaps (day, gap, senders) VALUES (?, 367, ?)`, []any{int64(day), users}},
		} {
			if _, err := db.Exec(q.sql, q.args...); err != nil {
				t.Fatalf("seed statistics: %v", err)
			}
		}
		out[day.String()] = [2]int{msgs, users}
	}
	return out
}

// TestBrowserCalls runs web/browser/calls.mjs in Debian's Chromium
// against a whole server with the embedded TURN server on loopback:
//   - a video call between two browser contexts with Chromium's fake
//     camera and microphone, relayed by the TURN server
//     (iceTransportPolicy relay): both connect and decode video frames,
//     the callee's second device stops ringing when the first answers,
//     mute, camera off and hang-up work, and the call is in both
//     histories; a declined voice call;
//   - Web Push: the browser's subscription is registered as a device; a
//     message to the user while offline becomes a push that this test's
//     push service receives; the scenario decrypts it with the
//     subscription's keys, delivers it to the service worker through the
//     DevTools protocol and finds a notification naming the sender with
//     no message content, whose link opens the chat;
//   - the PWA: manifest, icons, service worker scope, no installability
//     error;
//   - the admin dashboard: charts of seeded statistics, every node's
//     health refreshed live; a non-admin is refused;
//   - an axe-core scan of each new screen.
//
// Screenshots and axe reports go to $PARLEY_ARTIFACTS (default
// web/testdata/artifacts), named calls-*.
func TestBrowserCalls(t *testing.T) {
	dir, artifacts := browserTools(t)
	push := &pushService{}
	pushSrv := httptest.NewServer(push)
	defer pushSrv.Close()

	data := t.TempDir()
	dbFile := filepath.Join(data, "parley.db")
	logs := &lockedBuffer{}
	admin := apitest.Unique("boss")
	srv := apitest.MustStart(t, "sqlite", func(c *server.Config) {
		c.DataDir = data
		c.DB = "sqlite:" + dbFile
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.AuthRatePerMinute = 0
		c.Admins = []string{admin}
		// The embedded TURN server on loopback: the browsers reach each
		// other only through its relays.
		c.TURNAddr = "127.0.0.1:0"
		// The test's push service is plain HTTP on loopback.
		c.PushAllowHTTP, c.PushAllowInternal = true, true
		c.NotifyTick = 100 * time.Millisecond
	})
	seeded, err := json.Marshal(seededDays(t, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	canary := "canary-" + parley.NewID("x")[2:]

	runScenario(t, dir, artifacts, "calls.mjs", srv.URL(), artifacts, canary, pushSrv.URL, admin, string(seeded))

	// The push went through this test's push service (the scenario
	// decrypted one of them), and the canary is in no log line.
	if push.count() == 0 {
		t.Fatal("the server sent no push to the test's push service")
	}
	l := logs.String()
	if !strings.Contains(l, "/api/calls/signal") || !strings.Contains(l, "/api/notifications/devices") {
		t.Fatal("the server logged no call signal or push device: the log check checks nothing")
	}
	for _, secret := range []string{canary, "a=fingerprint", "candidate:"} {
		if strings.Contains(l, secret) {
			t.Errorf("the server's logs hold %q (message content or WebRTC signals)", secret)
		}
	}
	if bytes.Contains([]byte(l), []byte(pushSrv.URL)) {
		t.Error("the server's logs name a push endpoint")
	}
}
