package server_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/jobs"
	"github.com/parley-chat/parley/server"
	"github.com/pion/turn/v4"
)

type callStarted struct{ CallID, Status, Type, CreatedAt string }

type callView struct {
	CallID, Type, Status, Reason, Direction, CallerID, ReceiverID, PeerID, CreatedAt string
	AnsweredAt, EndedAt                                                              *string
	Duration                                                                         int64
}

type callEventData struct {
	CallID, CallerID, ReceiverID, Type, Status, Reason, From, EndedBy, CreatedAt, EndedAt string
	Duration                                                                              int64
	Signal                                                                                json.RawMessage
}

// secondDevice signs c's user in again as another device.
func secondDevice(t *testing.T, c *apitest.Client, device string) *apitest.Client {
	t.Helper()
	d := apitest.NewClient(c.Base)
	var res struct{ Token, UserID string }
	d.Must(t, 200, "POST", "/api/auth/login", map[string]string{"username": c.Username, "password": "password-" + c.Username,
		"deviceId": device, "publicKey": "pk-" + device}).Decode(t, &res)
	d.Token, d.UserID, d.Username = res.Token, res.UserID, c.Username
	return d
}

func startCall(t *testing.T, from, to *apitest.Client, typ string) callStarted {
	t.Helper()
	var r callStarted
	from.Must(t, 200, "POST", "/api/calls/initiate", map[string]string{"receiverId": to.UserID, "type": typ}).Decode(t, &r)
	return r
}

func eventOf(t *testing.T, raw json.RawMessage) callEventData {
	t.Helper()
	var d callEventData
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// countEvents counts ws's events called name about callID.
func countEvents(ws *apitest.WS, name, callID string) int {
	n := 0
	for _, d := range ws.Events(name) {
		if strings.Contains(string(d), callID) {
			n++
		}
	}
	return n
}

// TestCalls drives API.md §9 on every database backend: the state table,
// signals, history and sync, with the server clock moved instead of
// waiting for the ring timeout.
func TestCalls(t *testing.T) {
	t.Parallel()
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			clock := jobs.NewFake(time.Now())
			dsn := testdb.DSN(t, backend)
			srv := apitest.MustStart(t, backend, func(c *server.Config) { c.Clock, c.DB = clock, dsn })
			testCalls(t, srv, clock, rawCalls(t, dsn))
		})
	}
}

// callsDB reads the calls table of a server's database, for what no
// client sees: when a call's device was marked lost.
type callsDB struct {
	db  *sql.DB
	arg string // the placeholder of the dialect
}

func rawCalls(t *testing.T, dsn string) *callsDB {
	arg := "?"
	if !strings.HasPrefix(dsn, "sqlite:") {
		arg = "$1"
	}
	return &callsDB{db: openRaw(t, dsn), arg: arg}
}

// lost returns the lost marks of a call's caller and callee devices in
// epoch milliseconds, 0 for none.
func (c *callsDB) lost(t *testing.T, callID string) (caller, callee int64) {
	t.Helper()
	if err := c.db.QueryRow(`SELECT caller_lost_at, callee_lost_at FROM calls WHERE id = `+c.arg, callID).Scan(&caller, &callee); err != nil {
		t.Fatalf("read the lost marks of %s: %v", callID, err)
	}
	return caller, callee
}

// state returns a call's stored state.
func (c *callsDB) state(t *testing.T, callID string) string {
	t.Helper()
	var s string
	if err := c.db.QueryRow(`SELECT state FROM calls WHERE id = `+c.arg, callID).Scan(&s); err != nil {
		t.Fatalf("read the state of %s: %v", callID, err)
	}
	return s
}

// answer accepts call on c's device and waits until the caller's socket
// heard it.
func answer(t *testing.T, c *apitest.Client, callerWS *apitest.WS, callID string) {
	t.Helper()
	c.Must(t, 200, "POST", "/api/calls/answer", map[string]any{"callId": callID, "answer": true})
	callerWS.WaitEvent(t, "call_accepted", callID)
}

// millisOf parses an event's time.
func millisOf(t *testing.T, s string) int64 {
	t.Helper()
	at, ok := parley.ParseTime(s)
	if !ok {
		t.Fatalf("bad time %q", s)
	}
	return at.UnixMilli()
}

