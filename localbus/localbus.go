// Package localbus is the in-process parley.Bus: the default when Parley
// runs as one node. Publish hands the event to every subscriber
// synchronously; subscribers only enqueue, so it never blocks for long.
package localbus

import (
	"context"
	"sync"

	"github.com/parley-chat/parley"
)

// Bus is an in-process parley.Bus. The zero value is not usable; call New.
type Bus struct {
	mu   sync.RWMutex
	next int
	subs map[int]func(*parley.Event)
}

// New returns an empty bus.
func New() *Bus { return &Bus{subs: map[int]func(*parley.Event){}} }

// Publish implements parley.Bus; it never fails.
//
// Subscribers are called without the bus's lock held, so a subscriber may
// publish, subscribe or unsubscribe from its callback (closing a socket
// from a delivery, say, publishes a presence change).
func (b *Bus) Publish(_ context.Context, ev *parley.Event) error {
	b.mu.RLock()
	subs := make([]func(*parley.Event), 0, len(b.subs))
	for _, fn := range b.subs {
		subs = append(subs, fn)
	}
	b.mu.RUnlock()
	for _, fn := range subs {
		fn(ev)
	}
	return nil
}

// Subscribe implements parley.Bus.
func (b *Bus) Subscribe(fn func(*parley.Event)) func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := b.next
	b.next++
	b.subs[id] = fn
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.subs, id)
	}
}
