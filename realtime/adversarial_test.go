package realtime_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
)

// polling is a raw Engine.IO long-polling client: it does only what a test
// tells it to, so it can stop polling, overlap POSTs or flood pings.
type polling struct {
	tb   testing.TB
	base string
	sid  string
	http *http.Client
}

// openPolling runs the Engine.IO handshake and returns the session.
func openPolling(tb testing.TB, base string) *polling {
	tb.Helper()
	p := &polling{tb: tb, base: base, http: &http.Client{Timeout: 10 * time.Second}}
	resp, err := p.http.Get(base + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		tb.Fatalf("handshake: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	i := strings.Index(string(body), `"sid":"`)
	if resp.StatusCode != 200 || i < 0 {
		tb.Fatalf("handshake: %d %q", resp.StatusCode, body)
	}
	rest := string(body)[i+7:]
	p.sid = rest[:strings.IndexByte(rest, '"')]
	return p
}

func (p *polling) url() string {
	return p.base + "/socket.io/?EIO=4&transport=polling&sid=" + url.QueryEscape(p.sid)
}

// post sends one polling payload and returns the status (0 on a transport error).
func (p *polling) post(payload string) int {
	resp, err := p.http.Post(p.url(), "text/plain;charset=UTF-8", strings.NewReader(payload))
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// get reads one polling GET.
func (p *polling) get() (int, string) {
	resp, err := p.http.Get(p.url())
	if err != nil {
		return 0, ""
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// connect joins the default namespace with token and reads the answer.
func (p *polling) connect(token string) string {
	p.tb.Helper()
	if st := p.post(`40{"token":"` + token + `"}`); st != 200 {
		p.tb.Fatalf("CONNECT post: %d", st)
	}
	_, body := p.get()
	return body
}

func mustSend(t *testing.T, from *apitest.Client, to string, i int) {
	t.Helper()
	from.Must(t, 201, "POST", "/api/messages/send", map[string]any{
		"recipientId": to, "encryptedContent": fmt.Sprintf("c%d", i), "type": "text"})
}

// TestStalledPollingClientStallsNoOne: a Socket.IO polling client that stops
// polling is disconnected when its queue fills and never slows delivery to
// others (API.md §12). Before the fix, the send that overflowed its queue
// deadlocked the hub, and every later send and socket hung with it.
func TestStalledPollingClientStallsNoOne(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := apitest.MustStart(t, backend, nil)
			v := apitest.Register(t, srv.URL(), apitest.Unique("v"))
			a := apitest.Register(t, srv.URL(), apitest.Unique("a"))
			b := apitest.Register(t, srv.URL(), apitest.Unique("b"))
			for _, c := range []*apitest.Client{v, a, b} {
				c.HTTP.Timeout = 10 * time.Second
			}
			stalled := openPolling(t, srv.URL())
			if got := stalled.connect(v.Token); !strings.Contains(got, "40{") {
				t.Fatalf("CONNECT answer = %q", got)
			}
			// v's queue (256 frames) overflows during these sends.
			for i := 0; i < 300; i++ {
				mustSend(t, a, v.UserID, i)
			}
			bws := apitest.DialWS(t, srv.URL(), b.Token)
			for i := 0; i < 200; i++ {
				mustSend(t, a, b.UserID, i)
			}
			bws.WaitEvent(t, "new_message", `"content":"c199"`)
			if st, _ := stalled.get(); st == 200 {
				// A closed session may hand over its close packet once;
				// after that the sid is unknown.
				if st, body := stalled.get(); st == 200 && !strings.Contains(body, "1") {
					t.Fatalf("stalled session still served: %q", body)
				}
			}
		})
	}
}

// TestPingFloodBeforeConnect: a polling POST of many pings queues as many
// pongs; the CONNECT answer that overflows the queue must close the session,
// not deadlock the socket (Socket.markConnected sent under Socket.mu).
func TestPingFloodBeforeConnect(t *testing.T) {
	srv := apitest.MustStart(t, "sqlite", nil)
	v := apitest.Register(t, srv.URL(), apitest.Unique("v"))
	a := apitest.Register(t, srv.URL(), apitest.Unique("a"))
	p := openPolling(t, srv.URL())
	payload := strings.Repeat("2\x1e", 256) + `40{"token":"` + v.Token + `"}`
	done := make(chan int, 1)
	go func() { done <- p.post(payload) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the POST of pings and CONNECT never answered")
	}
	// The server still accepts and serves new sockets.
	ws := apitest.DialWS(t, srv.URL(), v.Token)
	mustSend(t, a, v.UserID, 1)
	ws.WaitEvent(t, "new_message", `"content":"c1"`)
}
