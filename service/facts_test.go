package service

import (
	"fmt"
	"testing"
)

func TestFacts(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		f := newFacts(4)
		f.put(directFact("usr_b", "usr_a"), "conv_1")
		if v, ok := f.get(directFact("usr_a", "usr_b")); !ok || v != "conv_1" {
			t.Fatalf("direct fact of (a, b) = %q, %v; want the one stored for (b, a)", v, ok)
		}
		if _, ok := f.get(userFact("usr_a")); ok {
			t.Fatal("a user fact was never stored")
		}
	})
	t.Run("Bounded", func(t *testing.T) {
		const max = 8
		f := newFacts(max)
		for i := range 10 * max {
			f.put(fmt.Sprint(i), "v")
			if len(f.cur) > max || len(f.prev) > max {
				t.Fatalf("after %d puts: %d + %d entries, bound %d per generation", i+1, len(f.cur), len(f.prev), max)
			}
		}
		if _, ok := f.get("0"); ok {
			t.Fatal("the oldest entry survived two generations")
		}
		if _, ok := f.get(fmt.Sprint(10*max - 1)); !ok {
			t.Fatal("the newest entry is gone")
		}
	})
	t.Run("UsedEntriesSurvive", func(t *testing.T) {
		const max = 4
		f := newFacts(max)
		f.put("hot", "v")
		for i := range 20 * max {
			f.put(fmt.Sprint(i), "v")
			if _, ok := f.get("hot"); !ok {
				t.Fatalf("an entry used all along was dropped after %d puts", i+1)
			}
		}
	})
}
