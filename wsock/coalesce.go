package wsock

import (
	"sync/atomic"
	"time"
)

// Coalescer makes busy connections write less often, so that under heavy
// fan-out one write carries several messages. A write costs a system call
// whatever it carries (on loopback about 6 µs of the server's CPU, which
// made 60 % of a fan-out's CPU), and a fan-out at a steady rate gives each
// connection one message at a time: without help, one write per message.
//
// Only Bulk messages (a fan-out's) are ever held. The Coalescer counts the
// connections, of every Upgrader sharing it, whose writer has something to
// write. While at least Busy of them do, a connection that wrote less than
// Delay ago and has only Bulk messages queued waits out the rest of Delay
// before its next write, and what is queued meanwhile goes out with it. Any
// other message (a reply, a chat's message, a ping or pong, a close) ends
// the wait at once and carries what is queued with it. A connection that
// was quiet for Delay writes at once, and so does every connection while
// fewer than Busy have something to write: light traffic gains no latency,
// chat traffic never waits, and a fan-out's message waits at most Delay
// more under load. A nil *Coalescer leaves every write immediate.
type Coalescer struct {
	delay  int64 // nanoseconds
	busy   int64
	active atomic.Int64                                // connections whose writer runs
	sleep  func(d time.Duration, wake <-chan struct{}) // waits d or until wake closes; tests hold it
	now    func() int64                                // time.Now().UnixNano()
}

// NewCoalescer returns a Coalescer that holds a connection's writes at
// least delay apart while busy or more connections have something to
// write; a delay of zero or less returns nil (writes are never held).
func NewCoalescer(delay time.Duration, busy int) *Coalescer {
	if delay <= 0 {
		return nil
	}
	return &Coalescer{delay: int64(delay), busy: int64(max(busy, 0)), sleep: sleep,
		now: func() int64 { return time.Now().UnixNano() }}
}

// sleep waits d, or less if wake is closed first.
func sleep(d time.Duration, wake <-chan struct{}) {
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-wake:
		t.Stop()
	}
}

// started and stopped count a connection's writer in and out.
func (co *Coalescer) started() {
	if co != nil {
		co.active.Add(1)
	}
}

func (co *Coalescer) stopped() {
	if co != nil {
		co.active.Add(-1)
	}
}

// wait is how long a connection that last wrote at last (UnixNano; zero:
// never) should wait before writing again.
func (co *Coalescer) wait(last int64) time.Duration {
	if co == nil || last == 0 || co.active.Load() < co.busy {
		return 0
	}
	since := co.now() - last
	if since < 0 || since >= co.delay { // a clock step back counts as quiet
		return 0
	}
	return time.Duration(co.delay - since)
}

// stamp is the time to record as a connection's last write.
func (co *Coalescer) stamp() int64 {
	if co == nil {
		return 0
	}
	return co.now()
}
