package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// rowSet is a table of values built in Go that one statement reads as a
// table (after FROM, as v): the rows of a whole commit batch in one
// statement rather than a statement per row. Its columns are named
// v.column1, v.column2, ... on both dialects.
//
// On PostgreSQL every row goes in one statement, one array parameter per
// column read back with unnest: a batch costs one round trip whatever its
// size, and the statement text (prepared once per connection by pgx) never
// changes. Round trips are what a single committer on PostgreSQL waits for
// (BENCHMARKS.md, issue #23). SQLite has no arrays and no round trips: the
// rows go as multi-row VALUES in chunks of power-of-two sizes (rowChunk),
// each size one cached prepared statement.
type rowSet struct {
	types []string // SQL type of each column: text, bigint or boolean
	vals  []any    // row-major: string, int64 or bool as types says
}

func newRowSet(types ...string) *rowSet { return &rowSet{types: types} }

// reserve makes room for rows more rows, so that adding a batch's rows
// does not copy the values again and again as the slice grows (that
// regrowth was a tenth of the bytes the server allocated at 10,000 direct
// messages/s, BENCHMARKS.md, issue #23, session 34).
func (r *rowSet) reserve(rows int) *rowSet {
	r.vals = slices.Grow(r.vals, rows*len(r.types))
	return r
}

// add appends a row; it must have one value per column, of its type.
func (r *rowSet) add(vals ...any) {
	if len(vals) != len(r.types) {
		panic(fmt.Sprintf("sqlstore: row of %d values for %d columns", len(vals), len(r.types)))
	}
	r.vals = append(r.vals, vals...)
}

// len returns the number of rows.
func (r *rowSet) len() int { return len(r.vals) / len(r.types) }

// each calls run once per statement needed for the rows, with the text of
// the table to put after FROM (aliased v) and its arguments; run places
// them among its own. No call is made for an empty set.
func (r *rowSet) each(d Dialect, run func(table string, args []any) error) error {
	if r.len() == 0 {
		return nil
	}
	if d == Postgres {
		return run(r.unnest(), r.columns())
	}
	cols := len(r.types)
	rows := r.vals
	for len(rows) > 0 {
		n := rowChunk(len(rows) / cols)
		if err := run(valuesTable(n, cols), rows[:n*cols]); err != nil {
			return err
		}
		rows = rows[n*cols:]
	}
	return nil
}

// maxChunkRows bounds the rows of one SQLite statement of a rowSet (at
// 13 columns, 1,664 parameters: well under SQLite's limit of 32,766).
const maxChunkRows = 128

// rowChunk picks how many of n rows (n ≥ 1) the next SQLite statement
// takes: the largest power of two up to n, at most maxChunkRows. n rows
// then take one statement per bit of n (52 = 32+16+4: three), where the
// sizes of chunk (128, 32, 8, 1) took up to eleven (52 = 32+8+8+1+1+1+1:
// seven); every statement has its fixed cost of binding, stepping and
// resetting on the single writer (BENCHMARKS.md, issue #23, session 34).
// Eight sizes keep the statement texts per query few (one cached prepared
// statement each).
func rowChunk(n int) int {
	size := maxChunkRows
	for size > n {
		size /= 2
	}
	return size
}

// unnest is the PostgreSQL table: unnest(CAST(? AS text[]), ...) AS v(column1, ...).
func (r *rowSet) unnest() string {
	var b strings.Builder
	b.WriteString("unnest(")
	for i, t := range r.types {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("CAST(? AS " + t + "[])")
	}
	b.WriteString(") AS v(")
	for i := range r.types {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("column" + strconv.Itoa(i+1))
	}
	b.WriteString(")")
	return b.String()
}

// columns returns the values as one typed slice per column, the arrays of
// the PostgreSQL table.
func (r *rowSet) columns() []any {
	cols, n := len(r.types), r.len()
	out := make([]any, cols)
	for j, t := range r.types {
		switch t {
		case "text":
			c := make([]string, n)
			for i := range c {
				c[i] = r.vals[i*cols+j].(string)
			}
			out[j] = c
		case "bigint":
			c := make([]int64, n)
			for i := range c {
				c[i] = r.vals[i*cols+j].(int64)
			}
			out[j] = c
		case "boolean":
			c := make([]bool, n)
			for i := range c {
				c[i] = r.vals[i*cols+j].(bool)
			}
			out[j] = c
		default:
			panic("sqlstore: rowSet column of type " + t)
		}
	}
	return out
}

// valuesTable is the SQLite table of n rows of cols values.
func valuesTable(n, cols int) string {
	row := "(" + placeholders(cols) + ")"
	return "(VALUES " + strings.TrimSuffix(strings.Repeat(row+",", n), ",") + ") AS v"
}

// queryAll runs a read (or a statement with RETURNING) in the transaction
// whose rows the caller reads to the end and closes before its next
// statement, as collect and each do. Unlike query it may therefore use the
// writer's cached prepared statement on SQLite.
func (t *Tx) queryAll(ctx context.Context, query string, args ...any) (rowsIter, error) {
	if t.pipe != nil {
		return t.pipe.query(ctx, t.db.q(query), args)
	}
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	if t.db.wstmts != nil {
		t.missed = append(t.missed, query)
	}
	return t.tx.QueryContext(ctx, t.db.q(query), args...)
}
