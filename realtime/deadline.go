package realtime

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// deadlineSlot is how long events share one context: an event's context
// ends between EventTimeout and EventTimeout+deadlineSlot after the event
// starts.
const deadlineSlot = 50 * time.Millisecond

// eventDeadlines hands each client event a context that ends at least
// timeout after the event starts. The events that start within the same
// deadlineSlot share one context, so a busy node arms one timer per slot
// instead of one per event: context.WithTimeout per event (a runtime timer
// added to a heap holding the stopped timers of the last seconds' events)
// was 3.5 % of the server's CPU at 10,000 direct messages/s (BENCHMARKS.md,
// issue #23, session 34). A shared context is never cancelled before its
// deadline, since other events still use it; nothing a handler starts
// outlives its event by relying on that cancel (handlers return once
// their work is done). The contexts use the real clock, as
// context.WithTimeout does.
type eventDeadlines struct {
	timeout time.Duration
	now     func() time.Time // when an event starts; nil: time.Now (tests set it)
	cur     atomic.Pointer[sharedDeadline]
	mu      sync.Mutex // held to replace cur
}

// sharedDeadline is the context of the events that start before until.
type sharedDeadline struct {
	ctx    context.Context
	cancel context.CancelFunc // never called: the context ends at its deadline, which releases it
	until  time.Time
}

// context returns the context for an event starting now.
func (d *eventDeadlines) context() context.Context {
	now := time.Now()
	if d.now != nil {
		now = d.now()
	}
	if s := d.cur.Load(); s != nil && now.Before(s.until) {
		return s.ctx
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.cur.Load(); s != nil && now.Before(s.until) {
		return s.ctx // another event replaced it meanwhile
	}
	s := &sharedDeadline{until: now.Add(deadlineSlot)}
	s.ctx, s.cancel = context.WithDeadline(context.Background(), s.until.Add(d.timeout))
	d.cur.Store(s)
	return s.ctx
}
