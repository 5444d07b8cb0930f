package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/server"
)

// scrape reads a node's /metrics with the Prometheus text parser.
func scrape(t *testing.T, srv *server.Server) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(srv.MetricsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d", res.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// total sums a family's samples whose labels include want: counters and
// gauges by value, histograms by count.
func total(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	var sum float64
next:
	for _, m := range f.GetMetric() {
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum
}

type metricCheck struct {
	name   string
	labels map[string]string
}

// TestMetrics drives traffic of every kind the metrics count and checks,
// through the Prometheus text parser, that each listed metric is there and
// moved, and that no label carries an id.
func TestMetrics(t *testing.T) {
	adminName := apitest.Unique("boss")
	srv := apitest.MustStart(t, testdb.Backends[0], func(c *server.Config) {
		c.MetricsAddr = "127.0.0.1:0"
		c.Admins = []string{adminName}
		c.AuthRatePerMinute = 20 // buckets of 10
		c.ScheduleTick = 100 * time.Millisecond
	})
	if srv.MetricsURL() == "" {
		t.Fatal("no metrics listener")
	}
	// Not on the public listener.
	if res, err := http.Get(srv.URL() + "/metrics"); err != nil || res.StatusCode != 404 {
		t.Fatalf("/metrics on the public listener: %v %v", res.StatusCode, err)
	}
	before := scrape(t, srv)
	checks := []metricCheck{
		{"parley_http_requests_total", map[string]string{"route": "POST /api/messages/send", "status": "2xx"}},
		{"parley_http_request_duration_seconds", map[string]string{"route": "POST /api/messages/send"}},
		{"parley_http_requests_total", map[string]string{"route": "unmatched", "status": "4xx"}},
		{"parley_socket_disconnects_total", map[string]string{"transport": "ws", "reason": "revoked"}},
		{"parley_socket_disconnects_total", map[string]string{"transport": "ws", "reason": "bus_gap"}},
		{"parley_socket_disconnects_total", map[string]string{"transport": "ws", "reason": "transport_close"}},
		{"parley_fanout_deliveries_total", nil},
		{"parley_messages_sent_total", map[string]string{"kind": "direct"}},
		{"parley_messages_sent_total", map[string]string{"kind": "group"}},
		{"parley_commit_batch_size", nil},
		{"parley_commit_duration_seconds", nil},
		{"parley_bus_gaps_total", nil},
		{"parley_scheduler_lag_seconds", nil},
		{"parley_security_events_total", map[string]string{"event": parley.SecLoginFailed}},
		{"parley_security_events_total", map[string]string{"event": parley.SecRateLimited}},
		{"parley_security_events_total", map[string]string{"event": parley.SecOriginRefused}},
		{"parley_security_events_total", map[string]string{"event": parley.SecSocketRevoked}},
		{"parley_security_events_total", map[string]string{"event": parley.SecSocketAuth}},
		{"go_sql_wait_count_total", nil}, // present; moves only under contention
		{"go_goroutines", nil},
		{"process_cpu_seconds_total", nil},
	}

	admin := apitest.Register(t, srv.URL(), adminName)
	ann := apitest.Register(t, srv.URL(), apitest.Unique("ann"))
	bob := apitest.Register(t, srv.URL(), apitest.Unique("bob"))
	ids := []string{admin.UserID, ann.UserID, bob.UserID, ann.Token, bob.Token}

	// Sockets: open one and read the gauge while it is open.
	bobWS := apitest.DialWS(t, srv.URL(), bob.Token)
	if n := total(scrape(t, srv), "parley_sockets", map[string]string{"transport": "ws"}); n != 1 {
		t.Fatalf("parley_sockets{transport=ws} with one socket open: %v", n)
	}
	ids = append(ids, sendDirect(t, ann, bob, ""))
	bobWS.WaitEvent(t, "new_message", ann.UserID)
	var g struct{ GroupID string }
	ann.Must(t, 201, "POST", "/api/groups/create", map[string]any{"name": "g", "members": []string{bob.UserID}}).Decode(t, &g)
	ids = append(ids, sendGroup(t, ann, g.GroupID), g.GroupID)
	ann.Must(t, 201, "POST", "/api/messages/schedule", map[string]any{"recipientId": bob.UserID, "encryptedContent": "later",
		"type": "text", "scheduledAt": time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano)})
	ann.Do(t, "GET", "/api/no/such/route", nil)

	// Security events: a socket without a valid token, a refused origin,
	// failed logins until the rate limit answers 429, a revoked socket.
	if _, res, err := apitest.TryDialWS(t, srv.URL(), "not-a-token", nil); err == nil || res == nil || res.StatusCode != 401 {
		t.Fatalf("socket with a bad token: %v", err)
	}
	if _, res, err := apitest.TryDialWS(t, srv.URL(), ann.Token, http.Header{"Origin": {"https://evil.example"}}); err == nil || res == nil || res.StatusCode != 403 {
		t.Fatalf("socket from a foreign origin: %v", err)
	}
	anon := apitest.NewClient(srv.URL())
	for i := 0; ; i++ {
		r := anon.Do(t, "POST", "/api/auth/login", map[string]string{"username": ann.Username, "password": "wrong password"})
		if r.Status == 429 {
			break
		}
		if r.Status != 401 || i > 30 {
			t.Fatalf("login %d with a wrong password: %d", i, r.Status)
		}
	}
	annWS := apitest.DialWS(t, srv.URL(), ann.Token)
	ann.Must(t, 200, "POST", "/api/auth/logout", nil)
	waitClosed(t, annWS, "the socket of a revoked session")
	// A bus gap closes the node's sockets; a client closing its own.
	bob2 := apitest.DialWS(t, srv.URL(), bob.Token)
	if err := srv.Bus().Publish(context.Background(), &parley.Event{Name: parley.EventBusGap}); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, bobWS, "a socket after a bus gap")
	waitClosed(t, bob2, "a socket after a bus gap")
	bob3 := apitest.DialWS(t, srv.URL(), bob.Token)
	bob3.Close()

	var after map[string]*dto.MetricFamily
	eventually(t, "every metric to move", 20*time.Second, func() bool {
		after = scrape(t, srv)
		for _, c := range checks {
			if strings.HasPrefix(c.name, "go_") || strings.HasPrefix(c.name, "process_") {
				continue
			}
			if total(after, c.name, c.labels) <= total(before, c.name, c.labels) {
				return false
			}
		}
		return true
	})
	for _, c := range checks {
		if total(after, c.name, c.labels) < 0 {
			t.Errorf("%s%v missing", c.name, c.labels)
		}
	}
	if n := total(after, "go_sql_open_connections", nil); n <= 0 {
		t.Errorf("go_sql_open_connections: %v", n)
	}
	// No label value holds an id or a token.
	for name, f := range after {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				for _, id := range ids {
					if strings.Contains(l.GetValue(), id) {
						t.Errorf("%s has a label %s=%q holding an id", name, l.GetName(), l.GetValue())
					}
				}
			}
		}
	}
}

