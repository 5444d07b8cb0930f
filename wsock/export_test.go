package wsock

import "time"

// SetCoalescerSleep replaces co's sleep, so a test can hold a writer that
// waits and release it when it chooses.
func SetCoalescerSleep(co *Coalescer, sleep func(time.Duration, <-chan struct{})) { co.sleep = sleep }

// SetWriteClock replaces the clock that dates write deadlines until the
// test ends.
func SetWriteClock(t interface{ Cleanup(func()) }, now func() time.Time) {
	writeClock = now
	t.Cleanup(func() { writeClock = time.Now })
}
