package sqlstore_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/sqlstore"
)

func mustRenew(tb testing.TB, db *sqlstore.DB, node string, now, until time.Time) bool {
	tb.Helper()
	ok, err := db.RenewNodeLease(ctx, node, now, until)
	if err != nil {
		tb.Fatalf("renew %s: %v", node, err)
	}
	return ok
}

func mustJoin(tb testing.TB, db *sqlstore.DB, node, user string, now time.Time) bool {
	tb.Helper()
	came, err := db.JoinPresence(ctx, node, user, now)
	if err != nil {
		tb.Fatalf("join %s on %s: %v", user, node, err)
	}
	return came
}

func mustLeave(tb testing.TB, db *sqlstore.DB, node, user string, now time.Time) bool {
	tb.Helper()
	went, err := db.LeavePresence(ctx, node, user, now)
	if err != nil {
		tb.Fatalf("leave %s on %s: %v", user, node, err)
	}
	return went
}

func mustOnline(tb testing.TB, db *sqlstore.DB, user string) bool {
	tb.Helper()
	on, err := db.IsOnline(ctx, user)
	if err != nil {
		tb.Fatal(err)
	}
	return on
}

// TestPresenceStore is the shared-presence contract, run on every backend:
// each change of a user's state is reported once, whichever node makes it.
func TestPresenceStore(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		t0 := time.Now().UTC().Truncate(time.Millisecond)
		far := t0.Add(time.Hour)
		t.Run("Lease", func(t *testing.T) {
			if mustRenew(t, db, "lease-1", t0, t0.Add(time.Second)) {
				t.Fatal("first renewal reported a live lease")
			}
			if !mustRenew(t, db, "lease-1", t0.Add(500*time.Millisecond), t0.Add(2*time.Second)) {
				t.Fatal("renewal within the lease reported it lapsed")
			}
			if mustRenew(t, db, "lease-1", t0.Add(3*time.Second), t0.Add(4*time.Second)) {
				t.Fatal("renewal after the lease ended reported it live")
			}
		})
		t.Run("OK", func(t *testing.T) {
			mustRenew(t, db, "n1", t0, far)
			mustRenew(t, db, "n2", t0, far)
			if !mustJoin(t, db, "n1", "usr_ok", t0) {
				t.Fatal("first socket did not bring the user online")
			}
			if mustJoin(t, db, "n2", "usr_ok", t0) || mustJoin(t, db, "n1", "usr_ok", t0) {
				t.Fatal("a second node (or a repeated join) brought the user online again")
			}
			if !mustOnline(t, db, "usr_ok") {
				t.Fatal("not online")
			}
			if mustLeave(t, db, "n1", "usr_ok", t0) {
				t.Fatal("offline while another node holds a socket")
			}
			if !mustOnline(t, db, "usr_ok") {
				t.Fatal("offline while another node holds a socket")
			}
			if !mustLeave(t, db, "n2", "usr_ok", t0) {
				t.Fatal("leaving the last node did not take the user offline")
			}
			if mustLeave(t, db, "n2", "usr_ok", t0) || mustOnline(t, db, "usr_ok") {
				t.Fatal("offline reported twice, or still online")
			}
		})
		t.Run("DeadNode", func(t *testing.T) {
			mustRenew(t, db, "n1", t0, far)
			mustRenew(t, db, "dead", t0, t0.Add(time.Second))
			mustJoin(t, db, "dead", "usr_lost", t0)
			mustJoin(t, db, "dead", "usr_kept", t0)
			mustJoin(t, db, "n1", "usr_kept", t0)
			went, err := db.SweepPresence(ctx, t0.Add(500*time.Millisecond))
			if err != nil || len(went) != 0 {
				t.Fatalf("sweep within the lease: %v, %v", went, err)
			}
			went, err = db.SweepPresence(ctx, t0.Add(2*time.Second))
			if err != nil || !slices.Equal(went, []string{"usr_lost"}) {
				t.Fatalf("sweep after the lease = %v, %v; want [usr_lost]", went, err)
			}
			if mustOnline(t, db, "usr_lost") || !mustOnline(t, db, "usr_kept") {
				t.Fatal("wrong presence after the sweep")
			}
			if went, err = db.SweepPresence(ctx, t0.Add(3*time.Second)); err != nil || len(went) != 0 {
				t.Fatalf("second sweep = %v, %v", went, err)
			}
			// The node was only late: it finds its lease gone and joins again.
			if mustRenew(t, db, "dead", t0.Add(3*time.Second), far) {
				t.Fatal("a swept node's renewal reported its lease live")
			}
			if !mustJoin(t, db, "dead", "usr_lost", t0.Add(3*time.Second)) {
				t.Fatal("joining again did not bring the user online")
			}
		})
		t.Run("RenewedBeforeSweep", func(t *testing.T) {
			mustRenew(t, db, "late", t0, t0.Add(time.Second))
			mustJoin(t, db, "late", "usr_late", t0)
			mustRenew(t, db, "late", t0.Add(2*time.Second), far)
			if went, err := db.SweepPresence(ctx, t0.Add(2*time.Second)); err != nil || slices.Contains(went, "usr_late") {
				t.Fatalf("sweep took a renewed node's user offline: %v, %v", went, err)
			}
		})
		// Two nodes losing a user's last sockets at the same moment: exactly
		// one of them reports the user offline.
		t.Run("ConcurrentLeaves", func(t *testing.T) {
			const users = 100
			mustRenew(t, db, "n1", t0, far)
			mustRenew(t, db, "n2", t0, far)
			for i := 0; i < users; i++ {
				u := fmt.Sprintf("usr_race%d", i)
				mustJoin(t, db, "n1", u, t0)
				mustJoin(t, db, "n2", u, t0)
			}
			var mu sync.Mutex
			offline := map[string]int{}
			for i := 0; i < users; i++ {
				u := fmt.Sprintf("usr_race%d", i)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for _, node := range []string{"n1", "n2"} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						went, err := db.LeavePresence(ctx, node, u, t0)
						if err != nil {
							t.Errorf("leave: %v", err)
						}
						if went {
							mu.Lock()
							offline[u]++
							mu.Unlock()
						}
					}()
				}
				close(start)
				wg.Wait()
			}
			for i := 0; i < users; i++ {
				u := fmt.Sprintf("usr_race%d", i)
				if offline[u] != 1 || mustOnline(t, db, u) {
					t.Fatalf("%s reported offline %d times (online now: %v)", u, offline[u], mustOnline(t, db, u))
				}
			}
		})
		t.Run("ConcurrentSweeps", func(t *testing.T) {
			mustRenew(t, db, "gone", t0, t0.Add(time.Second))
			const users = 30
			for i := 0; i < users; i++ {
				mustJoin(t, db, "gone", fmt.Sprintf("usr_swept%d", i), t0)
			}
			var mu sync.Mutex
			seen := map[string]int{}
			var wg sync.WaitGroup
			for range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					went, err := db.SweepPresence(ctx, t0.Add(5*time.Second))
					if err != nil {
						t.Errorf("sweep: %v", err)
					}
					mu.Lock()
					for _, u := range went {
						seen[u]++
					}
					mu.Unlock()
				}()
			}
			wg.Wait()
			for i := 0; i < users; i++ {
				if u := fmt.Sprintf("usr_swept%d", i); seen[u] != 1 {
					t.Fatalf("%s reported offline by %d sweeps, want 1", u, seen[u])
				}
			}
		})
	})
}

