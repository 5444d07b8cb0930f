package server_test

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/natstest"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/jobs"
	"github.com/parley-chat/parley/natsbus"
	"github.com/parley-chat/parley/server"
)

// TestClusterBusLoss makes node B fall behind on the events of node A
// with room for one waiting event, and checks that no message acked to
// its sender is lost silently at B: each of Bob's sockets on B receives
// every message, or is closed so its client catches up through sync, which
// then holds them all. The socket that matters opened after B had already
// dropped an event and before it dropped the next: a loss reported once,
// when it begins, misses it.
func TestClusterBusLoss(t *testing.T) {
	dsn := testdb.DSN(t, "postgres")
	ns := natstest.Start(t)
	clock := jobs.NewFake(time.Now())
	nodeA := startNode(t, "node-a", dsn, ns.URL(), clock)
	nodeB := startNode(t, "node-b", dsn, ns.URL(), clock, func(c *server.Config) {
		c.BusQueueLen = 1
		c.MetricsAddr = "127.0.0.1:0"
	})
	busB, ok := nodeB.Bus().(*natsbus.Bus)
	if !ok {
		t.Fatalf("node B's bus is a %T", nodeB.Bus())
	}
	ann := apitest.Register(t, nodeA.URL(), "ann")
	bob := apitest.Register(t, nodeB.URL(), "bob")
	bob.Must(t, 201, "POST", "/api/contacts", map[string]string{"contactId": ann.UserID})
	ann.Must(t, 201, "POST", "/api/contacts", map[string]string{"contactId": bob.UserID})
	annWS := apitest.DialWS(t, nodeA.URL(), ann.Token)
	first := apitest.DialWS(t, nodeB.URL(), bob.Token)
	// A message crosses from A to B before anything is held up.
	first.WaitEvent(t, "new_message", sendOn(t, annWS, bob.UserID, "warm-up"))

	// B's bus worker stops inside the delivery of "m1".
	entered, release := make(chan struct{}), make(chan struct{})
	var enterOnce, releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock()
	unsub := nodeB.Bus().Subscribe(func(ev *parley.Event) {
		if ev.Name == "new_message" && strings.Contains(string(ev.Data), `"m1"`) {
			enterOnce.Do(func() { close(entered) })
			<-release
		}
	})
	defer unsub()
	closed := func(ws *apitest.WS) bool {
		select {
		case <-ws.Closed():
			return true
		default:
			return false
		}
	}
	lost := func() uint64 { st := busB.Stats(); return st.Dropped + st.Missing + st.ClientDropped }

	ids := map[string]string{} // content → messageId
	send := func(content string) { ids[content] = sendOn(t, annWS, bob.UserID, content) }
	send("m1")
	<-entered
	send("m2") // waits in B's queue (or is dropped, if another event of A's took the place)
	send("m3") // no room: dropped
	eventually(t, "B to drop an event", 10*time.Second, func() bool { return lost() >= 1 })
	// Bob opens a second socket now (a client reconnecting after a first
	// resynchronisation would do the same), then misses m4 too.
	second := apitest.DialWS(t, nodeB.URL(), bob.Token)
	eventually(t, "the second socket in B's hub", 10*time.Second, func() bool {
		n := nodeB.Hub().Connections()
		return n == 2 || (n == 1 && closed(first)) // the first may have been closed already
	})
	before := lost()
	send("m4")
	eventually(t, "B to drop m4", 10*time.Second, func() bool { return lost() > before })
	unblock()
	// The barrier: m5 reaches every socket of Bob still open, after
	// everything B had queued or dropped before it.
	send("m5")
	got := func(ws *apitest.WS, content string) bool {
		return slices.ContainsFunc(ws.Events("new_message"), func(d json.RawMessage) bool { return strings.Contains(string(d), ids[content]) })
	}
	// Each socket must get what was committed after it opened (its client
	// caught up on the rest when connecting).
	for name, ws := range map[string]*apitest.WS{"first": first, "second": second} {
		eventually(t, "m5 at Bob's "+name+" socket, or its closing", 10*time.Second, func() bool { return closed(ws) || got(ws, "m5") })
		if closed(ws) {
			continue // its client resynchronises
		}
		want := []string{"m1", "m2", "m3", "m4"}
		if ws == second {
			want = want[3:]
		}
		for _, content := range want {
			if !got(ws, content) {
				t.Errorf("Bob's %s socket is still open and never got %s, acked to Ann: lost silently", name, content)
			}
		}
	}
	if st := busB.Stats(); st.Dropped < 2 {
		t.Errorf("B's bus stats %+v: at least m3 and m4 dropped and counted", st)
	}
	fams := scrape(t, nodeB)
	if n := total(fams, "parley_bus_events_lost_total", map[string]string{"reason": "behind"}); n < 2 {
		t.Errorf("parley_bus_events_lost_total{reason=behind} = %v at B, want at least 2", n)
	}
	if n := total(fams, "parley_bus_gaps_total", nil); n < 1 {
		t.Errorf("parley_bus_gaps_total = %v at B", n)
	}

	// What a client does once closed: reconnect and catch up.
	var page struct {
		Items []struct {
			Event string
			Data  struct{ MessageID string }
		}
	}
	bob.Must(t, 200, "GET", "/api/sync?cursor=0&limit=200", nil).Decode(t, &page)
	for _, content := range []string{"m1", "m2", "m3", "m4", "m5"} {
		if !slices.ContainsFunc(page.Items, func(it struct {
			Event string
			Data  struct{ MessageID string }
		}) bool {
			return it.Event == "new_message" && it.Data.MessageID == ids[content]
		}) {
			t.Errorf("%s is not in Bob's sync", content)
		}
	}
}
