package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/natstest"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/jobs"
	"github.com/parley-chat/parley/server"
)

// Timings of the cluster under test. The lease is on the cluster's fake
// clock, which the test moves; the grace period runs on the wall clock
// (service/presence.go arms it with time.AfterFunc), so it is short.
const (
	clusterGrace = 300 * time.Millisecond
	clusterLease = 1500 * time.Millisecond // renewed every 500 ms of the clock
	clusterTick  = 100 * time.Millisecond  // the scheduler's period
)

// jobsPerNode is how many background jobs each node of the cluster runs:
// scheduled messages, media collection, status purge, missed calls, lost calls, the push outbox, the mail outbox,
// presence lease, presence sweep, shared rate-limit pruning and the node's
// health report. The clock barrier (cluster.settle) counts on it and fails,
// naming it, if the nodes ever run more.
const jobsPerNode = 11

// startNode starts one node of a cluster on the shared database dsn, NATS
// server natsURL and clock; it is closed when tb ends (Close is idempotent).
func startNode(tb testing.TB, name, dsn, natsURL string, clock jobs.Clock, tune ...func(*server.Config)) *server.Server {
	tb.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testLog{tb, name}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	cfg := server.Config{
		Addr:              "127.0.0.1:0",
		DataDir:           tb.TempDir(),
		DB:                dsn,
		Bus:               natsURL,
		NodeID:            name,
		PasswordCost:      apitest.FastPasswords,
		PresenceGrace:     clusterGrace,
		PresenceLease:     clusterLease,
		ScheduleTick:      clusterTick,
		AuthRatePerMinute: 20, // buckets of 10
		ShutdownTimeout:   5 * time.Second,
		Logger:            logger,
		Clock:             clock,
	}
	for _, f := range tune {
		f(&cfg)
	}
	s, err := server.New(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("start node %s: %v", name, err)
	}
	s.Start()
	tb.Cleanup(func() { s.Close() })
	return s
}

type testLog struct {
	tb   testing.TB
	node string
}

func (w testLog) Write(p []byte) (int, error) {
	w.tb.Log(w.node + ": " + string(bytes.TrimSpace(p)))
	return len(p), nil
}

// busConnected reports whether a node's bus is connected to NATS.
func busConnected(s *server.Server) bool {
	b, ok := s.Bus().(interface{ Connected() bool })
	return ok && b.Connected()
}

