package server_test

import (
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/natstest"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/server"
)

// TestNotificationsHolderDies checks the outbox's delivery promise across
// two nodes (PostgreSQL and NATS) when the node that holds the push outbox
// goes away while a push is in flight: the first push any receiver gets
// is the one in flight, and the receiver takes it (records it) before the
// node hears the answer.
//
//   - Crash: the holder loses its database at that moment (as if it
//     died): it cannot record the push, keep its lease or send anything
//     more. The other node takes the job over once the lease and the
//     push's claim run out and sends the push again, with the same
//     notificationId and topic: two copies, never three.
//   - Stop: the holder is shut down (Server.Close, as on SIGTERM) at that
//     moment: it finishes the request in flight and records it, so the
//     other node, taking the job over, does not send it again.
//
// Either way every other pending push arrives exactly once.
func TestNotificationsHolderDies(t *testing.T) {
	// Each case has its own database, NATS server and nodes.
	t.Run("Crash", func(t *testing.T) { t.Parallel(); testHolderDies(t, true) })
	t.Run("Stop", func(t *testing.T) { t.Parallel(); testHolderDies(t, false) })
}

func testHolderDies(t *testing.T, crash bool) {
	dsn := testdb.DSN(t, "postgres")
	ns := natstest.Start(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// node-a, the holder, reaches the database through a proxy that can
	// cut it off.
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newDBProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	node := func(name, dsn string) *server.Server {
		return apitest.MustStart(t, "postgres", func(c *server.Config) {
			c.DB, c.Bus, c.NodeID = dsn, ns.URL(), name
			c.PushAllowHTTP, c.PushAllowInternal = true, true
			c.NotifyTick = 50 * time.Millisecond
			// One push in flight at a time, so that exactly one is in
			// flight when node-a goes and the others are left to node-b.
			// With more, each in flight behaves as this one does
			// (service's TestPushesInFlight: a stop finishes them all).
			c.PushConcurrency = 1
			if crash {
				// How late a push is after its node died mid-send: the
				// default minute would outlast the test.
				c.PushClaim = 10 * time.Second
			}
		})
	}
	holder := func() string {
		var h string
		if err := db.QueryRow(`SELECT holder FROM job_leases WHERE name = 'push-outbox'`).Scan(&h); err != nil && err != sql.ErrNoRows {
			t.Fatal(err)
		}
		return h
	}
	nodeA := node("node-a", u.String())
	eventually(t, "node-a to take the push outbox", 15*time.Second, func() bool { return holder() == "node-a" })
	nodeB := node("node-b", dsn)

	ann := apitest.Register(t, nodeB.URL(), apitest.Unique("ann"))
	const users = 5
	var (
		rcvs       []*pushReceiver
		recipients []*apitest.Client
	)
	for i := range users {
		c := apitest.Register(t, nodeB.URL(), apitest.Unique(fmt.Sprintf("r%d", i)))
		rcv := newPushReceiver(t)
		readPushKey(t, c, rcv)
		c.Must(t, 201, "POST", "/api/notifications/devices", map[string]any{"deviceId": "laptop", "platform": "webpush",
			"subscription": rcv.subscription()})
		rcvs, recipients = append(rcvs, rcv), append(recipients, c)
	}

	// The first push taken by any receiver is the one in flight when
	// node-a goes.
	var victim atomic.Int32 // the receiver of the push in flight
	victim.Store(-1)
	for i, rcv := range rcvs {
		rcv.setOnPush(func(req *http.Request) {
			if !victim.CompareAndSwap(-1, int32(i)) {
				return
			}
			if crash {
				proxy.set("down") // before node-a hears that the push was taken
				return
			}
			go nodeA.Close()
			// Answer once node-a is stopping (its listener closes before
			// its jobs are stopped), and not before a stop that cut the
			// request off would have done so.
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				c, err := net.Dial("tcp", nodeA.Addr())
				if err != nil {
					break
				}
				c.Close()
			}
			select {
			case <-req.Context().Done(): // node-a gave up on the request
			case <-time.After(2 * time.Second):
			}
		})
	}

	var last sendRes
	for i, c := range recipients {
		last = send(t, ann, c, fmt.Sprintf("secret-%d", i), nil)
	}
	want := func(i int) int {
		if crash && int32(i) == victim.Load() {
			return 2
		}
		return 1
	}
	eventually(t, "every push to arrive", 45*time.Second, func() bool {
		if victim.Load() < 0 {
			return false
		}
		for i, rcv := range rcvs {
			if len(rcv.pushes()) < want(i) {
				return false
			}
		}
		return true
	})
	// The barrier before counting: the change log read past the last
	// message and the outbox empty, so nothing more can be sent.
	waitOutboxPast(t, db, last.MessageID)
	if h := holder(); h != "node-b" {
		t.Fatalf("the push outbox is held by %q after node-a went, want node-b", h)
	}

	seen := map[string]bool{}
	for i, rcv := range rcvs {
		got, topics := rcv.pushes(), rcv.pushTopics()
		if len(got) != want(i) {
			t.Fatalf("recipient %d (in flight: %v) got %d pushes, want %d: %s", i, int32(i) == victim.Load(), len(got), want(i), got)
		}
		p := decodePush(t, got[0])
		if p.Count != 1 || topics[0] == "" {
			t.Fatalf("recipient %d: push %s with topic %q", i, got[0], topics[0])
		}
		for j := 1; j < len(got); j++ {
			q := decodePush(t, got[j])
			if q.NotificationID != p.NotificationID || topics[j] != topics[0] || q.ConversationID != p.ConversationID || q.Count != 1 {
				t.Fatalf("the push sent again differs: %s (topic %q), first %s (topic %q)", got[j], topics[j], got[0], topics[0])
			}
		}
		if seen[p.NotificationID] {
			t.Fatalf("notification id %s on two recipients' pushes", p.NotificationID)
		}
		seen[p.NotificationID] = true
	}
}
