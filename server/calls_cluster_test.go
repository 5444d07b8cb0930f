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
// wins), a signal crosses to the winning device's node, and a call nobody
// answers is missed once although both nodes run the job.
func TestCallsCluster(t *testing.T) {
	dsn := testdb.DSN(t, "postgres")
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
}
