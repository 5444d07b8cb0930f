package server_test

import (
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/natstest"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/jobs"
	"github.com/parley-chat/parley/server"
)

// TestCallsCluster runs calls over two nodes sharing PostgreSQL and NATS:
// the callee's devices on different nodes ring and race to answer (one
// wins), a signal crosses to the winning device's node, a call nobody
// answers is missed once although both nodes run the job, a device that
// drops on one node and comes back on the other keeps its call while one
// that stays away ends it (connection_lost, or failed while ringing) once,
// and a callee's socket rings on whichever node it connects to.
func TestCallsCluster(t *testing.T) {
	dsn := testdb.DSN(t, "postgres")
	calls := rawCalls(t, dsn)
	ns := natstest.Start(t)
	c := &cluster{clock: jobs.NewFake(time.Now())}
	c.nodes = []*server.Server{
		startNode(t, "node-a", dsn, ns.URL(), c.clock),
		startNode(t, "node-b", dsn, ns.URL(), c.clock),
	}
	nodeA, nodeB := c.nodes[0], c.nodes[1]
	c.settle(t)

	ann := apitest.Register(t, nodeA.URL(), apitest.Unique("ann"))
	bob := apitest.Register(t, nodeA.URL(), apitest.Unique("bob"))
	bobTablet := secondDevice(t, as(bob, nodeB), "bob-tablet")
	annWS := apitest.DialWS(t, nodeA.URL(), ann.Token)
	bobWS := apitest.DialWS(t, nodeA.URL(), bob.Token)
	tabletWS := apitest.DialWS(t, nodeB.URL(), bobTablet.Token)

	t.Run("AnswerRace", func(t *testing.T) {
		call := startCall(t, ann, bob, "voice")
		bobWS.WaitEvent(t, "call_incoming", call.CallID)
		tabletWS.WaitEvent(t, "call_incoming", call.CallID)

		devices := []*apitest.Client{bob, bobTablet}
		status := make([]int, len(devices))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, d := range devices {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				status[i] = d.Do(t, "POST", "/api/calls/answer", map[string]any{"callId": call.CallID, "answer": true}).Status
			}()
		}
		close(start)
		wg.Wait()
		var winner, loser *apitest.WS
		switch {
		case status[0] == 200 && status[1] == 409:
			winner, loser = bobWS, tabletWS
		case status[0] == 409 && status[1] == 200:
			winner, loser = tabletWS, bobWS
		default:
			t.Fatalf("answers from two devices at once: statuses %v, want one 200 and one 409", status)
		}
		annWS.WaitEvent(t, "call_accepted", call.CallID)
		winner.WaitEvent(t, "call_accepted", call.CallID)
		loser.WaitEvent(t, "call_answered_elsewhere", call.CallID)

		ann.Must(t, 200, "POST", "/api/calls/signal", map[string]any{"callId": call.CallID, "signal": map[string]string{"candidate": "to-the-winner"}})
		winner.WaitEvent(t, "call_signal", "to-the-winner")
		as(ann, nodeB).Must(t, 200, "POST", "/api/calls/end", map[string]string{"callId": call.CallID})
		loser.WaitEvent(t, "call_ended", call.CallID)
		if countEvents(loser, "call_signal", "to-the-winner") != 0 {
			t.Fatal("the device that lost the answer got the call's signal")
		}
	})

	t.Run("MissedOnce", func(t *testing.T) {
		call := startCall(t, as(ann, nodeB), bob, "video")
		tabletWS.WaitEvent(t, "call_incoming", call.CallID)
		c.tick(t, 46*time.Second)
		for _, ws := range []*apitest.WS{annWS, bobWS, tabletWS} {
			if e := eventOf(t, ws.WaitEvent(t, "call_ended", call.CallID)); e.Reason != "missed" {
				t.Fatalf("call_ended = %+v", e)
			}
		}
		c.tick(t, 46*time.Second)
		c.markers(t, bob, annWS, ann.UserID)
		if n := countEvents(annWS, "call_ended", call.CallID); n != 1 {
			t.Fatalf("the caller was told %d times that the call was missed", n)
		}
	})
	// Three live calls whose callee's socket on node A drops: pat comes
	// back on node B; rob still has a socket on node B (node A marks him
	// lost, node B clears it); tia never comes back. Only tia's call ends,
	// once, though both nodes run the job.
	t.Run("ConnectionLost", func(t *testing.T) {
		users := map[string]*apitest.Client{}
		for _, n := range []string{"pat", "qin", "rob", "sam", "tia"} {
			users[n] = apitest.Register(t, nodeA.URL(), apitest.Unique(n))
		}
		pat, qin, rob, sam, tia := users["pat"], users["qin"], users["rob"], users["sam"], users["tia"]
		callerWS := apitest.DialWS(t, nodeA.URL(), ann.Token)
		qinWS := apitest.DialWS(t, nodeB.URL(), qin.Token)
		samWS := apitest.DialWS(t, nodeB.URL(), sam.Token)
		patA := apitest.DialWS(t, nodeA.URL(), pat.Token)
		robA, robB := apitest.DialWS(t, nodeA.URL(), rob.Token), apitest.DialWS(t, nodeB.URL(), rob.Token)
		tiaA := apitest.DialWS(t, nodeA.URL(), tia.Token)

		back := startCall(t, ann, pat, "voice")
		answer(t, pat, callerWS, back.CallID)
		c.tick(t, time.Second) // the job ends lost calls oldest first
		held := startCall(t, as(qin, nodeB), rob, "voice")
		answer(t, as(rob, nodeB), qinWS, held.CallID)
		c.tick(t, time.Second)
		gone := startCall(t, as(sam, nodeB), tia, "video")
		answer(t, tia, samWS, gone.CallID)

		// Node A marks each device as it sees its socket close, which
		// need not be the order the client closed them in: each mark is
		// waited for on its own.
		robA.Close()
		patA.Close()
		tiaA.Close()
		eventually(t, "node A to mark tia's device lost", 10*time.Second, func() bool {
			_, callee := calls.lost(t, gone.CallID)
			return callee != 0
		})
		eventually(t, "node A to mark pat's device, gone from every node, lost", 10*time.Second, func() bool {
			_, callee := calls.lost(t, back.CallID)
			return callee != 0
		})
		eventually(t, "node B, which holds rob's device, to clear node A's mark", 10*time.Second, func() bool {
			_, callee := calls.lost(t, held.CallID)
			return callee == 0
		})
		patB := apitest.DialWS(t, nodeB.URL(), pat.Token)
		eventually(t, "pat's device, back on node B, to be cleared", 10*time.Second, func() bool {
			_, callee := calls.lost(t, back.CallID)
			return callee == 0
		})

		c.elapse(t, 21*time.Second)
		e := eventOf(t, samWS.WaitEvent(t, "call_ended", gone.CallID))
		if e.Reason != "connection_lost" || e.Status != "ended" {
			t.Fatalf("call_ended = %+v", e)
		}
		for _, id := range []string{back.CallID, held.CallID} {
			if st := calls.state(t, id); st != "accepted" {
				t.Fatalf("call %s, whose device is connected on node B, is %s", id, st)
			}
		}
		as(ann, nodeB).Must(t, 200, "POST", "/api/calls/signal", map[string]any{"callId": back.CallID, "signal": "to-pat-on-b"})
		patB.WaitEvent(t, "call_signal", "to-pat-on-b")
		qin.Must(t, 200, "POST", "/api/calls/signal", map[string]any{"callId": held.CallID, "signal": "to-rob-on-b"})
		robB.WaitEvent(t, "call_signal", "to-rob-on-b")

		c.elapse(t, 21*time.Second)
		c.markers(t, tia, samWS, sam.UserID)
		if n := countEvents(samWS, "call_ended", gone.CallID); n != 1 {
			t.Fatalf("sam was told %d times that the call ended", n)
		}
		for _, id := range []string{back.CallID, held.CallID} {
			if st := calls.state(t, id); st != "accepted" {
				t.Fatalf("call %s, whose device is connected on node B, is %s", id, st)
			}
		}
		ann.Must(t, 200, "POST", "/api/calls/end", map[string]string{"callId": back.CallID})
		qin.Must(t, 200, "POST", "/api/calls/end", map[string]string{"callId": held.CallID})
	})

	// The caller's device drops on node B while the call rings: past the
	// grace period it fails, once, and the callee's sockets on node A stop
	// ringing.
	t.Run("FailedWhileRinging", func(t *testing.T) {
		uma, vic := apitest.Register(t, nodeB.URL(), apitest.Unique("uma")), apitest.Register(t, nodeA.URL(), apitest.Unique("vic"))
		umaWS, vicWS := apitest.DialWS(t, nodeB.URL(), uma.Token), apitest.DialWS(t, nodeA.URL(), vic.Token)
		call := startCall(t, as(uma, nodeB), vic, "voice")
		vicWS.WaitEvent(t, "call_incoming", call.CallID)
		umaWS.Close()
		eventually(t, "node B to mark uma's device lost", 10*time.Second, func() bool {
			caller, _ := calls.lost(t, call.CallID)
			return caller != 0
		})
		c.elapse(t, 21*time.Second)
		if e := eventOf(t, vicWS.WaitEvent(t, "call_ended", call.CallID)); e.Reason != "failed" || e.Status != "failed" {
			t.Fatalf("call_ended = %+v", e)
		}
		c.elapse(t, 21*time.Second)
		c.markers(t, uma, vicWS, vic.UserID)
		if n := countEvents(vicWS, "call_ended", call.CallID); n != 1 {
			t.Fatalf("vic was told %d times that the call failed", n)
		}
		if st := calls.state(t, call.CallID); st != "failed" {
			t.Fatalf("state %s", st)
		}
	})

	// A callee with no socket when the call starts (on node A) rings on
	// each socket that connects while it rings, on either node.
	t.Run("RingOnConnect", func(t *testing.T) {
		wes := apitest.Register(t, nodeA.URL(), apitest.Unique("wes"))
		call := startCall(t, ann, wes, "video")
		for _, n := range []*server.Server{nodeB, nodeA} {
			ws := apitest.DialWS(t, n.URL(), wes.Token)
			in := eventOf(t, ws.WaitEvent(t, "call_incoming", call.CallID))
			if in.CallerID != ann.UserID || in.Type != "video" || in.CreatedAt != call.CreatedAt {
				t.Fatalf("call_incoming on connecting to %s = %+v", n.URL(), in)
			}
		}
		ann.Must(t, 200, "POST", "/api/calls/end", map[string]string{"callId": call.CallID})
		late := apitest.DialWS(t, nodeB.URL(), wes.Token)
		c.markers(t, ann, late, wes.UserID)
		if n := countEvents(late, "call_incoming", call.CallID); n != 0 {
			t.Fatalf("a socket that connected after the call ended rang %d times", n)
		}
	})
}
