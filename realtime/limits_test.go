package realtime_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/server"
)

// handshake runs one Engine.IO polling handshake with extra headers and
// returns the status and body.
func handshake(tb testing.TB, client *http.Client, base string, header http.Header) (int, string) {
	tb.Helper()
	req, _ := http.NewRequest("GET", base+"/socket.io/?EIO=4&transport=polling", nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("handshake: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// waitUntil polls cond for up to 20 s (a barrier, not a timing claim).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPendingCap: connections that have not authenticated are capped per
// client address and overall (429 past the cap), an authenticated CONNECT
// frees a slot at once, and an idle one is closed after ConnectTimeout.
func TestPendingCap(t *testing.T) {
	t.Run("PerAddr", func(t *testing.T) {
		srv := apitest.MustStart(t, "sqlite", func(c *server.Config) {
			c.MaxPendingPerAddr = 8
			c.ConnectTimeout = 2 * time.Second
		})
		v := apitest.Register(t, srv.URL(), apitest.Unique("v"))
		client := &http.Client{Timeout: 10 * time.Second}
		var open []*polling
		for i := 0; i < 8; i++ {
			open = append(open, openPolling(t, srv.URL()))
		}
		st, body := handshake(t, client, srv.URL(), nil)
		if st != http.StatusTooManyRequests || !strings.Contains(body, `"code":6`) {
			t.Fatalf("9th pending handshake from one address = %d %q, want 429 code 6", st, body)
		}
		// Authenticating one frees its slot.
		if got := open[0].connect(v.Token); !strings.Contains(got, "40{") {
			t.Fatalf("CONNECT answer = %q", got)
		}
		if st, body := handshake(t, client, srv.URL(), nil); st != 200 {
			t.Fatalf("handshake after an authentication = %d %q", st, body)
		}
		// The 8 others (7 + the new one) never authenticate: the connect
		// timeout closes them and frees every slot.
		waitUntil(t, "unauthenticated sessions still pending", func() bool {
			return srv.Hub().PendingSockets() == 0
		})
		for i := 0; i < 8; i++ {
			if st, body := handshake(t, client, srv.URL(), nil); st != 200 {
				t.Fatalf("handshake %d after the timeout = %d %q", i, st, body)
			}
		}
	})
	t.Run("BehindProxy", func(t *testing.T) {
		// Behind a trusted load balancer every handshake comes from its
		// address: the cap counts the clients X-Forwarded-For names.
		srv := apitest.MustStart(t, "sqlite", func(c *server.Config) {
			c.MaxPendingPerAddr = 2
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		})
		client := &http.Client{Timeout: 10 * time.Second}
		from := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }
		for i := 0; i < 2; i++ {
			if st, body := handshake(t, client, srv.URL(), from("203.0.113.1")); st != 200 {
				t.Fatalf("handshake %d of client 1 = %d %q", i, st, body)
			}
		}
		if st, _ := handshake(t, client, srv.URL(), from("203.0.113.1")); st != http.StatusTooManyRequests {
			t.Fatalf("3rd pending handshake of client 1 = %d, want 429", st)
		}
		if st, body := handshake(t, client, srv.URL(), from("203.0.113.2")); st != 200 {
			t.Fatalf("another client behind the same proxy = %d %q, want 200", st, body)
		}
	})
	t.Run("Overall", func(t *testing.T) {
		srv := apitest.MustStart(t, "sqlite", func(c *server.Config) { c.MaxPending = 3 })
		client := &http.Client{Timeout: 10 * time.Second}
		for i := 0; i < 3; i++ {
			openPolling(t, srv.URL())
		}
		if st, body := handshake(t, client, srv.URL(), nil); st != http.StatusTooManyRequests {
			t.Fatalf("4th pending handshake = %d %q, want 429", st, body)
		}
	})
}

// TestHandshakeFloodMemory: a session that has not authenticated keeps only
// what its CONNECT needs from the handshake, not the request's headers, so
// handshakes with big headers cost little memory each.
func TestHandshakeFloodMemory(t *testing.T) {
	const n, pad = 150, 48 << 10
	// The sessions never CONNECT: give them longer than a loaded machine
	// takes to open all n (they expired at the default 10 s).
	srv := apitest.MustStart(t, "sqlite", func(c *server.Config) { c.MaxPendingPerAddr = n; c.ConnectTimeout = 5 * time.Minute })
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	header := http.Header{"X-Pad": {strings.Repeat("p", pad)}, "User-Agent": {strings.Repeat("u", 4<<10)}}
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	for i := 0; i < n; i++ {
		if st, body := handshake(t, client, srv.URL(), header); st != 200 {
			t.Fatalf("handshake %d = %d %q", i, st, body)
		}
	}
	if got := srv.Hub().PendingSockets(); got != n {
		t.Fatalf("pending sockets = %d, want %d", got, n)
	}
	grown := int64(heap()) - int64(before)
	// Keeping the requests would cost more than n × pad = 7.2 MB.
	if limit := int64(n * 12 << 10); grown > limit {
		t.Fatalf("%d pending sessions grew the heap by %d bytes (%d each); want under %d each", n, grown, grown/n, 12<<10)
	}
	t.Logf("%d pending sessions: heap +%d bytes (%d each)", n, grown, grown/n)
}

// TestNoAttachmentsBeforeConnect: a binary packet announced before the
// socket joined its namespace closes the session instead of making the
// server buffer its attachments.
func TestNoAttachmentsBeforeConnect(t *testing.T) {
	srv := apitest.MustStart(t, "sqlite", nil)
	p := openPolling(t, srv.URL())
	if st := p.post(`451-["x",{"_placeholder":true,"num":0}]`); st != 200 && st != 400 {
		t.Fatalf("POST = %d", st)
	}
	// The session is closed: a GET gets the close packet or an unknown
	// sid at once, rather than waiting for the next ping.
	st, body := p.get()
	if !(st == 400 || (st == 200 && strings.HasPrefix(body, "1"))) {
		t.Fatalf("GET after attachments before CONNECT = %d %q; the session is still open", st, body)
	}
}

// TestQueuedBytesBudget: the bytes queued for all sockets together are
// bounded; a stalled client whose queue would go over the budget is dropped
// long before its own 256-message queue is full, and others keep receiving.
func TestQueuedBytesBudget(t *testing.T) {
	srv := apitest.MustStart(t, "sqlite", func(c *server.Config) { c.MaxQueuedBytes = 64 << 10 })
	v := apitest.Register(t, srv.URL(), apitest.Unique("v"))
	b := apitest.Register(t, srv.URL(), apitest.Unique("b"))
	stalled := openPolling(t, srv.URL())
	if got := stalled.connect(v.Token); !strings.Contains(got, "40{") {
		t.Fatalf("CONNECT answer = %q", got)
	}
	live := apitest.DialWS(t, srv.URL(), b.Token)
	live.AllowEvent("bulk") // published by this test, not by the server
	waitUntil(t, "both sockets in the hub", func() bool { return srv.Hub().Connections() == 2 })

	payload, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", 4000)})
	for i := 0; i < 40; i++ { // 160 KB for v, far below 256 messages
		srv.Bus().Publish(context.Background(), &parley.Event{Name: "bulk", Data: payload, To: []string{v.UserID}})
	}
	waitUntil(t, "the stalled client over the budget is still connected", func() bool { return srv.Hub().Connections() == 1 })
	// In bursts of 20 KB, well inside the budget, that the live client reads.
	for i := 0; i < 40; i++ {
		srv.Bus().Publish(context.Background(), &parley.Event{Name: "bulk", Data: payload, To: []string{b.UserID}})
		if i%5 == 4 {
			waitUntil(t, "the live client did not get every event", func() bool { return len(live.Events("bulk")) == i+1 })
		}
	}
	select {
	case <-live.Closed():
		t.Fatal("the live client was closed")
	default:
	}
}