// TestRateStore is the shared token-bucket contract, run on every backend.
func TestRateStore(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		t0 := time.Now().UTC().Truncate(time.Millisecond)
		take := func(key string, at time.Time) (bool, time.Duration) {
			ok, wait, err := db.TakeToken(ctx, key, at, 60, 3) // one a second, bursts of 3
			if err != nil {
				t.Fatalf("take: %v", err)
			}
			return ok, wait
		}
		t.Run("OK", func(t *testing.T) {
			for i := 0; i < 3; i++ {
				if ok, _ := take("login:1.2.3.4", t0); !ok {
					t.Fatalf("token %d of a full bucket refused", i+1)
				}
			}
			ok, wait := take("login:1.2.3.4", t0)
			if ok || wait < 900*time.Millisecond || wait > time.Second {
				t.Fatalf("empty bucket: ok=%v wait=%v, want refused for about 1s", ok, wait)
			}
			if ok, _ := take("login:5.6.7.8", t0); !ok {
				t.Fatal("another address shares the bucket")
			}
			if ok, _ := take("login:1.2.3.4", t0.Add(time.Second)); !ok {
				t.Fatal("no token after a second")
			}
			if ok, _ := take("login:1.2.3.4", t0.Add(time.Second)); ok {
				t.Fatal("two tokens after a second")
			}
			// A clock behind the last writer's takes nothing back.
			if ok, _ := take("login:1.2.3.4", t0); ok {
				t.Fatal("a token from the past")
			}
		})
		t.Run("Concurrent", func(t *testing.T) {
			var mu sync.Mutex
			granted := 0
			var wg sync.WaitGroup
			for range 12 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ok, _, err := db.TakeToken(ctx, "register:9.9.9.9", t0, 60, 5)
					if err != nil {
						t.Errorf("take: %v", err)
					}
					if ok {
						mu.Lock()
						granted++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if granted != 5 {
				t.Fatalf("%d of 12 concurrent takes granted from a bucket of 5", granted)
			}
		})
		t.Run("Prune", func(t *testing.T) {
			take("forgot:1.1.1.1", t0)
			take("forgot:1.1.1.1", t0)
			take("forgot:1.1.1.1", t0)
			if err := db.PruneTokens(ctx, t0.Add(time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			if ok, _ := take("forgot:1.1.1.1", t0); !ok {
				t.Fatal("a pruned bucket is not full again")
			}
		})
	})
}

// TestOpenConcurrently starts several nodes at once on one fresh
// PostgreSQL database, as the three commands of a cluster do: every one
// migrates it or waits for the one that does, and none fails.
func TestOpenConcurrently(t *testing.T) {
	dsn := testdb.DSN(t, "postgres")
	const nodes = 4
	errs := make(chan error, nodes)
	start := make(chan struct{})
	for range nodes {
		go func() {
			<-start
			db, err := sqlstore.Open(ctx, dsn)
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	close(start)
	for range nodes {
		if err := <-errs; err != nil {
			t.Fatalf("open: %v", err)
		}
	}
}
