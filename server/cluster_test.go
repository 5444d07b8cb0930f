package server_test

import (
	"bytes"
	"context"
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
	"github.com/parley-chat/parley/server"
)

// Timings of the cluster under test: short, so the whole run stays quick.
const (
	clusterGrace = time.Second
	clusterLease = 1500 * time.Millisecond // renewed every 500 ms
)

// startNode starts one node of a cluster on the shared database dsn and
// NATS server natsURL; it is closed when tb ends (Close is idempotent).
func startNode(tb testing.TB, name, dsn, natsURL string) *server.Server {
	tb.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testLog{tb, name}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	s, err := server.New(context.Background(), server.Config{
		Addr:              "127.0.0.1:0",
		DataDir:           tb.TempDir(),
		DB:                dsn,
		Bus:               natsURL,
		NodeID:            name,
		PasswordCost:      apitest.FastPasswords,
		PresenceGrace:     clusterGrace,
		PresenceLease:     clusterLease,
		ScheduleTick:      100 * time.Millisecond,
		AuthRatePerMinute: 20, // buckets of 10
		ShutdownTimeout:   5 * time.Second,
		Logger:            logger,
	})
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

func eventually(tb testing.TB, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// as returns a copy of c that talks to another node.
func as(c *apitest.Client, s *server.Server) *apitest.Client {
	cp := *c
	cp.Base = s.URL()
	return &cp
}

// TestCluster runs three nodes in this process on one fresh PostgreSQL
// database and one NATS server (embedded, so the test can stop it), with
// users connected to different nodes through the real socket.io-client,
// and checks what API.md promises of several nodes: events cross nodes,
// presence is global and announced once, logout reaches every node, rate
// limits are shared, scheduled messages go out once, a NATS outage loses
// no acknowledged message and heals by itself, a dead node's users go
// offline, and a long-polling request that reaches the wrong node gets a
// clear error.
func TestCluster(t *testing.T) {
	dsn := testdb.DSN(t, "postgres")
	agentDir := testenv.NodeDir(t)
	ns := natstest.Start(t)
	nodes := []*server.Server{
		startNode(t, "node-a", dsn, ns.URL()),
		startNode(t, "node-b", dsn, ns.URL()),
		startNode(t, "node-c", dsn, ns.URL()),
	}
	nodeA, nodeB, nodeC := nodes[0], nodes[1], nodes[2]
	agent := startAgent(t, agentDir)

	ann := apitest.Register(t, nodeA.URL(), "ann")
	bob := apitest.Register(t, nodeB.URL(), "bob")
	cat := apitest.Register(t, nodeC.URL(), "cat")
	// Bob follows Ann's and Cat's presence; Ann follows Bob's.
	bob.Must(t, 201, "POST", "/api/contacts", map[string]string{"contactId": ann.UserID})
	bob.Must(t, 201, "POST", "/api/contacts", map[string]string{"contactId": cat.UserID})
	ann.Must(t, 201, "POST", "/api/contacts", map[string]string{"contactId": bob.UserID})

	// Every presence_update Bob gets about a user, from the start.
	presenceAt := func(sock, userID string, online bool) func(sioReport) bool {
		return event(sock, "presence_update", map[string]any{"userId": userID, "online": online})
	}
	start := agent.mark()
	agent.connect("bob@B", nodeB.URL(), bob.Token, "websocket")
	agent.connect("cat@C", nodeC.URL(), cat.Token, "websocket")
	agent.connect("ann@A", nodeA.URL(), ann.Token, "websocket")

	send := func(sock, to, content string) string {
		r := agent.emit(sock, "send_message", map[string]any{"recipientId": to, "encryptedContent": content, "type": "text"})
		var ack struct {
			Success bool
			Data    struct{ MessageID string }
		}
		if err := json.Unmarshal(r.Data, &ack); err != nil || !ack.Success || ack.Data.MessageID == "" {
			t.Fatalf("send_message on %s: %s", sock, r.Data)
		}
		return ack.Data.MessageID
	}

	if !t.Run("EventsCrossNodes", func(t *testing.T) {
		// Presence: Ann came online on A; Bob on B hears it.
		agent.waitFor(start, "ann online at bob", 5*time.Second, presenceAt("bob@B", ann.UserID, true))

		// Messages from B to A, timed from emit to arrival.
		var lat []time.Duration
		for i := 0; i < 20; i++ {
			mark := agent.mark()
			id := send("bob@B", ann.UserID, fmt.Sprintf("ciphertext %d", i))
			got := agent.waitFor(mark, "new_message at ann", 5*time.Second, event("ann@A", "new_message", map[string]any{"messageId": id}))
			ack := agent.all(mark, func(r sioReport) bool { return r.Type == "ack" })[0]
			lat = append(lat, time.Duration(got.T-ack.Sent)*time.Millisecond)
		}
		slices.Sort(lat)
		t.Logf("send_message on node B to new_message on node A (socket.io-client, 20 sends): median %v, max %v", lat[len(lat)/2], lat[len(lat)-1])

		// Receipts from A to B.
		mark := agent.mark()
		last := send("bob@B", ann.UserID, "mark me")
		agent.waitFor(mark, "new_message at ann", 5*time.Second, event("ann@A", "new_message", map[string]any{"messageId": last}))
		agent.emit("ann@A", "message_status", map[string]any{"messageId": last, "status": "seen"})
		agent.waitFor(mark, "message_status_update at bob", 5*time.Second,
			event("bob@B", "message_status_update", map[string]any{"status": "seen"}))

		// Typing from A to B.
		agent.emit("ann@A", "typing", map[string]any{"recipientId": bob.UserID, "isTyping": true})
		agent.waitFor(mark, "typing_indicator at bob", 5*time.Second,
			event("bob@B", "typing_indicator", map[string]any{"senderId": ann.UserID}))

		// Group and membership events: Bob on B creates a group with Ann
		// (A) and Cat (C), then writes to it.
		var g struct{ GroupID string }
		bob.Must(t, 201, "POST", "/api/groups/create", map[string]any{"name": "three nodes", "members": []string{ann.UserID, cat.UserID}}).Decode(t, &g)
		for _, sock := range []string{"ann@A", "cat@C"} {
			agent.waitFor(mark, "group_member_added at "+sock, 5*time.Second, event(sock, "group_member_added", map[string]any{"groupId": g.GroupID}))
		}
		r := agent.emit("bob@B", "send_group_message", map[string]any{"groupId": g.GroupID, "encryptedContent": "to the group", "type": "text"})
		var ack struct{ Data struct{ MessageID string } }
		if json.Unmarshal(r.Data, &ack) != nil || ack.Data.MessageID == "" {
			t.Fatalf("send_group_message: %s", r.Data)
		}
		for _, sock := range []string{"ann@A", "cat@C"} {
			agent.waitFor(mark, "new_group_message at "+sock, 5*time.Second, event(sock, "new_group_message", map[string]any{"messageId": ack.Data.MessageID}))
		}
	}) {
		return
	}

	if !t.Run("OneUserOnTwoNodes", func(t *testing.T) {
		mark := agent.mark()
		agent.connect("ann@C", nodeC.URL(), ann.Token, "websocket")
		id := send("bob@B", ann.UserID, "to both sockets")
		for _, sock := range []string{"ann@A", "ann@C"} {
			agent.waitFor(mark, "new_message at "+sock, 5*time.Second, event(sock, "new_message", map[string]any{"messageId": id}))
		}
		// Ann leaves A but is still on C: online, nothing announced.
		agent.close("ann@A")
		time.Sleep(clusterGrace + clusterLease)
		if got := agent.all(start, presenceAt("bob@B", ann.UserID, false)); len(got) != 0 {
			t.Fatalf("ann announced offline while connected to node C: %v", got)
		}
		var p struct{ Online bool }
		as(bob, nodeA).Must(t, 200, "GET", "/api/users/"+ann.UserID+"/presence", nil).Decode(t, &p)
		if !p.Online {
			t.Fatal("node A says ann is offline while she is connected to node C")
		}
		// Back on A, then gone from C: still online throughout.
		agent.connect("ann@A", nodeA.URL(), ann.Token, "websocket")
		agent.close("ann@C")
		time.Sleep(clusterGrace + clusterLease)
		on := agent.all(start, presenceAt("bob@B", ann.UserID, true))
		off := agent.all(start, presenceAt("bob@B", ann.UserID, false))
		if len(on) != 1 || len(off) != 0 {
			t.Fatalf("bob got %d online and %d offline announcements of ann, want 1 and 0", len(on), len(off))
		}
	}) {
		return
	}

	t.Run("LogoutEverywhere", func(t *testing.T) {
		dan := apitest.Register(t, nodeA.URL(), "dan")
		other := apitest.NewClient(nodeB.URL())
		var login struct{ Token string }
		other.Must(t, 200, "POST", "/api/auth/login", map[string]string{"username": "dan", "password": "password-dan"}).Decode(t, &login)
		other.Token = login.Token
		for _, n := range []struct {
			sock string
			s    *server.Server
		}{{"dan@A", nodeA}, {"dan@B", nodeB}, {"dan@C", nodeC}} {
			agent.connect(n.sock, n.s.URL(), dan.Token, "websocket")
		}
		agent.connect("dan2@B", nodeB.URL(), other.Token, "websocket")
		mark := agent.mark()
		as(dan, nodeC).Must(t, 200, "POST", "/api/auth/logout", nil)
		for _, s := range nodes {
			as(dan, s).Must(t, 401, "GET", "/api/users/me", nil)
			as(other, s).Must(t, 200, "GET", "/api/users/me", nil)
		}
		for _, sock := range []string{"dan@A", "dan@B", "dan@C"} {
			agent.waitFor(mark, sock+" disconnected", 5*time.Second, func(r sioReport) bool { return r.Sock == sock && r.Type == "disconnect" })
			// It reconnects by itself and is refused.
			agent.waitFor(mark, sock+" refused", 5*time.Second, func(r sioReport) bool {
				return r.Sock == sock && r.Type == "connect_error" && r.Message == "unauthorized"
			})
		}
		if got := agent.all(mark, func(r sioReport) bool { return r.Sock == "dan2@B" && r.Type == "disconnect" }); len(got) != 0 {
			t.Fatalf("the socket of dan's other token was closed: %v", got)
		}
		for _, sock := range []string{"dan@A", "dan@B", "dan@C", "dan2@B"} {
			agent.close(sock)
		}
	})

	t.Run("RateLimitShared", func(t *testing.T) {
		// 30 password-reset requests from one address, spread over the
		// nodes: one bucket of 10 for all of them (per node, all 30 would
		// pass).
		client := apitest.NewClient("")
		granted := 0
		began := time.Now()
		for i := 0; i < 30; i++ {
			r := as(client, nodes[i%3]).Do(t, "POST", "/api/auth/password/forgot", map[string]string{"email": "nobody@example.test"})
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
		mark := agent.mark()
		at := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
		var ids []string
		for i := 0; i < 5; i++ {
			var res struct{ MessageID string }
			bob.Must(t, 201, "POST", "/api/messages/schedule", map[string]any{"recipientId": ann.UserID,
				"encryptedContent": fmt.Sprintf("later %d", i), "type": "text", "scheduledAt": at}).Decode(t, &res)
			ids = append(ids, res.MessageID)
		}
		for _, id := range ids {
			agent.waitFor(mark, "scheduled "+id+" at ann", 10*time.Second, event("ann@A", "new_message", map[string]any{"messageId": id}))
		}
		time.Sleep(time.Second) // three schedulers ticking every 100 ms had every chance to send again
		for _, id := range ids {
			if n := len(agent.all(mark, event("ann@A", "new_message", map[string]any{"messageId": id}))); n != 1 {
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
		// message, and WebSocket-only clients work through any node.
		var next atomic.Uint32
		targets := make([]*url.URL, len(nodes))
		for i, s := range nodes {
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
		id := send("bob@B", cat.UserID, "through the balancer")
		for i := 0; i < 3; i++ {
			sock := fmt.Sprintf("cat@lb%d", i)
			agent.waitFor(mark, "new_message at "+sock, 5*time.Second, event(sock, "new_message", map[string]any{"messageId": id}))
			agent.close(sock)
		}
	})

	if !t.Run("NATSOutage", func(t *testing.T) {
		mark := agent.mark()
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
		time.Sleep(2 * time.Second) // a few failed reconnection attempts
		ns.Restart()
		eventually(t, "every node to reconnect by itself", 10*time.Second, func() bool {
			return busConnected(nodeA) && busConnected(nodeB) && busConnected(nodeC)
		})
		// Sockets are closed so their clients resynchronise; they come back.
		for _, sock := range []string{"ann@A", "bob@B", "cat@C"} {
			r := agent.waitFor(mark, sock+" closed for resync", 5*time.Second, func(r sioReport) bool { return r.Sock == sock && r.Type == "disconnect" })
			agent.waitFor(mark, sock+" back", 5*time.Second, func(x sioReport) bool { return x.Sock == sock && x.Type == "connect" && x.T >= r.T })
		}
		// Live delivery across nodes resumes.
		mark = agent.mark()
		id := send("bob@B", ann.UserID, "after the outage")
		agent.waitFor(mark, "new_message at ann after the outage", 5*time.Second, event("ann@A", "new_message", map[string]any{"messageId": id}))
		id = send("ann@A", cat.UserID, "after the outage too")
		agent.waitFor(mark, "new_message at cat after the outage", 5*time.Second, event("cat@C", "new_message", map[string]any{"messageId": id}))
	}) {
		return
	}

	t.Run("NodeDies", func(t *testing.T) {
		// Cat's only socket is on C. Once C is gone, B and A take her
		// offline within grace + lease, announced once.
		mark := agent.mark()
		died := time.Now()
		if err := nodeC.Close(); err != nil {
			t.Fatalf("close node C: %v", err)
		}
		agent.waitFor(mark, "cat offline at bob", clusterGrace+clusterLease+3*time.Second, presenceAt("bob@B", cat.UserID, false))
		t.Logf("cat went offline at bob %v after node C closed", time.Since(died).Round(10*time.Millisecond))
		agent.close("cat@C")
		var p struct{ Online bool }
		as(bob, nodeA).Must(t, 200, "GET", "/api/users/"+cat.UserID+"/presence", nil).Decode(t, &p)
		if p.Online {
			t.Fatal("node A still says cat is online")
		}
		time.Sleep(clusterLease)
		if n := len(agent.all(mark, presenceAt("bob@B", cat.UserID, false))); n != 1 {
			t.Fatalf("cat announced offline %d times, want once", n)
		}
		// The survivors still carry events between them.
		id := send("bob@B", ann.UserID, "two nodes left")
		agent.waitFor(mark, "new_message at ann", 5*time.Second, event("ann@A", "new_message", map[string]any{"messageId": id}))
	})
}
