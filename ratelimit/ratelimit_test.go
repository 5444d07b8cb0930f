package ratelimit_test

import (
	"testing"
	"time"

	"github.com/parley-chat/parley/ratelimit"
)

func TestKeyed(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k := ratelimit.New(1, 3) // one a second, bursts of three
	for i := 0; i < 3; i++ {
		if ok, _ := k.Take("a", now); !ok {
			t.Fatalf("take %d of the burst refused", i)
		}
	}
	ok, wait := k.Take("a", now)
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("4th take: %v, wait %s; want refused for at most 1 s", ok, wait)
	}
	if ok, _ := k.Take("b", now); !ok {
		t.Fatal("another key shares the bucket")
	}
	if ok, _ := k.Take("a", now.Add(time.Second)); !ok {
		t.Fatal("no token a second later")
	}
	// Idle buckets are forgotten at the next sweep.
	later := now.Add(10 * time.Minute)
	k.Take("c", later)
	if n := k.Len(); n != 1 {
		t.Fatalf("%d keys remembered after they all went idle, want 1", n)
	}
}
