package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestReadCPU checks that readCPU parses this process's /proc stat line
// and that the time it reports grows while the process computes.
func TestReadCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	before, err := readCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	x := 0
	for {
		for i := range 1_000_000 {
			x ^= i * i
		}
		after, err := readCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time stayed at %v for 20 s of computing (x=%d)", before, x)
		}
	}
	if _, err := readCPU(1 << 30); err == nil {
		t.Fatal("readCPU of a process that does not exist succeeded")
	}
	if f := strings.Fields(loadAverage()); len(f) != 3 {
		t.Fatalf("loadAverage() = %q, want three fields", loadAverage())
	}
}
