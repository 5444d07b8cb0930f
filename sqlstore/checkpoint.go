package sqlstore

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// checkpointEvery is how often the checkpointer copies the WAL's new
// pages into the database file while writes come in.
const checkpointEvery = 250 * time.Millisecond

// checkpointer copies the WAL into the database file on its own
// connection, beside the writer, so that no commit waits for it: with
// SQLite's automatic checkpoint, the commit that took the WAL past its
// threshold copied the whole WAL and synced the database file before it
// returned, and every send queued behind it waited (BENCHMARKS.md, issue
// #23, session 35).
//
// Its checkpoints are PASSIVE: they take neither the write lock nor wait
// for readers, and copy what no reader still needs. Under constant writes
// the WAL is then mostly copied but never starts over (a WAL restarts
// only once it was copied whole when a write begins), so the writer keeps
// SQLite's automatic checkpoint at a higher threshold (walHardLimit) as
// the bound: by then it finds only the last pages still to copy.
type checkpointer struct {
	conn   *sql.DB
	writes atomic.Uint64 // commits on the writer, counted by inTx
	runs   atomic.Uint64 // checkpoints the loop ran
	stop   chan struct{}
	done   sync.WaitGroup
}

func newCheckpointer(conn *sql.DB) *checkpointer {
	c := &checkpointer{conn: conn, stop: make(chan struct{})}
	c.done.Add(1)
	go c.loop()
	return c
}

// loop checkpoints every checkpointEvery in which something was committed.
func (c *checkpointer) loop() {
	defer c.done.Done()
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	var seen uint64
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		if n := c.writes.Load(); n != seen {
			seen = n
			if err := c.checkpoint(context.Background()); err != nil {
				slog.Warn("sqlite checkpoint", "err", err)
			}
			c.runs.Add(1)
		}
	}
}

// checkpoint copies into the database file what the WAL holds beyond what
// readers still need.
func (c *checkpointer) checkpoint(ctx context.Context) error {
	var busy, log, copied int
	return c.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &copied)
}

func (c *checkpointer) close() error {
	close(c.stop)
	c.done.Wait()
	return c.conn.Close()
}

// walHardLimit is the writer's automatic checkpoint threshold, in pages
// (~128 MiB of WAL): the bound on the WAL's size when the checkpointer's
// passive checkpoints cannot let it start over.
const walHardLimit = "32000"