// TestMetricsQueueOverflow: a socket whose event does not fit the node's
// queued-bytes budget is disconnected, counted as an overflow.
func TestMetricsQueueOverflow(t *testing.T) {
	srv := apitest.MustStart(t, testdb.Backends[0], func(c *server.Config) {
		c.MetricsAddr = "127.0.0.1:0"
		c.MaxQueuedBytes = 16 // any event is larger
	})
	ann := apitest.Register(t, srv.URL(), apitest.Unique("ann"))
	bob := apitest.Register(t, srv.URL(), apitest.Unique("bob"))
	ws, _, err := apitest.TryDialWS(t, srv.URL(), bob.Token, nil) // no probe: its ack would overflow
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the socket to join", 20*time.Second, func() bool { return srv.Hub().Connections() == 1 })
	sendDirect(t, ann, bob, "")
	waitClosed(t, ws, "a socket whose queue overflowed")
	eventually(t, "the overflow to be counted", 20*time.Second, func() bool {
		fams := scrape(t, srv)
		return total(fams, "parley_socket_queue_overflows_total", map[string]string{"transport": "ws"}) == 1 &&
			total(fams, "parley_socket_disconnects_total", map[string]string{"transport": "ws", "reason": "queue_full"}) == 1
	})
}

// metricName matches the metric names a PromQL expression of the
// dashboard can reference.
var metricName = regexp.MustCompile(`\b(?:parley|go|process)_[a-zA-Z0-9_]+\b`)

// TestGrafanaDashboard: deploy/grafana/parley.json is a dashboard whose
// every query references only metrics this server exposes (after some
// traffic, so every family exists).
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("../deploy/grafana/parley.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	srv := apitest.MustStart(t, testdb.Backends[0], func(c *server.Config) { c.MetricsAddr = "127.0.0.1:0" })
	ann := apitest.Register(t, srv.URL(), apitest.Unique("ann"))
	bob := apitest.Register(t, srv.URL(), apitest.Unique("bob"))
	sendDirect(t, ann, bob, "")
	fams := scrape(t, srv)
	exists := func(name string) bool {
		if fams[name] != nil {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if f := fams[strings.TrimSuffix(name, suffix)]; f != nil && strings.HasSuffix(name, suffix) && f.GetType() == dto.MetricType_HISTOGRAM {
				return true
			}
		}
		return false
	}
	queries := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			queries++
			names := metricName.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q names no metric", p.Title, tg.Expr)
			}
			for _, n := range names {
				if !exists(n) {
					t.Errorf("panel %q: %s is not a metric of the server", p.Title, n)
				}
			}
		}
	}
	if queries < 10 {
		t.Fatalf("the dashboard has %d queries", queries)
	}
}
