package natsbus_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/natstest"
	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/natsbus"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// recorder is a subscriber that keeps every event it gets.
type recorder struct {
	mu     sync.Mutex
	events []*parley.Event
}

func (r *recorder) add(ev *parley.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

// all returns the events received so far.
func (r *recorder) all() []*parley.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// count returns how many events named name it got.
func (r *recorder) count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.events {
		if ev.Name == name {
			n++
		}
	}
	return n
}

// wait returns the first event named name whose data is data, or fails.
func (r *recorder) wait(tb testing.TB, name, data string) *parley.Event {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, ev := range r.events {
			if ev.Name == name && string(ev.Data) == data {
				r.mu.Unlock()
				return ev
			}
		}
		r.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	tb.Fatalf("no %s event with data %s", name, data)
	return nil
}

func mustConnect(tb testing.TB, url string, opts natsbus.Options) (*natsbus.Bus, *recorder) {
	tb.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	b, err := natsbus.Connect(url, opts)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() { b.Close() })
	r := &recorder{}
	b.Subscribe(r.add)
	return b, r
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBus runs two nodes' buses against the shared NATS server.
func TestBus(t *testing.T) {
	url := testenv.NATSURL(t)
	prefix := "parleytest" + strings.TrimPrefix(parley.NewID("t"), "t_")
	a, ra := mustConnect(t, url, natsbus.Options{Name: "node-a", Prefix: prefix})
	b, rb := mustConnect(t, url, natsbus.Options{Name: "node-b", Prefix: prefix})
	other, rother := mustConnect(t, url, natsbus.Options{Name: "elsewhere", Prefix: prefix + "x"})
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		ev := &parley.Event{Name: "new_message", Data: []byte(`{"messageId":"msg_1"}`), To: []string{"usr_a", "usr_b"}}
		if err := a.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
		got := rb.wait(t, "new_message", `{"messageId":"msg_1"}`)
		if !slices.Equal(got.To, ev.To) {
			t.Fatalf("to = %q, want %q", got.To, ev.To)
		}
		// A round trip the other way: once it is back, an echo of the
		// first event would have arrived too.
		if err := b.Publish(ctx, &parley.Event{Name: "typing_indicator", Data: []byte(`{}`), To: []string{"usr_a"}}); err != nil {
			t.Fatal(err)
		}
		ra.wait(t, "typing_indicator", `{}`)
		if n := ra.count("new_message"); n != 1 {
			t.Fatalf("the publishing node got its own event %d times, want once", n)
		}
		if n := rb.count("typing_indicator"); n != 1 {
			t.Fatalf("node b got its own event %d times, want once", n)
		}
	})
	t.Run("OtherPrefixIsolated", func(t *testing.T) {
		if err := other.Publish(ctx, &parley.Event{Name: "presence_update", Data: []byte(`{"x":1}`), To: []string{"usr_c"}}); err != nil {
			t.Fatal(err)
		}
		rother.wait(t, "presence_update", `{"x":1}`)
		if err := a.Publish(ctx, &parley.Event{Name: "presence_update", Data: []byte(`{"x":2}`), To: []string{"usr_c"}}); err != nil {
			t.Fatal(err)
		}
		rb.wait(t, "presence_update", `{"x":2}`)
		if n := rb.count("presence_update"); n != 1 {
			t.Fatalf("node b got %d presence events, want only its cluster's one", n)
		}
		if n := rother.count("presence_update"); n != 1 {
			t.Fatalf("the other cluster got %d presence events, want only its own", n)
		}
	})
	// A post to a channel of 100,000 members names them all: more than a
	// NATS message holds. Every addressee arrives exactly once, with the data.
	t.Run("OKManyAddressees", func(t *testing.T) {
		to := make([]string, 100_000)
		for i := range to {
			to[i] = fmt.Sprintf("usr_%026d", i)
		}
		data := `{"messageId":"msg_many"}`
		if err := a.Publish(ctx, &parley.Event{Name: "new_channel_message", Data: []byte(data), To: to}); err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		waitFor(t, "every addressee", func() bool {
			rb.mu.Lock()
			defer rb.mu.Unlock()
			clear(got)
			for _, ev := range rb.events {
				if ev.Name == "new_channel_message" && string(ev.Data) == data {
					for _, id := range ev.To {
						got[id]++
					}
				}
			}
			return len(got) == len(to)
		})
		for _, id := range to {
			if got[id] != 1 {
				t.Fatalf("%s got the event %d times", id, got[id])
			}
		}
		if n := rb.count("new_channel_message"); n < 2 {
			t.Fatalf("%d messages carried 3 MB of addressees", n)
		}
	})
	t.Run("ErrCannotTravel", func(t *testing.T) {
		ra.mu.Lock()
		before := len(ra.events)
		ra.mu.Unlock()
		if err := a.Publish(ctx, &parley.Event{Name: "bad.name", Data: []byte(`{}`), To: []string{"usr_a"}}); err == nil {
			t.Fatal("an event name with a dot was accepted")
		}
		if err := a.Publish(ctx, &parley.Event{Name: "ok", Data: []byte(`{}`), To: []string{"usr_a,usr_b"}}); err == nil {
			t.Fatal("an addressee with a comma was accepted")
		}
		ra.mu.Lock()
		defer ra.mu.Unlock()
		if len(ra.events) != before {
			t.Fatal("a refused event was delivered locally")
		}
	})
}

