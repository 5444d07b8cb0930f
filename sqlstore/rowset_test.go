package sqlstore

import (
	"strings"
	"testing"
)

// TestRowSetChunksSQLite: on SQLite each splits the rows into statements of
// power-of-two sizes up to maxChunkRows, largest first, one per bit of the
// count below maxChunkRows, every row once and in order, with as many
// placeholders as arguments.
func TestRowSetChunksSQLite(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 8, 52, 127, 128, 129, 255, 256, 300, 1000} {
		r := newRowSet("bigint", "text")
		for i := range n {
			r.add(int64(i), "x")
		}
		next, calls := int64(0), 0
		err := r.each(SQLite, func(table string, args []any) error {
			calls++
			rows := len(args) / 2
			if rows < 1 || rows > maxChunkRows || rows&(rows-1) != 0 {
				t.Fatalf("n=%d: a statement of %d rows", n, rows)
			}
			if got := strings.Count(table, "?"); got != len(args) {
				t.Fatalf("n=%d: %d placeholders for %d arguments", n, got, len(args))
			}
			if rest := n - int(next); rows != rowChunk(rest) {
				t.Fatalf("n=%d: %d rows taken with %d left, want %d", n, rows, rest, rowChunk(rest))
			}
			for i := 0; i < len(args); i += 2 {
				if args[i].(int64) != next {
					t.Fatalf("n=%d: row %v where %d was due", n, args[i], next)
				}
				next++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if next != int64(n) {
			t.Fatalf("n=%d: %d rows passed", n, next)
		}
		want := n / maxChunkRows
		for b := n % maxChunkRows; b > 0; b &= b - 1 {
			want++
		}
		if calls != want {
			t.Fatalf("n=%d: %d statements, want %d", n, calls, want)
		}
	}
}
