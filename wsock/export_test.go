package wsock

import "time"

// SetCoalescerSleep replaces co's sleep, so a test can hold a writer that
// waits and release it when it chooses.
func SetCoalescerSleep(co *Coalescer, sleep func(time.Duration, <-chan struct{})) { co.sleep = sleep }
