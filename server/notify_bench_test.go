package server_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/server"
)

// pushStandIn is a Web Push service on loopback for benchmarks: it counts
// the pushes to each subscription (endpoint /p/N) and answers 201 after
// its delay (a real push service's round trip; none: at once), without
// checking or decrypting them, so that the CPU it takes from the server is
// as small as can be.
type pushStandIn struct {
	srv     *httptest.Server
	key     string // base64url p256dh every subscription shares
	auth    string
	mu      sync.Mutex
	got     map[string]int
	total   atomic.Int64
	first   atomic.Int64  // unix nanoseconds of the first push
	last    atomic.Int64  // and of the latest
	arrived chan struct{} // a token after each push (capacity 1)
}

func newPushStandIn(tb testing.TB, delay time.Duration) *pushStandIn {
	tb.Helper()
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	s := &pushStandIn{key: base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes()),
		auth: base64.RawURLEncoding.EncodeToString(auth), got: map[string]int{}, arrived: make(chan struct{}, 1)}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if delay > 0 {
			// The push service's round trip: it paces the outbox, as a
			// real one does; nothing waits on it to be over.
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		now := time.Now().UnixNano()
		s.first.CompareAndSwap(0, now)
		s.last.Store(now)
		s.mu.Lock()
		s.got[r.URL.Path]++
		s.mu.Unlock()
		s.total.Add(1)
		select {
		case s.arrived <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusCreated)
	}))
	tb.Cleanup(s.srv.Close)
	return s
}

// waitTotal waits, up to limit, until the stand-in took n pushes in all.
func (s *pushStandIn) waitTotal(tb testing.TB, n int64, limit time.Duration) {
	tb.Helper()
	deadline := time.After(limit)
	for s.total.Load() < n {
		select {
		case <-s.arrived:
		case <-deadline:
			tb.Fatalf("%d of %d pushes after %s", s.total.Load(), n, limit)
		}
	}
}

func (s *pushStandIn) subscription(i int) map[string]any {
	return map[string]any{"endpoint": fmt.Sprintf("%s/p/%d", s.srv.URL, i), "keys": map[string]string{"p256dh": s.key, "auth": s.auth}}
}

// benchClient calls the REST API without apitest's contract checks (which
// would take CPU from the server being measured).
type benchClient struct {
	base, token, userID string
	http                *http.Client
}

func (c *benchClient) post(path string, body any, want int) (json.RawMessage, error) {
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", c.base+path, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var env struct{ Data json.RawMessage }
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		return nil, fmt.Errorf("POST %s: %d %s", path, res.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, err
	}
	return env.Data, nil
}

// inParallel calls fn(i) for every i below n on workers goroutines and
// fails tb with the first error; the other workers stop at their next i.
func inParallel(tb testing.TB, workers, n int, fn func(i int) error) {
	tb.Helper()
	errs := make(chan error, workers)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for len(errs) == 0 {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		tb.Fatal(err)
	}
}

// benchUsers registers n users, 8 at a time, each with a push device on
// the stand-in when it is not nil.
func benchUsers(b testing.TB, base, prefix string, n int, standIn *pushStandIn) []*benchClient {
	b.Helper()
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	out := make([]*benchClient, n)
	inParallel(b, 8, n, func(i int) error {
		name := apitest.Unique(fmt.Sprintf("%s%d-", prefix, i))
		c := &benchClient{base: base, http: hc}
		raw, err := c.post("/api/users/register", map[string]string{"username": name, "password": "password-" + name,
			"deviceId": "dev", "publicKey": "pk", "email": name + "@example.test", "name": "User " + name}, 201)
		var res struct{ UserID, Token string }
		if err == nil {
			err = json.Unmarshal(raw, &res)
		}
		c.token, c.userID = res.Token, res.UserID
		if err == nil && standIn != nil {
			_, err = c.post("/api/notifications/devices", map[string]any{"deviceId": "phone", "platform": "webpush",
				"subscription": standIn.subscription(i)}, 201)
		}
		out[i] = c
		return err
	})
	return out
}

