package realtime

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestEventDeadlinesShared: the events of one slot share a context whose
// deadline is timeout after the slot's end, so each event gets at least
// timeout; an event after the slot gets a new context, and the old one
// stays live for the events still using it.
func TestEventDeadlinesShared(t *testing.T) {
	t0 := time.Now()
	now := t0
	d := &eventDeadlines{timeout: time.Minute, now: func() time.Time { return now }}
	a := d.context()
	dl, ok := a.Deadline()
	if !ok || !dl.Equal(t0.Add(deadlineSlot+time.Minute)) {
		t.Fatalf("deadline %v (%v), want %v", dl, ok, t0.Add(deadlineSlot+time.Minute))
	}
	now = t0.Add(deadlineSlot - time.Millisecond)
	if b := d.context(); b != a {
		t.Fatal("an event within the slot got a context of its own")
	}
	if dl, _ := a.Deadline(); dl.Sub(now) < d.timeout {
		t.Fatalf("an event at the slot's end gets %v, less than the timeout", dl.Sub(now))
	}
	now = t0.Add(deadlineSlot)
	c := d.context()
	if c == a {
		t.Fatal("an event after the slot got the old context")
	}
	if dl, _ := c.Deadline(); !dl.Equal(now.Add(deadlineSlot + time.Minute)) {
		t.Fatalf("new deadline %v, want %v", dl, now.Add(deadlineSlot+time.Minute))
	}
	if a.Err() != nil || c.Err() != nil {
		t.Fatalf("contexts ended early: %v, %v", a.Err(), c.Err())
	}
}

// TestEventDeadlinesExpire: a context ends with DeadlineExceeded once its
// deadline passes (the real clock), and concurrent events all get a live
// context with a deadline at least timeout away.
func TestEventDeadlinesExpire(t *testing.T) {
	d := &eventDeadlines{timeout: 10 * time.Millisecond}
	ctx := d.context()
	select {
	case <-ctx.Done():
	case <-time.After(time.Minute):
		t.Fatal("the context outlived its deadline by a minute")
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("ended with %v", ctx.Err())
	}

	d = &eventDeadlines{timeout: time.Hour}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				start := time.Now()
				ctx := d.context()
				dl, ok := ctx.Deadline()
				if !ok || dl.Sub(start) < d.timeout || ctx.Err() != nil {
					t.Errorf("context with deadline %v (%v), %v after a start at %v", dl, ok, ctx.Err(), start)
					return
				}
			}
		})
	}
	wg.Wait()
}