// eventually polls cond, for something that happens over the network or
// on the wall clock, for up to timeout.
func eventually(tb testing.TB, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// as returns a copy of c that talks to another node.
func as(c *apitest.Client, s *server.Server) *apitest.Client {
	cp := *c
	cp.Base = s.URL()
	return &cp
}

// cluster is the nodes under test and what the test drives them by.
type cluster struct {
	nodes []*server.Server // the live nodes
	clock *jobs.Fake       // the time every node goes by
	db    *sql.DB          // the shared database, to see the nodes' presence records
}

// settle waits until every background job of the live nodes is idle,
// waiting on the clock for its next run. A job that ran (because the clock
// moved, or it was kicked) arms its next run at the end, so once every job
// is armed again every run is over, with all it published.
func (c *cluster) settle(tb testing.TB) {
	tb.Helper()
	want := jobsPerNode * len(c.nodes)
	eventually(tb, fmt.Sprintf("%d background jobs to wait for their next run", want), 10*time.Second, func() bool {
		n := c.clock.Waiting()
		if n > want {
			tb.Fatalf("%d background jobs wait on the clock, more than the %d of %d nodes: update jobsPerNode", n, want, len(c.nodes))
		}
		return n == want
	})
}

// tick moves the clock by d and waits until every job that came due has run.
func (c *cluster) tick(tb testing.TB, d time.Duration) {
	tb.Helper()
	c.settle(tb)
	c.clock.Advance(d)
	c.settle(tb)
}

// elapse moves the clock by d in steps of a third of the presence lease,
// as often as the nodes renew it, so a live node's lease never runs out.
func (c *cluster) elapse(tb testing.TB, d time.Duration) {
	tb.Helper()
	for step := clusterLease / 3; d > 0; d -= step {
		c.tick(tb, min(step, d))
	}
}

// recorded reports whether the shared store records that node holds a
// socket of userID: a node writes it after the user's first socket there,
// and removes it at the end of the grace period after the last (on the
// wall clock).
func (c *cluster) recorded(tb testing.TB, node, userID string) bool {
	tb.Helper()
	var ok bool
	if err := c.db.QueryRow(`SELECT EXISTS (SELECT 1 FROM presence_sockets WHERE node_id = $1 AND user_id = $2)`,
		node, userID).Scan(&ok); err != nil {
		tb.Fatalf("read presence records: %v", err)
	}
	return ok
}

// markers sends a message from sender to the user of ws through every live
// node and waits until ws has all of them. Each node publishes in order on
// one NATS connection, so whatever a node published to ws before its
// marker has arrived by then: a barrier for checking that something was
// not sent.
func (c *cluster) markers(tb testing.TB, sender *apitest.Client, ws *apitest.WS, to string) {
	tb.Helper()
	for _, s := range c.nodes {
		var m struct{ MessageID string }
		as(sender, s).Must(tb, 201, "POST", "/api/messages/send", map[string]any{"recipientId": to,
			"encryptedContent": "marker", "type": "text"}).Decode(tb, &m)
		ws.WaitEvent(tb, "new_message", m.MessageID)
	}
}

var callID atomic.Int64

// call sends a client event on ws and returns the data of its successful
// acknowledgement.
func call(tb testing.TB, ws *apitest.WS, event string, data any) json.RawMessage {
	tb.Helper()
	raw := ws.Call(tb, event, data, callID.Add(1))
	var ack struct {
		Success bool
		Data    json.RawMessage
	}
	if err := json.Unmarshal(raw, &ack); err != nil || !ack.Success {
		tb.Fatalf("%s: ack %s", event, raw)
	}
	return ack.Data
}

// sendOn sends a direct message on ws and returns its id.
func sendOn(tb testing.TB, ws *apitest.WS, to, content string) string {
	tb.Helper()
	var m struct{ MessageID string }
	data := call(tb, ws, "send_message", map[string]any{"recipientId": to, "encryptedContent": content, "type": "text"})
	if json.Unmarshal(data, &m) != nil || m.MessageID == "" {
		tb.Fatalf("send_message: ack data %s", data)
	}
	return m.MessageID
}

// presenceOf matches a presence_update about userID.
func presenceOf(userID string, online bool) func(apitest.Frame) bool {
	return func(f apitest.Frame) bool {
		var p struct {
			UserID string
			Online bool
		}
		return f.Event == "presence_update" && json.Unmarshal(f.Data, &p) == nil && p.UserID == userID && p.Online == online
	}
}

// count is how many frames ws received that match.
func count(ws *apitest.WS, match func(apitest.Frame) bool) int {
	n := 0
	for _, f := range ws.Frames() {
		if match(f) {
			n++
		}
	}
	return n
}

// waitClosed waits until the server closed ws.
func waitClosed(tb testing.TB, ws *apitest.WS, what string) {
	tb.Helper()
	select {
	case <-ws.Closed():
	case <-time.After(10 * time.Second):
		tb.Fatalf("%s: still open after 10 s", what)
	}
}

// TestCluster runs three nodes in this process on one fresh PostgreSQL
// database, one NATS server (embedded, so the test can stop it) and one
// fake clock (so leases and schedules move when the test says), with
// users connected to different nodes over /ws, and checks what API.md
// promises of several nodes: events cross nodes, presence is global and
// announced once, logout reaches every node, rate limits are shared,
// scheduled messages go out once, a NATS outage loses no acknowledged
// message and heals by itself, a dead node's users go offline, and a
// long-polling request that reaches the wrong node gets a clear error
// (only that subtest needs Node, for the stock socket.io-client).
func TestCluster(t *testing.T) {
	dsn := testdb.DSN(t, "postgres")
	ns := natstest.Start(t)
	c := &cluster{clock: jobs.NewFake(time.Now())}
	var err error
	if c.db, err = sql.Open("pgx", dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.db.Close() }) // before testdb drops the database
	c.nodes = []*server.Server{
		startNode(t, "node-a", dsn, ns.URL(), c.clock),
		startNode(t, "node-b", dsn, ns.URL(), c.clock),
		startNode(t, "node-c", dsn, ns.URL(), c.clock),
	}
	nodeA, nodeB, nodeC := c.nodes[0], c.nodes[1], c.nodes[2]
	c.settle(t) // every node's jobs ran once at start

	ann := apitest.Register(t, nodeA.URL(), "ann")
	bob := apitest.Register(t, nodeB.URL(), "bob")
	cat := apitest.Register(t, nodeC.URL(), "cat")
	// Bob follows Ann's and Cat's presence; Ann follows Bob's.
	bob.Must(t, 201, "POST", "/api/contacts", map[string]string{"contactId": ann.UserID})
	bob.Must(t, 201, "POST", "/api/contacts", map[string]string{"contactId": cat.UserID})
	ann.Must(t, 201, "POST", "/api/contacts", map[string]string{"contactId": bob.UserID})

	t.Run("EventsCrossNodes", func(t *testing.T) {
		bobWS := apitest.DialWS(t, nodeB.URL(), bob.Token)
		catWS := apitest.DialWS(t, nodeC.URL(), cat.Token)
		annWS := apitest.DialWS(t, nodeA.URL(), ann.Token)
		// Presence: Ann came online on A; Bob on B hears it.
		bobWS.WaitFor(t, presenceOf(ann.UserID, true))

		// Messages from B to A, timed from send to arrival.
		var lat []time.Duration
		for i := 0; i < 20; i++ {
			began := time.Now()
			id := sendOn(t, bobWS, ann.UserID, fmt.Sprintf("ciphertext %d", i))
			annWS.WaitEvent(t, "new_message", id)
			lat = append(lat, time.Since(began))
		}
		slices.Sort(lat)
		t.Logf("send_message on node B to new_message on node A (/ws, 20 sends): median %v, max %v", lat[len(lat)/2], lat[len(lat)-1])

		// Receipts from A to B.
		last := sendOn(t, bobWS, ann.UserID, "mark me")
		annWS.WaitEvent(t, "new_message", last)
		call(t, annWS, "message_status", map[string]any{"messageId": last, "status": "seen"})
		bobWS.WaitFor(t, func(f apitest.Frame) bool {
			var u struct{ MessageID, Status string }
			return f.Event == "message_status_update" && json.Unmarshal(f.Data, &u) == nil && u.MessageID == last && u.Status == "seen"
		})

		// Typing from A to B.
		call(t, annWS, "typing", map[string]any{"recipientId": bob.UserID, "isTyping": true})
		bobWS.WaitEvent(t, "typing_indicator", ann.UserID)

		// Group and membership events: Bob on B creates a group with Ann
		// (A) and Cat (C), then writes to it.
		var g struct{ GroupID string }
		bob.Must(t, 201, "POST", "/api/groups/create", map[string]any{"name": "three nodes", "members": []string{ann.UserID, cat.UserID}}).Decode(t, &g)
		for _, ws := range []*apitest.WS{annWS, catWS} {
			ws.WaitEvent(t, "group_member_added", g.GroupID)
		}
		var m struct{ MessageID string }
		data := call(t, bobWS, "send_group_message", map[string]any{"groupId": g.GroupID, "encryptedContent": "to the group", "type": "text"})
		if json.Unmarshal(data, &m) != nil || m.MessageID == "" {
			t.Fatalf("send_group_message: ack data %s", data)
		}
		for _, ws := range []*apitest.WS{annWS, catWS} {
			ws.WaitEvent(t, "new_group_message", m.MessageID)
		}
	})

	t.Run("OneUserOnTwoNodes", func(t *testing.T) {
		eve := apitest.Register(t, nodeA.URL(), "eve")
		bob.Must(t, 201, "POST", "/api/contacts", map[string]string{"contactId": eve.UserID})
		bobWS := apitest.DialWS(t, nodeB.URL(), bob.Token)
		eveA := apitest.DialWS(t, nodeA.URL(), eve.Token)
		bobWS.WaitFor(t, presenceOf(eve.UserID, true))
		eveC := apitest.DialWS(t, nodeC.URL(), eve.Token)
		id := sendOn(t, bobWS, eve.UserID, "to both sockets")
		for _, ws := range []*apitest.WS{eveA, eveC} {
			ws.WaitEvent(t, "new_message", id)
		}
		eventually(t, "node C to record eve's socket", 10*time.Second, func() bool { return c.recorded(t, "node-c", eve.UserID) })

		// Eve leaves A but is still on C: online, nothing announced, even
		// after a whole lease of sweeps.
		eveA.Close()
		eventually(t, "node A to record that eve left, after the grace period", 10*time.Second, func() bool { return !c.recorded(t, "node-a", eve.UserID) })
		c.elapse(t, clusterLease)
		var p struct{ Online bool }
		as(bob, nodeA).Must(t, 200, "GET", "/api/users/"+eve.UserID+"/presence", nil).Decode(t, &p)
		if !p.Online {
			t.Fatal("node A says eve is offline while she is connected to node C")
		}
		// Back on A: once node A recorded that, it had also finished
		// whatever it did when she left (one worker writes a user's
		// changes in order); the markers bring whatever that published.
		eveA = apitest.DialWS(t, nodeA.URL(), eve.Token)
		eventually(t, "node A to record eve's new socket", 10*time.Second, func() bool { return c.recorded(t, "node-a", eve.UserID) })
		c.markers(t, eve, bobWS, bob.UserID)
		if n := count(bobWS, presenceOf(eve.UserID, false)); n != 0 {
			t.Fatalf("eve announced offline %d times while connected to node C", n)
		}

		// Gone from C while on A: still online throughout. Reconnecting
		// to C is the same barrier for node C.
		eveC.Close()
		eventually(t, "node C to record that eve left, after the grace period", 10*time.Second, func() bool { return !c.recorded(t, "node-c", eve.UserID) })
		c.elapse(t, clusterLease)
		as(bob, nodeC).Must(t, 200, "GET", "/api/users/"+eve.UserID+"/presence", nil).Decode(t, &p)
		if !p.Online {
			t.Fatal("node C says eve is offline while she is connected to node A")
		}
		apitest.DialWS(t, nodeC.URL(), eve.Token)
		eventually(t, "node C to record eve's new socket", 10*time.Second, func() bool { return c.recorded(t, "node-c", eve.UserID) })
		c.markers(t, eve, bobWS, bob.UserID)
		on, off := count(bobWS, presenceOf(eve.UserID, true)), count(bobWS, presenceOf(eve.UserID, false))
		if on != 1 || off != 0 {
			t.Fatalf("bob got %d online and %d offline announcements of eve, want 1 and 0", on, off)
		}
	})

	t.Run("LogoutEverywhere", func(t *testing.T) {
		dan := apitest.Register(t, nodeA.URL(), "dan")
		other := apitest.NewClient(nodeB.URL())
		var login struct{ Token string }
		other.Must(t, 200, "POST", "/api/auth/login", map[string]string{"username": "dan", "password": "password-dan"}).Decode(t, &login)
		other.Token, other.UserID = login.Token, dan.UserID
		var socks []*apitest.WS
		for _, s := range c.nodes {
			socks = append(socks, apitest.DialWS(t, s.URL(), dan.Token))
		}
		otherB := apitest.DialWS(t, nodeB.URL(), other.Token)
		as(dan, nodeC).Must(t, 200, "POST", "/api/auth/logout", nil)
		for _, s := range c.nodes {
			as(dan, s).Must(t, 401, "GET", "/api/users/me", nil)
			as(other, s).Must(t, 200, "GET", "/api/users/me", nil)
		}
		for i, s := range c.nodes {
			waitClosed(t, socks[i], "dan's socket on "+s.URL())
			// Reconnecting is refused.
			_, resp, err := apitest.TryDialWS(t, s.URL(), dan.Token, nil)
			if err == nil || resp == nil || resp.StatusCode != 401 {
				t.Fatalf("reconnect with the revoked token to %s: %v %v", s.URL(), resp, err)
			}
		}
		// Node B has closed dan's socket there, so it has handled the
		// revocation (marking every socket it closes revoked before closing
		// any): the socket of dan's other token is open and still works.
		select {
		case <-otherB.Closed():
			t.Fatal("the socket of dan's other token was closed")
		default:
		}
		call(t, otherB, "typing", map[string]any{"recipientId": ann.UserID, "isTyping": true})
		var m struct{ MessageID string }
		ann.Must(t, 201, "POST", "/api/messages/send", map[string]any{"recipientId": dan.UserID,
			"encryptedContent": "after the logout", "type": "text"}).Decode(t, &m)
		otherB.WaitEvent(t, "new_message", m.MessageID)
	})

	t.Run("RateLimitShared", func(t *testing.T) {
		// 30 password-reset requests from one address, spread over the
		// nodes: one bucket of 10 for all of them (per node, all 30 would
		// pass). Rate limits go by the wall clock.
		client := apitest.NewClient("")
		granted := 0
		began := time.Now()
		for i := 0; i < 30; i++ {
			r := as(client, c.nodes[i%3]).Do(t, "POST", "/api/auth/password/forgot", map[string]string{"email": "nobody@example.test"})
			switch r.Status {
			case 200:
				granted++
			case 429:
				if r.Header.Get("Retry-After") == "" {
					t.Fatal("429 without Retry-After")
				}
			default:
				t.Fatalf("status %d: %s", r.Status, r.Error.Message)
			}
		}
		// The bucket refills one token every 3 s.
		refilled := int(time.Since(began) / (3 * time.Second))
		if granted < 10 || granted > 11+refilled {
			t.Fatalf("%d of 30 requests granted across 3 nodes, want 10 to %d (the shared bucket of 10, and what refilled)", granted, 11+refilled)
		}
	})

	t.Run("ScheduledOnce", func(t *testing.T) {
		annWS := apitest.DialWS(t, nodeA.URL(), ann.Token)
		at := c.clock.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
		var ids []string
		for i := 0; i < 5; i++ {
			var res struct{ MessageID string }
			as(bob, c.nodes[i%3]).Must(t, 201, "POST", "/api/messages/schedule", map[string]any{"recipientId": ann.UserID,
				"encryptedContent": fmt.Sprintf("later %d", i), "type": "text", "scheduledAt": at}).Decode(t, &res)
			ids = append(ids, res.MessageID)
		}
		c.elapse(t, 2*time.Second)
		for _, id := range ids {
			annWS.WaitEvent(t, "new_message", id)
		}
		// Ten more turns of every node's scheduler, then a marker from
		// each node: any second send would have arrived.
		for i := 0; i < 10; i++ {
			c.tick(t, clusterTick)
		}
		c.markers(t, bob, annWS, ann.UserID)
		for _, id := range ids {
			if n := count(annWS, func(f apitest.Frame) bool { return f.Event == "new_message" && strings.Contains(string(f.Data), id) }); n != 1 {
				t.Fatalf("scheduled message %s arrived %d times", id, n)
			}
		}
		var history []struct{ MessageID string }
		as(ann, nodeC).Must(t, 200, "GET", "/api/messages/"+ann.UserID+"/"+bob.UserID+"?limit=200", nil).Decode(t, &history)
		for _, id := range ids {
			n := 0
			for _, m := range history {
				if m.MessageID == id {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("scheduled message %s is %d times in the history", id, n)
			}
		}
		var pending []any
		bob.Must(t, 200, "GET", "/api/messages/scheduled", nil).Decode(t, &pending)
		if len(pending) != 0 {
			t.Fatalf("%d scheduled messages still pending", len(pending))
		}
	})

	t.Run("PollingNeedsStickySessions", func(t *testing.T) {
		// An Engine.IO session opened on A, polled on B.
		resp, err := http.Get(nodeA.URL() + "/socket.io/?EIO=4&transport=polling")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var open struct{ Sid string }
		if len(body) < 2 || json.Unmarshal(body[1:], &open) != nil || open.Sid == "" {
			t.Fatalf("handshake: %s", body)
		}
		resp, err = http.Get(nodeB.URL() + "/socket.io/?EIO=4&transport=polling&sid=" + url.QueryEscape(open.Sid))
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct {
			Code    int
			Message string
		}
		if resp.StatusCode != 400 || json.Unmarshal(body, &e) != nil || e.Code != 1 || !strings.Contains(e.Message, "sticky sessions") {
			t.Fatalf("poll on the wrong node: %d %s", resp.StatusCode, body)
		}

		// Behind a round-robin balancer without sticky sessions, the stock
		// client's default transports (long-polling first) fail with that
		// message, and WebSocket-only clients work through any node. This
		// half needs Node and socket.io-client: it skips without them
		// (fails in CI).
		agent := startAgent(t, testenv.NodeDir(t))
		var next atomic.Uint32
		targets := make([]*url.URL, len(c.nodes))
		for i, s := range c.nodes {
			targets[i], _ = url.Parse(s.URL())
		}
		lb := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(targets[next.Add(1)%uint32(len(targets))])
		}})
		t.Cleanup(func() {
			lb.CloseClientConnections() // a long-poll of the polling client may still be open
			lb.Close()
		})
		mark := agent.mark()
		agent.send(map[string]any{"op": "connect", "sock": "ann@lb-polling", "url": lb.URL, "token": ann.Token, "transport": "default"})
		agent.waitFor(mark, "the sticky-session error", 10*time.Second, func(r sioReport) bool {
			return r.Sock == "ann@lb-polling" && strings.Contains(r.Body, "sticky sessions")
		})
		agent.close("ann@lb-polling")
		mark = agent.mark()
		for i := 0; i < 3; i++ {
			agent.connect(fmt.Sprintf("cat@lb%d", i), lb.URL, cat.Token, "websocket")
		}
		bobWS := apitest.DialWS(t, nodeB.URL(), bob.Token)
		id := sendOn(t, bobWS, cat.UserID, "through the balancer")
		for i := 0; i < 3; i++ {
			sock := fmt.Sprintf("cat@lb%d", i)
			agent.waitFor(mark, "new_message at "+sock, 10*time.Second, event(sock, "new_message", map[string]any{"messageId": id}))
			agent.close(sock)
		}
	})

	if !t.Run("NATSOutage", func(t *testing.T) {
		annWS := apitest.DialWS(t, nodeA.URL(), ann.Token)
		bobWS := apitest.DialWS(t, nodeB.URL(), bob.Token)
		catWS := apitest.DialWS(t, nodeC.URL(), cat.Token)
		ns.Stop()
		eventually(t, "every node to notice NATS is gone", 10*time.Second, func() bool {
			return !busConnected(nodeA) && !busConnected(nodeB) && !busConnected(nodeC)
		})
		// A message sent meanwhile is committed and acknowledged.
		var sent struct{ MessageID string }
		bob.Must(t, 201, "POST", "/api/messages/send", map[string]any{"recipientId": ann.UserID,
			"encryptedContent": "during the outage", "type": "text", "clientMessageId": "outage-1"}).Decode(t, &sent)
		// Ann gets it through sync, from any node.
		var page struct {
			Items []struct {
				Event string
				Data  struct{ MessageID string }
			}
		}
		as(ann, nodeC).Must(t, 200, "GET", "/api/sync?limit=200", nil).Decode(t, &page)
		found := false
		for _, it := range page.Items {
			found = found || (it.Event == "new_message" && it.Data.MessageID == sent.MessageID)
		}
		if !found {
			t.Fatalf("message %s sent during the outage is not in ann's sync", sent.MessageID)
		}
		// The outage lasts long enough for a few failed reconnection
		// attempts (one a second, on the wall clock): nothing waits for
		// this pause, it is the length of the outage.
		time.Sleep(2 * time.Second)
		ns.Restart()
		eventually(t, "every node to reconnect by itself", 10*time.Second, func() bool {
			return busConnected(nodeA) && busConnected(nodeB) && busConnected(nodeC)
		})
		// Sockets are closed so their clients resynchronise; they come
		// back (after the close: a node closes every socket it has then).
		waitClosed(t, annWS, "ann's socket on node A, for resync")
		waitClosed(t, bobWS, "bob's socket on node B, for resync")
		waitClosed(t, catWS, "cat's socket on node C, for resync")
		annWS = apitest.DialWS(t, nodeA.URL(), ann.Token)
		bobWS = apitest.DialWS(t, nodeB.URL(), bob.Token)
		catWS = apitest.DialWS(t, nodeC.URL(), cat.Token)
		// Live delivery across nodes resumes.
		id := sendOn(t, bobWS, ann.UserID, "after the outage")
		annWS.WaitEvent(t, "new_message", id)
		id = sendOn(t, annWS, cat.UserID, "after the outage too")
		catWS.WaitEvent(t, "new_message", id)
	}) {
		return
	}

	t.Run("NodeDies", func(t *testing.T) {
		// Fay's only socket is on C. Once C is gone, she goes offline
		// within grace + lease, announced once: by A or B sweeping C's
		// records when the lease C cut to the grace period has run out on
		// the clock (or by C itself, if its wall-clock grace timer fired
		// before it stopped).
		fay := apitest.Register(t, nodeC.URL(), "fay")
		bob.Must(t, 201, "POST", "/api/contacts", map[string]string{"contactId": fay.UserID})
		bobWS := apitest.DialWS(t, nodeB.URL(), bob.Token)
		annWS := apitest.DialWS(t, nodeA.URL(), ann.Token)
		apitest.DialWS(t, nodeC.URL(), fay.Token)
		bobWS.WaitFor(t, presenceOf(fay.UserID, true))
		if err := nodeC.Close(); err != nil {
			t.Fatalf("close node C: %v", err)
		}
		c.nodes = c.nodes[:2]
		// The grace period, then one sweep: within grace + lease.
		c.elapse(t, clusterGrace+clusterLease/3)
		bobWS.WaitFor(t, presenceOf(fay.UserID, false))
		var p struct{ Online bool }
		as(bob, nodeA).Must(t, 200, "GET", "/api/users/"+fay.UserID+"/presence", nil).Decode(t, &p)
		if p.Online {
			t.Fatal("node A still says fay is online")
		}
		// More sweeps, then markers from both nodes: once.
		c.elapse(t, clusterLease)
		c.markers(t, ann, bobWS, bob.UserID)
		if n := count(bobWS, presenceOf(fay.UserID, false)); n != 1 {
			t.Fatalf("fay announced offline %d times, want once", n)
		}
		// The survivors still carry events between them.
		id := sendOn(t, bobWS, ann.UserID, "two nodes left")
		annWS.WaitEvent(t, "new_message", id)
	})
}
