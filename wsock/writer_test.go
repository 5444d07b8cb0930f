package wsock_test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/parley-chat/parley/wsock"
)

// gateConn counts the writes on a server connection and, once gated,
// holds the next write (only that one) until the test opens the gate: a
// barrier that lets frames pile up behind the writer.
type gateConn struct {
	net.Conn
	writes atomic.Int64
	gated  atomic.Bool
	held   chan struct{} // closed when a write is being held
	open   chan struct{} // closed by the test to let it go
}

func (g *gateConn) Write(b []byte) (int, error) {
	if g.gated.CompareAndSwap(true, false) {
		close(g.held)
		<-g.open
	}
	g.writes.Add(1)
	return g.Conn.Write(b)
}

// wrapListener hands every accepted connection to wrap, which returns what
// the server uses instead (and may keep it for the test).
type wrapListener struct {
	net.Listener
	wrap func(net.Conn) net.Conn
}

func (l wrapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wrap(c), nil
}

// recorder is a client that records the messages it reads, in order.
type recorder struct {
	gws.BuiltinEventHandler
	mu     sync.Mutex
	got    []string
	closed chan struct{}
	code   atomic.Int64 // close code received
	more   chan struct{}
}

func newRecorder() *recorder {
	return &recorder{closed: make(chan struct{}), more: make(chan struct{}, 1)}
}

func (r *recorder) OnMessage(_ *gws.Conn, m *gws.Message) {
	r.mu.Lock()
	r.got = append(r.got, string(m.Bytes()))
	r.mu.Unlock()
	m.Close()
	select {
	case r.more <- struct{}{}:
	default:
	}
}

func (r *recorder) OnClose(_ *gws.Conn, err error) {
	if ce, ok := err.(*gws.CloseError); ok {
		r.code.Store(int64(ce.Code))
	}
	close(r.closed)
}

func (r *recorder) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		got := append([]string(nil), r.got...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("received %d of %d messages", len(got), n)
		}
	}
}

// serveGated starts a server whose connections are gateConns and returns
// the server-side Conn and its gateConn once a client (h) is connected.
func serveGated(t *testing.T, opts wsock.Options, h gws.Event) (*wsock.Conn, *gateConn) {
	t.Helper()
	conns := make(chan *wsock.Conn, 1)
	up := wsock.NewUpgrader(opts)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := up.Upgrade(w, r, nil); err == nil {
			conns <- c
		}
	}))
	gates := make(chan *gateConn, 1)
	ts.Listener = wrapListener{Listener: ts.Listener, wrap: func(c net.Conn) net.Conn {
		g := &gateConn{Conn: c, held: make(chan struct{}), open: make(chan struct{})}
		gates <- g
		return g
	}}
	ts.Start()
	t.Cleanup(ts.Close)
	client, _ := dial(t, "ws"+strings.TrimPrefix(ts.URL, "http"), "", h)
	go client.ReadLoop()
	g := <-gates
	return <-conns, g
}

// TestSendCoalesced checks that frames queued while a write is in progress
// go out together, in one write, in order.
func TestSendCoalesced(t *testing.T) {
	rec := newRecorder()
	c, g := serveGated(t, wsock.Options{}, rec)
	g.gated.Store(true)
	c.Start()
	c.Send(wsock.Text, []byte("m0"))
	<-g.held // the writer is inside its first write, holding m0
	before := g.writes.Load()
	const n = 100
	shared := wsock.NewMessage(false, 2)
	copy(shared.Data, "sh")
	for i := 1; i < n; i++ {
		if i%10 == 0 {
			if !c.SendMessages(shared) {
				t.Fatalf("SendMessages %d refused", i)
			}
			continue
		}
		if !c.Send(wsock.Text, []byte(fmt.Sprintf("m%d", i))) {
			t.Fatalf("Send %d refused", i)
		}
	}
	close(g.open)
	got := rec.waitFor(t, n)
	for i, m := range got {
		want := fmt.Sprintf("m%d", i)
		if i%10 == 0 && i > 0 {
			want = "sh"
		}
		if m != want {
			t.Fatalf("message %d is %q, want %q", i, m, want)
		}
	}
	// The held write (m0), then one for the 99 queued behind it.
	if w := g.writes.Load() - before; w != 2 {
		t.Fatalf("%d writes for %d messages, want 2", w, n)
	}
}

// TestCloseAfterQueued checks that Close writes what was queued, then a
// normal close frame, and refuses later sends.
func TestCloseAfterQueued(t *testing.T) {
	rec := newRecorder()
	c, g := serveGated(t, wsock.Options{}, rec)
	g.gated.Store(true)
	c.Start()
	c.Send(wsock.Text, []byte("a"))
	<-g.held
	c.Send(wsock.Binary, []byte("b"))
	c.Close()
	if c.Send(wsock.Text, []byte("late")) {
		t.Fatal("Send after Close returned true")
	}
	close(g.open)
	select {
	case <-rec.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("client never saw the close")
	}
	if got := rec.waitFor(t, 2); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("got %q, want [a b]", got)
	}
	if code := rec.code.Load(); code != 1000 {
		t.Fatalf("close code %d, want 1000", code)
	}
}

