package jobs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/jobs"
	"github.com/parley-chat/parley/sqlstore"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// counter is a job body that counts its runs by node and signals each.
type counter struct {
	mu   sync.Mutex
	runs map[string]int
	ran  chan string
}

func newCounter() *counter { return &counter{runs: map[string]int{}, ran: make(chan string, 100)} }

func (c *counter) job(node string, leased bool) jobs.Job {
	return jobs.Job{Name: "count", Every: time.Second, Leased: leased, Run: func(context.Context) error {
		c.mu.Lock()
		c.runs[node]++
		c.mu.Unlock()
		c.ran <- node
		return nil
	}}
}

func (c *counter) next(t *testing.T) string {
	t.Helper()
	select {
	case n := <-c.ran:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no run within 10 s")
		return ""
	}
}

// TestLeasedJobRunsOnOneNode: of two runners sharing a lease store, only
// the holder runs a leased job; when it closes, the other takes over, and
// when a holder dies without closing, the other takes over once the lease
// expired (time moved by a fake clock, not waited for).
func TestLeasedJobRunsOnOneNode(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) { testLeasedJob(t, db) })
	t.Run("local", func(t *testing.T) { testLeasedJob(t, jobs.NewLocalLeases()) })
}

func testLeasedJob(t *testing.T, leases jobs.Leases) {
	clock := jobs.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c := newCounter()
	a := jobs.New(leases, "node-a", jobs.Options{Clock: clock, Logger: quiet, LeaseTTL: 5 * time.Second})
	a.Add(c.job("a", true))
	a.Start()
	if n := c.next(t); n != "a" {
		t.Fatalf("first run on %s", n)
	}
	b := jobs.New(leases, "node-b", jobs.Options{Clock: clock, Logger: quiet, LeaseTTL: 5 * time.Second})
	b.Add(c.job("b", true))
	b.Start()
	defer b.Close()
	for i := 0; i < 3; i++ {
		clock.BlockUntil(2) // both armed their next try
		clock.Advance(time.Second)
		if n := c.next(t); n != "a" {
			t.Fatalf("run %d on %s while a holds the lease", i, n)
		}
	}
	a.Close() // releases the lease
	clock.BlockUntil(1)
	clock.Advance(time.Second)
	if n := c.next(t); n != "b" {
		t.Fatalf("after a closed, the job ran on %s", n)
	}

	// A holder that dies keeps the lease until it expires.
	dead := jobs.New(leases, "node-dead", jobs.Options{Clock: clock, Logger: quiet})
	if ok, err := leases.TakeLease(context.Background(), "other", "node-dead", clock.Now(), clock.Now().Add(5*time.Second)); err != nil || !ok {
		t.Fatalf("take: %v %v", ok, err)
	}
	if ok, _ := leases.TakeLease(context.Background(), "other", "node-b", clock.Now(), clock.Now().Add(5*time.Second)); ok {
		t.Fatal("took a lease another node holds")
	}
	later := clock.Now().Add(6 * time.Second)
	if ok, err := leases.TakeLease(context.Background(), "other", "node-b", later, later.Add(5*time.Second)); err != nil || !ok {
		t.Fatalf("an expired lease was not given to another node: %v %v", ok, err)
	}
	dead.Close()
}

// TestFailingJobBacksOff: a failing job waits twice as long after each
// failure, up to MaxBackoff, and its normal period once it succeeds.
func TestFailingJobBacksOff(t *testing.T) {
	clock := jobs.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var fail atomic.Bool
	fail.Store(true)
	ran := make(chan time.Time, 100)
	r := jobs.New(nil, "n", jobs.Options{Clock: clock, Logger: quiet, MaxBackoff: 8 * time.Second})
	r.Add(jobs.Job{Name: "flaky", Every: time.Second, Run: func(context.Context) error {
		ran <- clock.Now()
		if fail.Load() {
			return errors.New("database down")
		}
		return nil
	}})
	r.Start()
	defer r.Close()
	start := <-ran
	var gaps []time.Duration
	last := start
	for len(gaps) < 6 {
		clock.BlockUntil(1)
		clock.Advance(time.Second)
		select {
		case at := <-ran:
			gaps = append(gaps, at.Sub(last))
			last = at
			if len(gaps) == 5 {
				fail.Store(false)
			}
		default:
		}
	}
	want := []time.Duration{1, 2, 4, 8, 8, 8}
	for i, w := range want {
		if gaps[i] != w*time.Second {
			t.Fatalf("waits between runs %v, want %v seconds", gaps, want)
		}
	}
	// Recovered: back to every second.
	clock.BlockUntil(1)
	clock.Advance(time.Second)
	select {
	case at := <-ran:
		if at.Sub(last) != time.Second {
			t.Fatalf("after recovery the job ran %s after the last run", at.Sub(last))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no run a second after recovering")
	}
}

// TestCloseWaitsForRuns: Close returns only after a run in progress ended,
// and no run starts after it.
func TestCloseWaitsForRuns(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var ended atomic.Bool
	r := jobs.New(nil, "n", jobs.Options{Logger: quiet})
	r.Add(jobs.Job{Name: "slow", Every: time.Hour, Run: func(ctx context.Context) error {
		close(started)
		<-release
		ended.Store(true)
		return nil
	}})
	r.Start()
	<-started
	closed := make(chan struct{})
	go func() { r.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned during a run")
	default:
	}
	close(release)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after the run ended")
	}
	if !ended.Load() {
		t.Fatal("Close returned before the run ended")
	}
}

// countingLeases counts the lease writes of a runner.
type countingLeases struct {
	jobs.Leases
	takes atomic.Int32
}

func (c *countingLeases) TakeLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error) {
	c.takes.Add(1)
	return c.Leases.TakeLease(ctx, name, holder, now, until)
}

// TestLeaseRenewedAtHalfLife: a leased job that runs every second renews
// its 10-second lease only when half of it is left, not at every run
// (each renewal is a database write).
func TestLeaseRenewedAtHalfLife(t *testing.T) {
	db := testdb.MustOpen(t, "sqlite")
	leases := &countingLeases{Leases: db}
	clock := jobs.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c := newCounter()
	r := jobs.New(leases, "node-a", jobs.Options{Clock: clock, Logger: quiet, LeaseTTL: 10 * time.Second})
	r.Add(c.job("a", true))
	r.Start()
	defer r.Close()
	c.next(t)
	for range 20 { // 20 more runs, one a second
		clock.BlockUntil(1)
		clock.Advance(time.Second)
		c.next(t)
	}
	// 21 runs over 20 s: taken at 0 s, renewed at 5, 10, 15 and 20 s.
	if n := leases.takes.Load(); n != 5 {
		t.Fatalf("%d lease writes for 21 runs over 20 s, want 5", n)
	}
}
