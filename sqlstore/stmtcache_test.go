package sqlstore

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

func mustOpenSQLite(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestStmtCache checks that SQLite statements are prepared once and
// reused, inside and outside transactions, and that queries still run
// when the cache is full or closed.
func TestStmtCache(t *testing.T) {
	ctx := context.Background()

	t.Run("Reads", func(t *testing.T) {
		db := mustOpenSQLite(t)
		const q = `SELECT ? + 1`
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var n int
				if err := db.queryRow(ctx, q, i).Scan(&n); err != nil || n != i+1 {
					t.Errorf("SELECT %d + 1 = %d, %v", i, n, err)
				}
			}()
		}
		wg.Wait()
		first := db.rstmts.lookup(q)
		if first == nil {
			t.Fatal("read statement not cached")
		}
		var n int
		if err := db.queryRow(ctx, q, 41).Scan(&n); err != nil || n != 42 {
			t.Fatalf("got %d, %v", n, err)
		}
		if db.rstmts.lookup(q) != first {
			t.Fatal("statement prepared again")
		}
	})

	t.Run("Transactions", func(t *testing.T) {
		db := mustOpenSQLite(t)
		if _, err := db.exec(ctx, `CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		const ins = `INSERT INTO kv (k, v) VALUES (?, ?)`
		const get = `SELECT v FROM kv WHERE k = ?`
		write := func(k int) (cachedInTx bool) {
			err := db.inTx(ctx, func(tx *Tx) error {
				if _, err := tx.exec(ctx, ins, k, fmt.Sprint("v", k)); err != nil {
					return err
				}
				var v string
				if err := tx.queryRow(ctx, get, k).Scan(&v); err != nil || v != fmt.Sprint("v", k) {
					return fmt.Errorf("read back %q, %v", v, err)
				}
				cachedInTx = tx.stmts[ins] != nil && tx.stmts[get] != nil
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return cachedInTx
		}
		if write(1) {
			t.Fatal("the first transaction cannot use statements prepared later")
		}
		if db.wstmts.lookup(ins) == nil || db.wstmts.lookup(get) == nil {
			t.Fatal("statements of the first transaction not prepared after it")
		}
		if !write(2) {
			t.Fatal("the second transaction did not use the cached statements")
		}
		// A failed transaction leaves nothing behind, cached statements or not.
		err := db.inTx(ctx, func(tx *Tx) error {
			if _, err := tx.exec(ctx, ins, 3, "v3"); err != nil {
				return err
			}
			_, err := tx.exec(ctx, ins, 1, "again") // primary key taken
			return err
		})
		if !isUniqueViolation(err) {
			t.Fatalf("err = %v, want a unique violation", err)
		}
		var n int
		if err := db.queryRow(ctx, `SELECT COUNT(*) FROM kv`).Scan(&n); err != nil || n != 2 {
			t.Fatalf("rows = %d, %v; want 2", n, err)
		}
	})

	t.Run("Full", func(t *testing.T) {
		db := mustOpenSQLite(t)
		for i := db.rstmts.len(); i < maxCachedStmts; i++ {
			if db.rstmts.get(ctx, fmt.Sprintf("SELECT %d", i)) == nil {
				t.Fatalf("statement %d not cached", i)
			}
		}
		const q = `SELECT ? * 2`
		var n int
		if err := db.queryRow(ctx, q, 21).Scan(&n); err != nil || n != 42 {
			t.Fatalf("beyond the bound: got %d, %v", n, err)
		}
		if db.rstmts.lookup(q) != nil || db.rstmts.len() != maxCachedStmts {
			t.Fatalf("cache grew past its bound: %d", db.rstmts.len())
		}
	})

	t.Run("Closed", func(t *testing.T) {
		db := mustOpenSQLite(t)
		if err := db.rstmts.close(); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.queryRow(ctx, `SELECT 7`).Scan(&n); err != nil || n != 7 {
			t.Fatalf("after close: got %d, %v", n, err)
		}
		if db.rstmts.len() != 0 {
			t.Fatal("a closed cache kept a statement")
		}
	})
}