// TestBudgetReturned checks that bytes queued on a connection that dies
// with a full queue are given back to the shared budget.
func TestBudgetReturned(t *testing.T) {
	budget := wsock.NewBudget(1 << 20)
	closed := make(chan error, 1)
	rec := newRecorder()
	c, g := serveGated(t, wsock.Options{Budget: budget, QueueSize: 16,
		OnClose: func(_ *wsock.Conn, err error) { closed <- err }}, rec)
	g.gated.Store(true)
	c.Start()
	payload := bytes.Repeat([]byte("x"), 1000)
	c.Send(wsock.Text, payload)
	<-g.held
	for c.Send(wsock.Text, payload) {
	}
	if err := <-closed; err != wsock.ErrQueueFull {
		t.Fatalf("closed with %v, want ErrQueueFull", err)
	}
	close(g.open) // the held write fails on the closed socket
	deadline := time.Now().Add(10 * time.Second)
	for budget.Used() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("budget still holds %d bytes", budget.Used())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSendPreparedAllocs checks that queuing a prepared message (what a
// fan-out does for every socket) allocates nothing.
func TestSendPreparedAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	rec := newRecorder()
	c, g := serveGated(t, wsock.Options{QueueSize: 1 << 20}, rec)
	g.gated.Store(true)
	c.Start()
	m := wsock.NewMessage(false, 300)
	c.SendMessages(m)
	<-g.held // the writer is busy: everything below only queues
	for range 2000 {
		c.SendMessages(m) // grow the queue first
	}
	allocs := testing.AllocsPerRun(1000, func() { c.SendMessages(m) })
	close(g.open)
	// Growing the queue's slice is amortised over many sends; one
	// allocation per send (framing or copying the message) would show as
	// 1.0.
	if allocs >= 0.05 {
		t.Fatalf("%.2f allocations per prepared send, want 0", allocs)
	}
	rec.waitFor(t, 1+2000+1001) // AllocsPerRun calls it once more to warm up
}

// bulk is a fan-out's message: one the Coalescer may hold.
func bulk(text string) wsock.Message {
	m := wsock.NewMessage(false, len(text))
	copy(m.Data, text)
	m.Bulk = true
	return m
}

// TestCoalescer checks that a busy connection that just wrote waits (the
// Coalescer's sleep, held by the test) when only bulk messages are queued,
// and then sends everything queued meanwhile in one write, in order; that
// a message that is not bulk ends the wait at once and carries the bulk
// ones with it; and that nothing waits while fewer connections than Busy
// have something to write.
func TestCoalescer(t *testing.T) {
	// held replaces co's sleep: each wait is reported on asleep and lasts
	// until the test closes release or the writer is woken.
	held := func(co *wsock.Coalescer) (asleep chan time.Duration, woken chan bool, release chan struct{}) {
		asleep, woken, release = make(chan time.Duration, 1), make(chan bool, 1), make(chan struct{})
		wsock.SetCoalescerSleep(co, func(d time.Duration, wake <-chan struct{}) {
			asleep <- d
			select {
			case <-release:
				woken <- false
			case <-wake:
				woken <- true
			}
		})
		return asleep, woken, release
	}
	waits := func(t *testing.T, asleep chan time.Duration) {
		t.Helper()
		select {
		case d := <-asleep:
			if d <= 0 || d > time.Hour {
				t.Fatalf("writer waits %v, want up to an hour", d)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the writer of a busy connection that just wrote did not wait")
		}
	}
	// ended reports whether the writer's wait ended by a wake (true) or
	// by the test's release (false), failing after 10 s instead of
	// hanging until the test binary's timeout.
	ended := func(t *testing.T, woken chan bool) bool {
		t.Helper()
		select {
		case w := <-woken:
			return w
		case <-time.After(10 * time.Second):
			t.Fatal("the writer's wait never ended")
			return false
		}
	}
	t.Run("Busy", func(t *testing.T) {
		co := wsock.NewCoalescer(time.Hour, 1) // this connection's writer alone makes it busy
		asleep, woken, release := held(co)
		rec := newRecorder()
		c, g := serveGated(t, wsock.Options{Coalescer: co}, rec)
		c.Start()
		c.SendMessages(bulk("m0")) // never wrote before: at once
		rec.waitFor(t, 1)
		before := g.writes.Load()
		c.SendMessages(bulk("m1"))
		waits(t, asleep)
		const n = 50
		for i := 2; i < n; i++ {
			if !c.SendMessages(bulk(fmt.Sprintf("m%d", i))) {
				t.Fatalf("Send %d refused", i)
			}
		}
		close(release)
		if ended(t, woken) {
			t.Fatal("bulk messages ended the wait")
		}
		got := rec.waitFor(t, n)
		for i, m := range got {
			if want := fmt.Sprintf("m%d", i); m != want {
				t.Fatalf("message %d is %q, want %q", i, m, want)
			}
		}
		if w := g.writes.Load() - before; w != 1 {
			t.Fatalf("%d writes for the %d messages queued while the writer waited, want 1", w, n-1)
		}
	})
	t.Run("Urgent", func(t *testing.T) {
		co := wsock.NewCoalescer(time.Hour, 1)
		asleep, woken, _ := held(co) // never released: only a wake ends a wait
		rec := newRecorder()
		c, g := serveGated(t, wsock.Options{Coalescer: co}, rec)
		c.Start()
		c.SendMessages(bulk("b0"))
		rec.waitFor(t, 1)
		before := g.writes.Load()
		c.SendMessages(bulk("b1"))
		waits(t, asleep)
		c.SendMessages(bulk("b2"))
		c.Send(wsock.Text, []byte("reply")) // not bulk: written now, with b1 and b2
		if !ended(t, woken) {
			t.Fatal("the wait was not ended by a message that is not bulk")
		}
		got := rec.waitFor(t, 4)
		if want := []string{"b0", "b1", "b2", "reply"}; !slices.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
		if w := g.writes.Load() - before; w != 1 {
			t.Fatalf("%d writes for the 3 messages queued during the wait, want 1", w)
		}
		// A message that is not bulk never waits, even right after a write.
		c.Send(wsock.Text, []byte("chat"))
		rec.waitFor(t, 5)
		select {
		case <-asleep:
			t.Fatal("a message that is not bulk waited")
		default:
		}
		// Close ends a wait too: the close frame follows at once.
		c.SendMessages(bulk("b3"))
		waits(t, asleep)
		c.Close()
		if !ended(t, woken) {
			t.Fatal("Close did not end the wait")
		}
		select {
		case <-rec.closed:
		case <-time.After(10 * time.Second):
			t.Fatal("no close frame")
		}
		if got := rec.waitFor(t, 6); got[5] != "b3" {
			t.Fatalf("last message %q, want b3 before the close frame", got[5])
		}
	})
	t.Run("Quiet", func(t *testing.T) {
		co := wsock.NewCoalescer(time.Hour, 2) // one connection is not busy enough
		wsock.SetCoalescerSleep(co, func(time.Duration, <-chan struct{}) { t.Error("a writer waited below the Busy threshold") })
		rec := newRecorder()
		c, g := serveGated(t, wsock.Options{Coalescer: co}, rec)
		c.Start()
		for i := 0; i < 5; i++ {
			c.SendMessages(bulk(fmt.Sprintf("m%d", i)))
			rec.waitFor(t, i+1)
		}
		if w := g.writes.Load(); w < 5 {
			t.Fatalf("%d writes for 5 messages sent one after the other's arrival", w)
		}
	})
	t.Run("Off", func(t *testing.T) {
		if wsock.NewCoalescer(0, 10) != nil {
			t.Fatal("a zero delay must turn coalescing off")
		}
	})
}

// deadlineConn records the write deadlines set on a server connection.
type deadlineConn struct {
	net.Conn
	mu  sync.Mutex
	set []time.Time
}

func (d *deadlineConn) SetWriteDeadline(t time.Time) error {
	d.mu.Lock()
	d.set = append(d.set, t)
	d.mu.Unlock()
	return d.Conn.SetWriteDeadline(t)
}

func (d *deadlineConn) deadlines() []time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.set)
}

