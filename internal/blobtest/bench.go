package blobtest

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley"
)

// Bench measures Put and Open of one object of each size in MiB to the
// store newStore returns, streamed from a generator so the data never sits
// in memory, and reports the throughput and the peak heap growth while a
// transfer runs (heap-MiB; sampled every 5 ms, so a shorter peak can be
// missed).
func Bench(b *testing.B, newStore func(b *testing.B) parley.BlobStore, sizesMiB ...int64) {
	s := newStore(b)
	ctx := context.Background()
	for _, mib := range sizesMiB {
		size := mib << 20
		key := fmt.Sprintf("media_bench%d", mib)
		b.Run(fmt.Sprintf("Put-%dMiB", mib), func(b *testing.B) {
			b.SetBytes(size)
			worst := 0.0
			for b.Loop() {
				b.StopTimer() // the GC that measures the heap's base
				h := StartHeapPeak()
				b.StartTimer()
				err := s.Put(ctx, key, io.LimitReader(zeros{}, size), -1)
				worst = max(worst, h.GrowthMiB())
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(worst, "heap-MiB")
			b.ReportMetric(mibPerSec(b, size), "MiB/s")
		})
		b.Run(fmt.Sprintf("Open-%dMiB", mib), func(b *testing.B) {
			b.SetBytes(size)
			worst := 0.0
			for b.Loop() {
				b.StopTimer() // the GC that measures the heap's base
				h := StartHeapPeak()
				b.StartTimer()
				r, total, err := s.Open(ctx, key, 0, -1)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, r)
				r.Close()
				worst = max(worst, h.GrowthMiB())
				if err != nil || n != size || total != size {
					b.Fatalf("read %d of %d bytes (total %d): %v", n, size, total, err)
				}
			}
			b.ReportMetric(worst, "heap-MiB")
			b.ReportMetric(mibPerSec(b, size), "MiB/s")
		})
	}
}

// mibPerSec is the throughput of the loop b ran, in MiB (2^20 bytes) per
// second; go test's MB/s is in 10^6 bytes.
func mibPerSec(b *testing.B, size int64) float64 {
	return float64(size) * float64(b.N) / (1 << 20) / b.Elapsed().Seconds()
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// HeapPeak (StartHeapPeak, GrowthMiB) samples the live heap while it runs and keeps the highest value
// seen above the heap at its start.
type HeapPeak struct {
	base, peak atomic.Uint64
	stop, done chan struct{}
}

func StartHeapPeak() *HeapPeak {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	h := &HeapPeak{stop: make(chan struct{}), done: make(chan struct{})}
	h.base.Store(m.HeapAlloc)
	go func() {
		defer close(h.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > h.peak.Load() {
				h.peak.Store(m.HeapAlloc)
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

// growthMiB stops sampling and returns the peak growth in MiB.
func (h *HeapPeak) GrowthMiB() float64 {
	close(h.stop)
	<-h.done
	if h.peak.Load() < h.base.Load() {
		return 0
	}
	return float64(h.peak.Load()-h.base.Load()) / (1 << 20)
}
