package sqlstore

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCheckpointerKeepsWALSmall checks that the checkpointer's passive
// checkpoints, on their own connection, let the WAL start over: 40 commits
// of 64 KiB each, each followed by a checkpoint, leave a WAL of about one
// commit instead of all 40 (the writer's own threshold is far above
// that), and every row is still there, before and after a reopen.
func TestCheckpointerKeepsWALSmall(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "parley.db")
	db, err := Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	write := func(q string) {
		t.Helper()
		if err := db.inTx(ctx, func(tx *Tx) error { _, err := tx.exec(ctx, q); return err }); err != nil {
			t.Fatal(err)
		}
	}
	write(`CREATE TABLE blobs (b BLOB NOT NULL)`)
	const commits = 40
	for range commits {
		write(`INSERT INTO blobs (b) VALUES (randomblob(65536))`)
		if err := db.ck.checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 1<<20 {
		t.Fatalf("WAL of %d bytes after %d commits of 64 KiB, each checkpointed", st.Size(), commits)
	}
	count := func(db *DB) (n int) {
		t.Helper()
		if err := db.queryRow(ctx, `SELECT COUNT(*) FROM blobs WHERE length(b) = 65536`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(db); n != commits {
		t.Fatalf("%d rows, want %d", n, commits)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := count(db); n != commits {
		t.Fatalf("after a reopen %d rows, want %d", n, commits)
	}
}

// TestCheckpointerRunsAfterCommits checks that the checkpointer's loop
// checkpoints once something was committed.
func TestCheckpointerRunsAfterCommits(t *testing.T) {
	db := mustOpenSQLite(t)
	ctx := context.Background()
	before := db.ck.runs.Load()
	if err := db.inTx(ctx, func(tx *Tx) error { _, err := tx.exec(ctx, `CREATE TABLE t (x INTEGER)`); return err }); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); db.ck.runs.Load() == before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint within 10 s of a commit")
		}
	}
}