func testCalls(t *testing.T, srv *server.Server, clock *jobs.Fake, calls *callsDB) {
	base := srv.URL()
	ann := apitest.Register(t, base, apitest.Unique("ann"))
	bob := apitest.Register(t, base, apitest.Unique("bob"))
	bob2 := secondDevice(t, bob, "bob-tablet")
	cat := apitest.Register(t, base, apitest.Unique("cat"))
	annWS := apitest.DialWS(t, base, ann.Token)
	bobWS := apitest.DialWS(t, base, bob.Token)
	bob2WS := apitest.DialWS(t, base, bob2.Token)
	catWS := apitest.DialWS(t, base, cat.Token)

	t.Run("AcceptSignalEnd", func(t *testing.T) {
		c := startCall(t, ann, bob, "video")
		if c.Status != "ringing" || c.Type != "video" || !strings.HasPrefix(c.CallID, "call_") {
			t.Fatalf("start = %+v", c)
		}
		for _, ws := range []*apitest.WS{bobWS, bob2WS} {
			in := eventOf(t, ws.WaitEvent(t, "call_incoming", c.CallID))
			if in.CallerID != ann.UserID || in.Type != "video" {
				t.Fatalf("call_incoming = %+v", in)
			}
		}
		// While it rings, ann's device signals every device of bob; bob
		// may not signal before answering.
		offer := map[string]any{"type": "offer", "sdp": "v=0 offer"}
		ann.Must(t, 200, "POST", "/api/calls/signal", map[string]any{"callId": c.CallID, "signal": offer})
		bobWS.WaitEvent(t, "call_signal", "v=0 offer")
		bob2WS.WaitEvent(t, "call_signal", "v=0 offer")
		bob.Must(t, 403, "POST", "/api/calls/signal", map[string]any{"callId": c.CallID, "signal": "early"})
		cat.Must(t, 404, "POST", "/api/calls/answer", map[string]any{"callId": c.CallID, "answer": true})
		ann.Must(t, 403, "POST", "/api/calls/answer", map[string]any{"callId": c.CallID, "answer": true})

		clock.Advance(44 * time.Second) // not yet missed
		var ans struct{ CallID, Status string }
		bob2.Must(t, 200, "POST", "/api/calls/answer", map[string]any{"callId": c.CallID, "answer": true}).Decode(t, &ans)
		if ans.Status != "call_accepted" {
			t.Fatalf("answer = %+v", ans)
		}
		r := bob.Must(t, 409, "POST", "/api/calls/answer", map[string]any{"callId": c.CallID, "answer": true})
		if !strings.Contains(r.Error.Message, "another device") {
			t.Fatalf("second answer: %+v", r.Error)
		}
		annWS.WaitEvent(t, "call_accepted", c.CallID)
		bob2WS.WaitEvent(t, "call_accepted", c.CallID)
		bobWS.WaitEvent(t, "call_answered_elsewhere", c.CallID)

		// Live: only the two devices of the call signal each other.
		ann.Must(t, 200, "POST", "/api/calls/signal", map[string]any{"callId": c.CallID, "signal": map[string]string{"candidate": "live-to-tablet"}})
		got := eventOf(t, bob2WS.WaitEvent(t, "call_signal", "live-to-tablet"))
		if got.From != ann.UserID || got.CallID != c.CallID {
			t.Fatalf("relayed signal = %+v", got)
		}
		ack := bob2WS.Call(t, "call_signal", map[string]any{"callId": c.CallID, "signal": map[string]string{"type": "answer", "sdp": "v=0 answer"}}, 1)
		if !strings.Contains(string(ack), `"success":true`) {
			t.Fatalf("call_signal ack = %s", ack)
		}
		if f := eventOf(t, annWS.WaitEvent(t, "call_signal", "v=0 answer")); f.From != bob.UserID {
			t.Fatalf("relayed answer = %+v", f)
		}
		bob.Must(t, 403, "POST", "/api/calls/signal", map[string]any{"callId": c.CallID, "signal": "from the phone"})
		if ack := bobWS.Call(t, "call_signal", map[string]any{"callId": c.CallID, "signal": "phone"}, 2); !strings.Contains(string(ack), "forbidden") {
			t.Fatalf("call_signal from the other device: ack %s", ack)
		}
		cat.Must(t, 404, "POST", "/api/calls/signal", map[string]any{"callId": c.CallID, "signal": "intruder"})
		big := strings.Repeat("x", 64<<10)
		ann.Must(t, 413, "POST", "/api/calls/signal", map[string]any{"callId": c.CallID, "signal": big})
		ann.Must(t, 400, "POST", "/api/calls/signal", map[string]any{"callId": c.CallID})

		clock.Advance(30 * time.Second) // live for 30 s; a live call is never missed
		var end struct {
			Status, Reason string
			Duration       int64
		}
		bob2.Must(t, 200, "POST", "/api/calls/end", map[string]string{"callId": c.CallID}).Decode(t, &end)
		if end.Status != "ended" || end.Reason != "hangup" || end.Duration != 30 {
			t.Fatalf("end = %+v", end)
		}
		for _, ws := range []*apitest.WS{annWS, bobWS, bob2WS} {
			e := eventOf(t, ws.WaitEvent(t, "call_ended", c.CallID))
			if e.Reason != "hangup" || e.Duration != 30 || e.EndedBy != bob.UserID {
				t.Fatalf("call_ended = %+v", e)
			}
		}
		// call_ended reached every socket after the signals: the signals
		// not meant for them would have come first.
		if n := countEvents(bobWS, "call_signal", "live-to-tablet"); n != 0 {
			t.Fatalf("bob's phone got the tablet's signal")
		}
		if n := countEvents(bobWS, "call_signal", "v=0 answer") + countEvents(bob2WS, "call_signal", "v=0 answer"); n != 0 {
			t.Fatalf("bob's devices got their own answer back")
		}
		if len(catWS.Events("call_signal")) != 0 || len(catWS.Events("call_incoming")) != 0 {
			t.Fatalf("a non-party got call events: %v", catWS.Frames())
		}
		ann.Must(t, 409, "POST", "/api/calls/signal", map[string]any{"callId": c.CallID, "signal": "late"})
		ann.Must(t, 409, "POST", "/api/calls/end", map[string]string{"callId": c.CallID})

		var hist []callView
		ann.Must(t, 200, "GET", "/api/calls/history", nil).Decode(t, &hist)
		if len(hist) == 0 || hist[0].CallID != c.CallID || hist[0].Status != "ended" || hist[0].Direction != "outgoing" ||
			hist[0].PeerID != bob.UserID || hist[0].Duration != 30 || hist[0].AnsweredAt == nil {
			t.Fatalf("ann's history = %+v", hist)
		}
		bob.Must(t, 200, "GET", "/api/calls/history?limit=1", nil).Decode(t, &hist)
		if len(hist) != 1 || hist[0].Direction != "incoming" || hist[0].PeerID != ann.UserID {
			t.Fatalf("bob's history = %+v", hist)
		}
		var sync struct {
			Items []struct {
				Event string
				Data  json.RawMessage
			}
		}
		bob.Must(t, 200, "GET", "/api/sync?cursor=0&limit=200", nil).Decode(t, &sync)
		var seen []string
		for _, it := range sync.Items {
			if strings.Contains(string(it.Data), c.CallID) {
				seen = append(seen, it.Event)
			}
		}
		if strings.Join(seen, ",") != "call_incoming,call_accepted,call_ended" {
			t.Fatalf("bob's sync of the call: %v", seen)
		}
	})

	t.Run("Reject", func(t *testing.T) {
		c := startCall(t, ann, bob, "voice")
		var ans struct{ Status string }
		bob.Must(t, 200, "POST", "/api/calls/answer", map[string]any{"callId": c.CallID, "answer": false}).Decode(t, &ans)
		if ans.Status != "call_rejected" {
			t.Fatalf("answer = %+v", ans)
		}
		for _, ws := range []*apitest.WS{annWS, bobWS, bob2WS} {
			if e := eventOf(t, ws.WaitEvent(t, "call_rejected", c.CallID)); e.Reason != "rejected" || e.Status != "rejected" {
				t.Fatalf("call_rejected = %+v", e)
			}
		}
		bob2.Must(t, 409, "POST", "/api/calls/answer", map[string]any{"callId": c.CallID, "answer": true})
		ann.Must(t, 409, "POST", "/api/calls/signal", map[string]any{"callId": c.CallID, "signal": "after"})
	})

	t.Run("Cancel", func(t *testing.T) {
		c := startCall(t, ann, bob, "voice")
		var end struct{ Status, Reason string }
		ann.Must(t, 200, "POST", "/api/calls/end", map[string]string{"callId": c.CallID}).Decode(t, &end)
		if end.Status != "canceled" || end.Reason != "canceled" {
			t.Fatalf("end = %+v", end)
		}
		for _, ws := range []*apitest.WS{annWS, bobWS, bob2WS} {
			if e := eventOf(t, ws.WaitEvent(t, "call_ended", c.CallID)); e.Reason != "canceled" || e.Duration != 0 {
				t.Fatalf("call_ended = %+v", e)
			}
		}
		bob.Must(t, 409, "POST", "/api/calls/answer", map[string]any{"callId": c.CallID, "answer": true})
	})

	t.Run("Missed", func(t *testing.T) {
		clock.Advance(time.Second) // history orders by time: after the calls before
		c := startCall(t, ann, bob, "voice")
		bobWS.WaitEvent(t, "call_incoming", c.CallID)
		clock.Advance(46 * time.Second)
		// The job may have been between runs as the clock moved: move it
		// on in small steps until the call was missed.
		advanceUntil(t, clock, time.Second, "the unanswered call to be missed", func() bool {
			return countEvents(annWS, "call_ended", c.CallID) > 0
		})
		for _, ws := range []*apitest.WS{annWS, bobWS, bob2WS} {
			if e := eventOf(t, ws.WaitEvent(t, "call_ended", c.CallID)); e.Reason != "missed" || e.Status != "missed" {
				t.Fatalf("call_ended = %+v", e)
			}
		}
		clock.Advance(46 * time.Second)
		bob.Must(t, 409, "POST", "/api/calls/answer", map[string]any{"callId": c.CallID, "answer": true})
		var hist []callView
		bob.Must(t, 200, "GET", "/api/calls/history?limit=5", nil).Decode(t, &hist)
		if hist[0].CallID != c.CallID || hist[0].Status != "missed" || hist[0].Duration != 0 {
			t.Fatalf("history = %+v", hist[0])
		}
		var sync struct {
			Items []struct {
				Event string
				Data  json.RawMessage
			}
		}
		ann.Must(t, 200, "GET", "/api/sync?cursor=0&limit=200", nil).Decode(t, &sync)
		ended := 0
		for _, it := range sync.Items {
			if it.Event == "call_ended" && strings.Contains(string(it.Data), c.CallID) {
				ended++
			}
		}
		if ended != 1 {
			t.Fatalf("the call was ended %d times in ann's sync log", ended)
		}
	})

	t.Run("Busy", func(t *testing.T) {
		live := startCall(t, ann, bob, "voice")
		bob.Must(t, 200, "POST", "/api/calls/answer", map[string]any{"callId": live.CallID, "answer": true})
		c := startCall(t, cat, bob, "video")
		if c.Status != "busy" {
			t.Fatalf("call to a callee in a call: %+v", c)
		}
		if e := eventOf(t, catWS.WaitEvent(t, "call_ended", c.CallID)); e.Reason != "busy" {
			t.Fatalf("call_ended = %+v", e)
		}
		// Calling the caller of a live call is busy too.
		if c2 := startCall(t, cat, ann, "voice"); c2.Status != "busy" {
			t.Fatalf("call to a caller in a call: %+v", c2)
		}
		ann.Must(t, 200, "POST", "/api/calls/end", map[string]string{"callId": live.CallID})
		bobWS.WaitEvent(t, "call_ended", live.CallID)
		if countEvents(bobWS, "call_incoming", c.CallID) != 0 {
			t.Fatal("a busy callee was rung")
		}
		c3 := startCall(t, cat, bob, "voice")
		if c3.Status != "ringing" {
			t.Fatalf("call once the other ended: %+v", c3)
		}
		cat.Must(t, 200, "POST", "/api/calls/end", map[string]string{"callId": c3.CallID})
	})

	t.Run("ErrBlocked", func(t *testing.T) {
		dan := apitest.Register(t, base, apitest.Unique("dan"))
		dan.Must(t, 200, "POST", "/api/users/block", map[string]string{"blockedUserId": cat.UserID})
		r := cat.Must(t, 403, "POST", "/api/calls/initiate", map[string]string{"receiverId": dan.UserID, "type": "voice"})
		if r.Error.Code != "blocked" {
			t.Fatalf("code = %s", r.Error.Code)
		}
		if r := dan.Must(t, 403, "POST", "/api/calls/initiate", map[string]string{"receiverId": cat.UserID, "type": "voice"}); r.Error.Code != "blocked" {
			t.Fatalf("code = %s", r.Error.Code)
		}
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		ann.Must(t, 400, "POST", "/api/calls/initiate", map[string]string{"receiverId": bob.UserID, "type": "fax"})
		ann.Must(t, 400, "POST", "/api/calls/initiate", map[string]string{"receiverId": ann.UserID, "type": "voice"})
		ann.Must(t, 400, "POST", "/api/calls/initiate", map[string]string{"type": "voice"})
		ann.Must(t, 404, "POST", "/api/calls/initiate", map[string]string{"receiverId": "usr_nobody", "type": "voice"})
		ann.Must(t, 403, "POST", "/api/calls/initiate", map[string]string{"callerId": bob.UserID, "receiverId": cat.UserID, "type": "voice"})
		ann.Must(t, 404, "POST", "/api/calls/end", map[string]string{"callId": "call_nope"})
		ann.Must(t, 400, "POST", "/api/calls/answer", map[string]any{"callId": "call_nope"})
		ann.Must(t, 400, "GET", "/api/calls/history?before=yesterday", nil)
		var ice []any
		if ann.Must(t, 200, "GET", "/api/calls/ice-servers", nil).Decode(t, &ice); len(ice) != 0 {
			t.Fatalf("ice servers with none configured: %v", ice)
		}
	})

	t.Run("Seed001", func(t *testing.T) {
		var c callStarted
		ann.Must(t, 200, "POST", "/api/calls/voice/initiate", map[string]string{"caller_id": ann.UserID, "receiver_id": bob.UserID}).Decode(t, &c)
		if c.Status != "call_initiated" || c.Type != "voice" {
			t.Fatalf("voice/initiate = %+v", c)
		}
		ann.Must(t, 403, "POST", "/api/calls/voice/answer", map[string]any{"caller_id": ann.UserID, "receiver_id": bob.UserID, "answer": true})
		var ans struct{ CallID, Status string }
		bob.Must(t, 200, "POST", "/api/calls/voice/answer", map[string]any{"caller_id": ann.UserID, "receiver_id": bob.UserID, "answer": true}).Decode(t, &ans)
		if ans.Status != "call_accepted" || ans.CallID != c.CallID {
			t.Fatalf("voice/answer = %+v", ans)
		}
		bob.Must(t, 200, "POST", "/api/calls/end", map[string]string{"callId": c.CallID})

		ann.Must(t, 200, "POST", "/api/calls/video/initiate", map[string]string{"receiver_id": cat.UserID}).Decode(t, &c)
		if c.Status != "video_call_initiated" || c.Type != "video" {
			t.Fatalf("video/initiate = %+v", c)
		}
		ann.Must(t, 400, "POST", "/api/calls/video/initiate", map[string]string{"receiver_id": cat.UserID, "type": "voice"})
		ann.Must(t, 403, "POST", "/api/calls/voice/initiate", map[string]string{"caller_id": bob.UserID, "receiver_id": cat.UserID})
		cat.Must(t, 200, "POST", "/api/calls/video/answer", map[string]any{"call_id": c.CallID, "answer": true}).Decode(t, &ans)
		if ans.Status != "video_call_accepted" {
			t.Fatalf("video/answer = %+v", ans)
		}
		cat.Must(t, 200, "POST", "/api/calls/end", map[string]string{"callId": c.CallID})
	})

	// A device of a live call loses its socket: within the grace period
	// it reconnects and the call goes on; past it the call ends with
	// reason connection_lost, once.
	t.Run("ConnectionLost", func(t *testing.T) {
		eve, fay := apitest.Register(t, base, apitest.Unique("eve")), apitest.Register(t, base, apitest.Unique("fay"))
		gus, hal := apitest.Register(t, base, apitest.Unique("gus")), apitest.Register(t, base, apitest.Unique("hal"))
		eveWS, fayWS := apitest.DialWS(t, base, eve.Token), apitest.DialWS(t, base, fay.Token)
		gusWS, halWS := apitest.DialWS(t, base, gus.Token), apitest.DialWS(t, base, hal.Token)

		// kept starts first: the job ends lost calls oldest first, so once
		// lost is over, a run that would have ended kept is over too.
		kept := startCall(t, gus, hal, "voice")
		answer(t, hal, gusWS, kept.CallID)
		clock.Advance(time.Second)
		lost := startCall(t, eve, fay, "video")
		answer(t, fay, eveWS, lost.CallID)

		halWS.Close()
		fayWS.Close()
		waitUntil(t, "the dropped devices to be marked lost", func() bool {
			_, k := calls.lost(t, kept.CallID)
			_, l := calls.lost(t, lost.CallID)
			return k != 0 && l != 0
		})
		_, lostAt := calls.lost(t, lost.CallID)
		if caller, _ := calls.lost(t, lost.CallID); caller != 0 {
			t.Fatal("the caller's device, still connected, was marked lost")
		}
		halWS = apitest.DialWS(t, base, hal.Token) // the same device, back in time
		waitUntil(t, "the reconnected device's mark to be cleared", func() bool {
			_, k := calls.lost(t, kept.CallID)
			return k == 0
		})

		clock.Advance(19 * time.Second)
		advanceUntil(t, clock, time.Second, "the call whose device stayed away to end", func() bool {
			return countEvents(eveWS, "call_ended", lost.CallID) > 0
		})
		e := eventOf(t, eveWS.WaitEvent(t, "call_ended", lost.CallID))
		if e.Reason != "connection_lost" || e.Status != "ended" {
			t.Fatalf("call_ended = %+v", e)
		}
		if waited := millisOf(t, e.EndedAt) - lostAt; waited < 20_000 {
			t.Fatalf("the call ended %d ms after its device was lost, before the 20 s grace", waited)
		}
		if e.Duration < 20 {
			t.Fatalf("duration %d s: the call was live for at least the grace period", e.Duration)
		}
		if st := calls.state(t, kept.CallID); st != "accepted" {
			t.Fatalf("the call whose device reconnected in time is %s", st)
		}
		gus.Must(t, 200, "POST", "/api/calls/signal", map[string]any{"callId": kept.CallID, "signal": "after-reconnect"})
		halWS.WaitEvent(t, "call_signal", "after-reconnect")

		clock.Advance(30 * time.Second)
		var hist []callView
		fay.Must(t, 200, "GET", "/api/calls/history?limit=1", nil).Decode(t, &hist)
		if len(hist) != 1 || hist[0].CallID != lost.CallID || hist[0].Status != "ended" || hist[0].Reason != "connection_lost" {
			t.Fatalf("fay's history = %+v", hist)
		}
		var sync struct {
			Items []struct {
				Event string
				Data  json.RawMessage
			}
		}
		eve.Must(t, 200, "GET", "/api/sync?cursor=0&limit=200", nil).Decode(t, &sync)
		ended := 0
		for _, it := range sync.Items {
			if it.Event == "call_ended" && strings.Contains(string(it.Data), lost.CallID) {
				ended++
			}
		}
		if ended != 1 {
			t.Fatalf("the lost call was ended %d times in eve's sync log", ended)
		}
		gus.Must(t, 200, "POST", "/api/calls/end", map[string]string{"callId": kept.CallID})
		halWS.WaitEvent(t, "call_ended", kept.CallID)
	})

	// A party with no socket anywhere (here one that never had one, as
	// after a node died or restarted) is lost too: a live call ends past
	// the grace period.
	t.Run("OfflineParty", func(t *testing.T) {
		mia, ned := apitest.Register(t, base, apitest.Unique("mia")), apitest.Register(t, base, apitest.Unique("ned"))
		miaWS := apitest.DialWS(t, base, mia.Token)
		c := startCall(t, mia, ned, "voice")
		answer(t, ned, miaWS, c.CallID)
		advanceUntil(t, clock, time.Second, "the job to mark the offline callee lost", func() bool {
			_, callee := calls.lost(t, c.CallID)
			return callee != 0
		})
		if caller, _ := calls.lost(t, c.CallID); caller != 0 {
			t.Fatal("the caller, online, was marked lost")
		}
		_, lostAt := calls.lost(t, c.CallID)
		clock.Advance(19 * time.Second)
		advanceUntil(t, clock, time.Second, "the call of the offline callee to end", func() bool {
			return countEvents(miaWS, "call_ended", c.CallID) > 0
		})
		e := eventOf(t, miaWS.WaitEvent(t, "call_ended", c.CallID))
		if e.Reason != "connection_lost" || e.Status != "ended" {
			t.Fatalf("call_ended = %+v", e)
		}
		if waited := millisOf(t, e.EndedAt) - lostAt; waited < 20_000 {
			t.Fatalf("the call ended %d ms after its callee was marked lost, before the 20 s grace", waited)
		}
	})

	// The caller's device loses its socket while the call rings: past the
	// grace period the call fails, and the callee's ringing stops.
	t.Run("FailedWhileRinging", func(t *testing.T) {
		ivy, jon := apitest.Register(t, base, apitest.Unique("ivy")), apitest.Register(t, base, apitest.Unique("jon"))
		ivyWS, jonWS := apitest.DialWS(t, base, ivy.Token), apitest.DialWS(t, base, jon.Token)
		c := startCall(t, ivy, jon, "voice")
		jonWS.WaitEvent(t, "call_incoming", c.CallID)
		ivyWS.Close()
		waitUntil(t, "the caller's device to be marked lost", func() bool {
			caller, _ := calls.lost(t, c.CallID)
			return caller != 0
		})
		lostAt, _ := calls.lost(t, c.CallID)
		clock.Advance(19 * time.Second)
		advanceUntil(t, clock, time.Second, "the ringing call to fail", func() bool {
			return countEvents(jonWS, "call_ended", c.CallID) > 0
		})
		e := eventOf(t, jonWS.WaitEvent(t, "call_ended", c.CallID))
		if e.Reason != "failed" || e.Status != "failed" || e.Duration != 0 {
			t.Fatalf("call_ended = %+v", e)
		}
		if waited := millisOf(t, e.EndedAt) - lostAt; waited < 20_000 {
			t.Fatalf("the call failed %d ms after its caller's device was lost, before the 20 s grace", waited)
		}
		jon.Must(t, 409, "POST", "/api/calls/answer", map[string]any{"callId": c.CallID, "answer": true})
		var hist []callView
		ivy.Must(t, 200, "GET", "/api/calls/history?limit=1", nil).Decode(t, &hist)
		if len(hist) != 1 || hist[0].CallID != c.CallID || hist[0].Status != "failed" || hist[0].Reason != "failed" {
			t.Fatalf("ivy's history = %+v", hist)
		}
	})

	// A callee with no socket when the call starts rings as soon as one
	// connects; a socket that connects once it stopped ringing does not.
	t.Run("RingOnConnect", func(t *testing.T) {
		kay, leo := apitest.Register(t, base, apitest.Unique("kay")), apitest.Register(t, base, apitest.Unique("leo"))
		kayWS := apitest.DialWS(t, base, kay.Token)
		c := startCall(t, kay, leo, "video")
		clock.Advance(10 * time.Second)
		leoWS := apitest.DialWS(t, base, leo.Token)
		in := eventOf(t, leoWS.WaitEvent(t, "call_incoming", c.CallID))
		if in.CallerID != kay.UserID || in.Type != "video" || in.CreatedAt != c.CreatedAt {
			t.Fatalf("call_incoming on connect = %+v, call %+v", in, c)
		}
		answer(t, leo, kayWS, c.CallID)
		laptop := secondDevice(t, leo, "leo-laptop")
		laptopWS := apitest.DialWS(t, base, laptop.Token)
		var m struct{ MessageID string }
		kay.Must(t, 201, "POST", "/api/messages/send", map[string]any{"recipientId": leo.UserID, "encryptedContent": "marker", "type": "text"}).Decode(t, &m)
		laptopWS.WaitEvent(t, "new_message", m.MessageID)
		if n := countEvents(laptopWS, "call_incoming", c.CallID); n != 0 {
			t.Fatalf("a socket that connected after the call was answered rang %d times", n)
		}
		if n := countEvents(leoWS, "call_incoming", c.CallID); n != 1 {
			t.Fatalf("the socket that connected while it rang got call_incoming %d times", n)
		}
		kay.Must(t, 200, "POST", "/api/calls/end", map[string]string{"callId": c.CallID})
	})
}

