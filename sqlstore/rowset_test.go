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

// TestRowSetReserve: rows added up to what was reserved go into the slice
// reserve made: one allocation for the values, not one per regrowth.
func TestRowSetReserve(t *testing.T) {
	add := func(r *rowSet) *rowSet {
		for i := range 50 {
			r.add("x", int64(i), int64(7)) // values boxed without allocating
		}
		return r
	}
	if r := add(newRowSet("text", "bigint", "bigint").reserve(50)); r.len() != 50 || r.vals[147] != "x" || r.vals[148] != int64(49) {
		t.Fatalf("%d rows, last %v", r.len(), r.vals[147:])
	}
	var rows int
	reserved := testing.AllocsPerRun(5, func() { rows += add(newRowSet("text", "bigint", "bigint").reserve(50)).len() })
	grown := testing.AllocsPerRun(5, func() { rows += add(newRowSet("text", "bigint", "bigint")).len() })
	if reserved > 3 || grown <= reserved {
		t.Fatalf("%v allocations with reserve, %v without (%d rows)", reserved, grown, rows)
	}
}