// TestWriteDeadlineMovedAtHalf checks that the write deadline is set for
// the first write and then only once less than half of WriteTimeout is
// left, on a clock the test moves.
func TestWriteDeadlineMovedAtHalf(t *testing.T) {
	base := time.Now()
	var clock atomic.Int64 // offset from base
	wsock.SetWriteClock(t, func() time.Time { return base.Add(time.Duration(clock.Load())) })
	conns := make(chan *wsock.Conn, 1)
	up := wsock.NewUpgrader(wsock.Options{WriteTimeout: 10 * time.Second})
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := up.Upgrade(w, r, nil); err == nil {
			conns <- c
		}
	}))
	dcs := make(chan *deadlineConn, 1)
	ts.Listener = wrapListener{Listener: ts.Listener, wrap: func(c net.Conn) net.Conn {
		d := &deadlineConn{Conn: c}
		dcs <- d
		return d
	}}
	ts.Start()
	t.Cleanup(ts.Close)
	rec := newRecorder()
	client, _ := dial(t, "ws"+strings.TrimPrefix(ts.URL, "http"), "", rec)
	go client.ReadLoop()
	d := <-dcs
	c := <-conns
	c.Start()
	handshake := len(d.deadlines()) // the upgrade's own

	sent := 0
	send := func(at time.Duration) {
		clock.Store(int64(at))
		sent++
		if !c.Send(wsock.Text, []byte(fmt.Sprint(sent))) {
			t.Fatal("Send refused")
		}
		rec.waitFor(t, sent) // one batch per message: the next send starts a new one
	}
	send(0)
	for s := 1; s <= 5; s++ {
		send(time.Duration(s) * time.Second) // 5 s left at most: not moved
	}
	send(5*time.Second + time.Millisecond) // under half left: moved
	send(6 * time.Second)
	got := d.deadlines()[handshake:]
	want := []time.Time{base.Add(10 * time.Second), base.Add(15*time.Second + time.Millisecond)}
	if !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Fatalf("write deadlines %v, want %v (base %v)", got, want, base)
	}
}