// allocate asks the TURN server at addr for a relay with the given
// credential and returns the relay's address.
func allocate(t *testing.T, addr, username, password string) (net.Addr, func(), error) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	client, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: addr, STUNServerAddr: addr, Username: username, Password: password,
		Realm: "parley", Conn: conn, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Listen(); err != nil {
		t.Fatal(err)
	}
	closeAll := func() { client.Close(); conn.Close() }
	relay, err := client.Allocate()
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return relay.LocalAddr(), func() { relay.Close(); closeAll() }, nil
}

// TestCallICEServers checks the TURN REST API credentials handed out and
// that the embedded TURN server admits them, and only them, until they
// expire, up to the per-user quota.
func TestCallICEServers(t *testing.T) {
	clock := jobs.NewFake(time.Now())
	const secret = "shared-turn-secret"
	srv := apitest.MustStart(t, testdb.Backends[0], func(c *server.Config) {
		c.Clock, c.TURNAddr, c.TURNSecret, c.TURNQuota = clock, "127.0.0.1:0", secret, 1
	})
	ann := apitest.Register(t, srv.URL(), apitest.Unique("ann"))
	var ice []struct {
		URLs                 []string
		Username, Credential string
	}
	ann.Must(t, 200, "GET", "/api/calls/ice-servers", nil).Decode(t, &ice)
	if len(ice) != 2 || len(ice[0].URLs) != 1 || !strings.HasPrefix(ice[0].URLs[0], "stun:127.0.0.1:") || ice[0].Username != "" ||
		len(ice[1].URLs) != 1 || !strings.HasPrefix(ice[1].URLs[0], "turn:127.0.0.1:") {
		t.Fatalf("ice servers = %+v", ice)
	}
	turnSrv := ice[1]
	exp, user, _ := strings.Cut(turnSrv.Username, ":")
	if sec, err := strconv.ParseInt(exp, 10, 64); err != nil || user != ann.UserID ||
		time.Unix(sec, 0).Sub(clock.Now()) < 59*time.Minute || time.Unix(sec, 0).Sub(clock.Now()) > time.Hour {
		t.Fatalf("username %q: want expiry in an hour, then the user id", turnSrv.Username)
	}
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(turnSrv.Username))
	if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); turnSrv.Credential != want {
		t.Fatalf("credential %q, want %q", turnSrv.Credential, want)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(turnSrv.URLs[0], "turn:"), "?transport=udp")

	t.Run("OK", func(t *testing.T) {
		relay, release, err := allocate(t, addr, turnSrv.Username, turnSrv.Credential)
		if err != nil {
			t.Fatalf("allocate: %v", err)
		}
		if !strings.HasPrefix(relay.String(), "127.0.0.1:") {
			t.Fatalf("relay address %s", relay)
		}
		if _, _, err := allocate(t, addr, turnSrv.Username, turnSrv.Credential); err == nil {
			t.Fatal("a second relay past the quota of 1 was allocated")
		}
		release()
	})
	t.Run("ErrWrongCredential", func(t *testing.T) {
		if _, _, err := allocate(t, addr, turnSrv.Username, "d3Jvbmc="); err == nil {
			t.Fatal("allocated with a wrong credential")
		}
		other := strings.Replace(turnSrv.Username, ann.UserID, "usr_someoneelse", 1)
		if _, _, err := allocate(t, addr, other, turnSrv.Credential); err == nil {
			t.Fatal("allocated with another user's name")
		}
	})
	t.Run("ErrExpired", func(t *testing.T) {
		clock.Advance(61 * time.Minute)
		if _, _, err := allocate(t, addr, turnSrv.Username, turnSrv.Credential); err == nil {
			t.Fatal("allocated with an expired credential")
		}
	})
}
