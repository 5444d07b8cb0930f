package localbus

import (
	"context"
	"testing"
	"time"

	"github.com/parley-chat/parley"
)

// TestSubscriberMayPublishAndSubscribe: a subscriber's callback may use
// the bus (publish again, subscribe, unsubscribe) without a deadlock.
func TestSubscriberMayPublishAndSubscribe(t *testing.T) {
	b := New()
	got := make(chan string, 10)
	var unsub func()
	unsub = b.Subscribe(func(ev *parley.Event) {
		got <- ev.Name
		if ev.Name == "first" {
			b.Subscribe(func(*parley.Event) {})() // subscribe and unsubscribe
			b.Publish(context.Background(), &parley.Event{Name: "second"})
			unsub()
		}
	})
	done := make(chan struct{})
	go func() {
		b.Publish(context.Background(), &parley.Event{Name: "first"})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish from a subscriber deadlocked")
	}
	if a, c := <-got, <-got; a != "first" || c != "second" {
		t.Fatalf("delivered %q, %q", a, c)
	}
	b.Publish(context.Background(), &parley.Event{Name: "third"})
	select {
	case n := <-got:
		t.Fatalf("unsubscribed callback got %q", n)
	default:
	}
}
