package sqlstore_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/sqlstore"
)

// TestConcurrentDeviceUpsert covers issue #12 defect 7: concurrent upserts
// of one new device never fail (PostgreSQL answered a devices_pkey
// duplicate), and exactly one of them reports that it created the device.
func TestConcurrentDeviceUpsert(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ann := mustUser(t, db, "ann")
		const rounds, workers = 10, 30
		for round := 0; round < rounds; round++ {
			dev := fmt.Sprintf("new-%d", round)
			var wg sync.WaitGroup
			var mu sync.Mutex
			createdN := 0
			var errs []error
			start := make(chan struct{})
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					<-start
					now := time.Now()
					created, err := db.UpsertDevice(ctx, &parley.Device{UserID: ann.ID, DeviceID: dev, PublicKey: fmt.Sprintf("k%d", w), CreatedAt: now, UpdatedAt: now})
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, err)
					} else if created {
						createdN++
					}
				}(w)
			}
			close(start)
			wg.Wait()
			if len(errs) > 0 {
				t.Fatalf("round %d: %d of %d upserts failed, first: %v", round, len(errs), workers, errs[0])
			}
			if createdN != 1 {
				t.Fatalf("round %d: %d upserts reported creating %s, want 1", round, createdN, dev)
			}
		}
		ds, err := db.Devices(ctx, ann.ID)
		if err != nil || len(ds) != rounds+1 {
			t.Fatalf("devices: %d %v, want %d", len(ds), err, rounds+1)
		}
	})
}