// TestConnectRefused checks that a node fails to start, quickly and
// without printing the password, when no NATS server answers.
func TestConnectRefused(t *testing.T) {
	ns := natstest.Start(t)
	url := strings.Replace(ns.URL(), "nats://", "nats://ann:s3cret@", 1)
	ns.Stop()
	start := time.Now()
	_, err := natsbus.Connect(url, natsbus.Options{Logger: quiet})
	if err == nil {
		t.Fatal("connected to a stopped server")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error shows the password: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v to give up", d)
	}
}

// TestReconnect stops the NATS server for a while: publishing neither
// blocks nor fails while the buffer has room, this node's own subscribers
// still get its events, every node reconnects by itself and tells its
// subscribers events may have been missed, and delivery resumes.
func TestReconnect(t *testing.T) {
	ns := natstest.Start(t)
	a, ra := mustConnect(t, ns.URL(), natsbus.Options{Name: "a", ReconnectWait: 50 * time.Millisecond})
	b, rb := mustConnect(t, ns.URL(), natsbus.Options{Name: "b", ReconnectWait: 50 * time.Millisecond})
	ctx := context.Background()

	ns.Stop()
	waitFor(t, "both buses to notice", func() bool { return !a.Connected() && !b.Connected() })
	start := time.Now()
	for i := 0; i < 100; i++ {
		if err := a.Publish(ctx, &parley.Event{Name: "new_message", Data: []byte(`{"during":"outage"}`), To: []string{"usr_b"}}); err != nil {
			t.Fatalf("publish while disconnected: %v", err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("100 publishes while disconnected took %v", d)
	}
	if n := ra.count("new_message"); n != 100 {
		t.Fatalf("local subscribers got %d of 100 events during the outage", n)
	}
	time.Sleep(300 * time.Millisecond) // several failed reconnection attempts
	ns.Restart()
	waitFor(t, "both buses to reconnect", func() bool { return a.Connected() && b.Connected() })
	waitFor(t, "the gap event on both nodes", func() bool {
		return ra.count(parley.EventBusGap) >= 1 && rb.count(parley.EventBusGap) >= 1
	})
	if err := a.Publish(ctx, &parley.Event{Name: "new_message", Data: []byte(`{"after":"outage"}`), To: []string{"usr_b"}}); err != nil {
		t.Fatal(err)
	}
	rb.wait(t, "new_message", `{"after":"outage"}`)
}

// TestDroppedPublishesReachOthersAsGap overflows the reconnect buffer
// during an outage: Publish then fails fast instead of blocking, and once
// back the node tells every other node that its clients missed events.
func TestDroppedPublishesReachOthersAsGap(t *testing.T) {
	ns := natstest.Start(t)
	// b comes back within a few tens of milliseconds of the server; a
	// takes about a second, so b hears what a says on its return.
	a, _ := mustConnect(t, ns.URL(), natsbus.Options{Name: "a", ReconnectWait: 700 * time.Millisecond})
	b, rb := mustConnect(t, ns.URL(), natsbus.Options{Name: "b", ReconnectWait: 20 * time.Millisecond})
	ctx := context.Background()

	ns.Stop()
	waitFor(t, "a to notice", func() bool { return !a.Connected() })
	data := []byte(`"` + strings.Repeat("x", 64<<10) + `"`)
	failed := 0
	start := time.Now()
	for i := 0; i < 200 && failed == 0; i++ { // 200 × 64 KiB is beyond the 8 MiB buffer
		if err := a.Publish(ctx, &parley.Event{Name: "new_message", Data: data, To: []string{"usr_b"}}); err != nil {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("13 MiB of publishes fit in the reconnect buffer")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("publishing into a full buffer took %v", d)
	}
	ns.Restart()
	waitFor(t, "both buses to reconnect", func() bool { return a.Connected() && b.Connected() })
	// b's own gap, then a's.
	waitFor(t, "a's gap event at b", func() bool { return rb.count(parley.EventBusGap) >= 2 })
}

// TestSlowSubscriber blocks one node's subscriber: the publishing node is
// not slowed down, and the slow node drops events, counts them and, once
// its subscribers move again, names their addressees in a gap event.
func TestSlowSubscriber(t *testing.T) {
	ns := natstest.Start(t)
	a, _ := mustConnect(t, ns.URL(), natsbus.Options{Name: "a"})
	b, rb := mustConnect(t, ns.URL(), natsbus.Options{Name: "b"})
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock()
	b.Subscribe(func(ev *parley.Event) {
		if ev.Name == "new_message" {
			<-release
		}
	})
	ctx := context.Background()
	data := []byte(`"` + strings.Repeat("x", 8<<10) + `"`)
	start := time.Now()
	// 10,000 × 8 KiB is beyond the 64 MiB queued for subscribers.
	for i := 0; i < 10000; i++ {
		if err := a.Publish(ctx, &parley.Event{Name: "new_message", Data: data, To: []string{"usr_b"}}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("publishing to a stuck subscriber took %v", d)
	}
	waitFor(t, "the slow node to drop events", func() bool { return b.Stats().Dropped > 0 })
	unblock()
	waitFor(t, "the slow node's gap event", func() bool { return rb.count(parley.EventBusGap) >= 1 })
	for _, ev := range rb.all() {
		if ev.Name == parley.EventBusGap && !slices.Equal(ev.To, []string{"usr_b"}) {
			t.Fatalf("gap for %v, want the dropped events' addressee usr_b only", ev.To)
		}
	}
	if st := b.Stats(); st.Missing != 0 || st.ClientDropped != 0 {
		t.Fatalf("stats %+v: only drops of a full queue expected", st)
	}
}

// TestDropThenGap fills a one-event queue: the events that do not fit are
// dropped, and their addressees' gap reaches the subscribers after the
// event being delivered when they were dropped and before the queued one,
// so a client closed by it catches up on everything it missed.
func TestDropThenGap(t *testing.T) {
	ns := natstest.Start(t)
	a, _ := mustConnect(t, ns.URL(), natsbus.Options{Name: "a"})
	b, rb := mustConnect(t, ns.URL(), natsbus.Options{Name: "b", QueueLen: 1})
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock()
	b.Subscribe(func(ev *parley.Event) {
		if ev.Name == "new_message" && string(ev.Data) == `"1"` {
			close(entered)
			<-release
		}
	})
	ctx := context.Background()
	pub := func(n int, to ...string) {
		t.Helper()
		if err := a.Publish(ctx, &parley.Event{Name: "new_message", Data: fmt.Appendf(nil, `"%d"`, n), To: to}); err != nil {
			t.Fatal(err)
		}
	}
	pub(1, "usr_1")
	<-entered // b's worker is in the first event
	pub(2, "usr_2")
	waitFor(t, "the second event queued", func() bool { return b.Stats().Queued == 1 })
	pub(3, "usr_3", parley.DeviceAddress("usr_x", "dev1"))
	pub(4, "usr_4")
	waitFor(t, "two events dropped", func() bool { return b.Stats().Dropped == 2 })
	unblock()
	rb.wait(t, "new_message", `"2"`)
	var got []string
	for _, ev := range rb.all() {
		got = append(got, ev.Name+string(ev.Data)+fmt.Sprint(sorted(ev.To)))
	}
	want := []string{`new_message"1"[usr_1]`, `_bus_gap[usr_3 usr_4 usr_x]`, `new_message"2"[usr_2]`}
	if !slices.Equal(got, want) {
		t.Fatalf("events at b:\n%q\nwant\n%q", got, want)
	}
}

// TestSequenceGap sends numbered messages as another node would, one of
// them missing: the receiver cannot know whose it was and makes every
// socket resynchronise; unnumbered messages (older nodes) pass unchecked.
func TestSequenceGap(t *testing.T) {
	ns := natstest.Start(t)
	b, rb := mustConnect(t, ns.URL(), natsbus.Options{Name: "b"})
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	send := func(seq, data string) {
		t.Helper()
		m := &nats.Msg{Subject: "parley.ev.new_message", Data: []byte("usr_1\n" + data), Header: nats.Header{}}
		if seq != "" {
			m.Header.Set("Parley-Seq", seq)
		}
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	send("p1:1", `"a"`)
	send("p1:2", `"b"`)
	send("", `"old"`)
	send("p2:7", `"other publisher"`) // first heard of: no gap
	send("p1:4", `"d"`)               // p1:3 never came
	rb.wait(t, "new_message", `"d"`)
	waitFor(t, "the gap", func() bool { return rb.count(parley.EventBusGap) == 1 })
	for _, ev := range rb.all() {
		if ev.Name == parley.EventBusGap && len(ev.To) != 0 {
			t.Fatalf("gap for %v, want everyone", ev.To)
		}
	}
	if st := b.Stats(); st.Missing != 1 || st.Dropped != 0 {
		t.Fatalf("stats %+v, want one missing", st)
	}
	if n := rb.count("new_message"); n != 5 {
		t.Fatalf("%d events delivered, want 5", n)
	}
}

// TestSequenceAfterReconnect: messages a publisher sent while this node
// was away are covered by the resynchronisation of its reconnection; the
// jump in numbers they leave is not reported again afterwards (it closed
// the sockets clients had just opened to resynchronise).
func TestSequenceAfterReconnect(t *testing.T) {
	ns := natstest.Start(t)
	b, rb := mustConnect(t, ns.URL(), natsbus.Options{Name: "b", ReconnectWait: 50 * time.Millisecond})
	send := func(seq, data string) {
		t.Helper()
		nc, err := nats.Connect(ns.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		m := &nats.Msg{Subject: "parley.ev.new_message", Data: []byte("usr_1\n" + data), Header: nats.Header{}}
		m.Header.Set("Parley-Seq", seq)
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	send("p1:1", `"a"`)
	rb.wait(t, "new_message", `"a"`)
	ns.Stop()
	ns.Restart()
	waitFor(t, "the reconnection's resync", func() bool { return rb.count(parley.EventBusGap) == 1 })
	send("p1:5", `"e"`) // p1:2..4 went out while b was away
	send("p1:6", `"f"`)
	rb.wait(t, "new_message", `"f"`)
	if st := b.Stats(); st.Missing != 0 {
		t.Fatalf("stats %+v: the loss covered by the reconnection was reported again", st)
	}
	send("p1:8", `"h"`) // and a later jump is still one
	rb.wait(t, "new_message", `"h"`)
	if st := b.Stats(); st.Missing != 1 {
		t.Fatalf("stats %+v, want one missing after the reconnection", st)
	}
}

// TestPublishNumbers checks that a bus numbers what it publishes, so the
// others can see a gap.
func TestPublishNumbers(t *testing.T) {
	ns := natstest.Start(t)
	a, _ := mustConnect(t, ns.URL(), natsbus.Options{Name: "a"})
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("parley.ev.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// An event too big for one message travels as several, each numbered.
	to := make([]string, 0, 60_000)
	for i := range cap(to) {
		to = append(to, fmt.Sprintf("usr_%020d", i))
	}
	if err := a.Publish(context.Background(), &parley.Event{Name: "new_message", Data: []byte(`{}`), To: to}); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(context.Background(), &parley.Event{Name: "typing", Data: []byte(`{}`), To: to[:1]}); err != nil {
		t.Fatal(err)
	}
	var pub string
	for want := 1; ; want++ {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("message %d: %v", want, err)
		}
		v := m.Header.Get("Parley-Seq")
		i := strings.LastIndexByte(v, ':')
		if i <= 0 || (pub != "" && v[:i] != pub) || v[i+1:] != fmt.Sprint(want) {
			t.Fatalf("message %d numbered %q", want, v)
		}
		pub = v[:i]
		if strings.HasSuffix(m.Subject, ".typing") {
			if want < 3 {
				t.Fatalf("the big event went as %d message(s)", want-1)
			}
			return
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestCloseDrains checks that events published just before Close still
// reach the other nodes, and that nothing is published after it.
func TestCloseDrains(t *testing.T) {
	ns := natstest.Start(t)
	a, err := natsbus.Connect(ns.URL(), natsbus.Options{Name: "a", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	_, rb := mustConnect(t, ns.URL(), natsbus.Options{Name: "b"})
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		if err := a.Publish(ctx, &parley.Event{Name: "new_message", Data: []byte(`{}`), To: []string{"usr_b"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	waitFor(t, "all 1000 events at b", func() bool { return rb.count("new_message") == 1000 })
	if err := a.Publish(ctx, &parley.Event{Name: "new_message", Data: []byte(`{}`), To: []string{"usr_b"}}); err == nil {
		t.Fatal("publish after Close succeeded")
	}
}