// sendAll sends one direct message per entry of to, from senders[i %
// len(senders)], with as many goroutines as there are senders.
func sendAll(b *testing.B, senders, to []*benchClient, perRecipient int) {
	b.Helper()
	padding := strings.Repeat("x", 256)
	var next atomic.Int64
	total := int64(len(to) * perRecipient)
	errs := make(chan error, len(senders))
	var wg sync.WaitGroup
	for _, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				r := to[int(i)%len(to)]
				if _, err := s.post("/api/messages/send", map[string]any{"recipientId": r.userID, "type": "text",
					"encryptedContent": fmt.Sprintf("m%d-%s", i, padding)}, 201); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPushOutbox measures how many pushes a second the outbox
// delivers to a loopback Web Push stand-in: 1,000 users with one device
// each and no socket, one message to each; pushes/s is counted from the
// first push the stand-in takes to the last, and total-s from the first
// message sent to the last push (it includes the presence grace period,
// 300 ms here). Each device must get exactly one push. The stand-in
// answers at once (rtt=0) or after 50 ms, as a push service across a
// continent does; inflight is Config.PushConcurrency (1: one push at a
// time, as before it existed).
//
//	go test -run '^$' -bench PushOutbox -benchtime 1x ./server
func BenchmarkPushOutbox(b *testing.B) {
	const devices = 1000
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, rtt := range []time.Duration{0, 50 * time.Millisecond} {
			for _, inflight := range []int{1, 16} {
				b.Run(fmt.Sprintf("%s/rtt=%s/inflight=%d", backend, rtt, inflight), func(b *testing.B) {
					benchPushOutbox(b, backend, devices, rtt, inflight)
				})
			}
		}
	}
}

func benchPushOutbox(b *testing.B, backend string, devices int, rtt time.Duration, inflight int) {
	dsn := testdb.DSN(b, backend)
	srv := apitest.MustStart(b, backend, func(c *server.Config) {
		c.DB = dsn
		c.PushAllowHTTP, c.PushAllowInternal = true, true
		c.PushConcurrency = inflight
	})
	db := openRaw(b, dsn)
	var rate, total float64
	for b.Loop() {
		standIn := newPushStandIn(b, rtt)
		to := benchUsers(b, srv.URL(), "r", devices, standIn)
		senders := benchUsers(b, srv.URL(), "s", 8, nil)
		start := time.Now()
		sendAll(b, senders, to, 1)
		standIn.waitTotal(b, int64(devices), 5*time.Minute)
		first, last := time.Unix(0, standIn.first.Load()), time.Unix(0, standIn.last.Load())
		rate += float64(devices-1) / last.Sub(first).Seconds()
		total += last.Sub(start).Seconds()
		// Exactly one each. A copy could only come from a push still in
		// the outbox (sent, its outcome not yet recorded): once the outbox
		// is empty, every push there is to count has arrived.
		eventually(b, "the push outbox to empty", time.Minute, func() bool {
			var n int
			if err := db.QueryRow(`SELECT COUNT(*) FROM push_outbox`).Scan(&n); err != nil {
				b.Fatal(err)
			}
			return n == 0
		})
		standIn.mu.Lock()
		for i := range devices {
			if n := standIn.got[fmt.Sprintf("/p/%d", i)]; n != 1 {
				b.Fatalf("device %d got %d pushes", i, n)
			}
		}
		standIn.mu.Unlock()
	}
	b.ReportMetric(rate/float64(b.N), "pushes/s")
	b.ReportMetric(total/float64(b.N), "total-s")
}

// BenchmarkSendOffline measures the send path's throughput when every
// recipient is offline: 64 senders post direct messages over REST (256
// bytes each, 64 at a time) to 64 recipients with no socket, who have
// one push device each ("devices", the outbox reading and queueing
// behind the sends) or none ("none"). The outbox runs beside the sends as
// it does in production; a device gets at most one push per 15 s.
//
//	for i in 1 2; do for m in devices none; do uptime; go test -run '^$' -bench "SendOffline/$m" -benchtime 1x ./server; done; done
func BenchmarkSendOffline(b *testing.B) {
	const recipients, senders, messages = 64, 64, 20000
	for _, mode := range []string{"devices", "none"} {
		b.Run(mode, func(b *testing.B) {
			srv := apitest.MustStart(b, "sqlite", func(c *server.Config) { c.PushAllowHTTP, c.PushAllowInternal = true, true })
			var standIn *pushStandIn
			if mode == "devices" {
				standIn = newPushStandIn(b, 0)
			}
			to := benchUsers(b, srv.URL(), "r", recipients, standIn)
			from := benchUsers(b, srv.URL(), "s", senders, nil)
			var rate float64
			for b.Loop() {
				start := time.Now()
				sendAll(b, from, to, messages/recipients)
				rate += float64(messages/recipients*recipients) / time.Since(start).Seconds()
			}
			b.ReportMetric(rate/float64(b.N), "msgs/s")
			if standIn != nil {
				b.ReportMetric(float64(standIn.total.Load()), "pushes")
			}
		})
	}
}
