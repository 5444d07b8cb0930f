package sqlstore

// Pipelined transactions on PostgreSQL: the send path's statements go to
// the server several at a time, each group in one round trip.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// A commit batch on PostgreSQL is a few statements, most of them cheap; the
// committer waits a round trip for each, and on a loaded machine a round
// trip is mostly the wait for the committer's goroutine and the backend to
// be scheduled again (BENCHMARKS.md, issue #23). A pipelined transaction
// sends BEGIN with the first statement and COMMIT with the last, and a
// statement whose result is not needed at once (later) with the next one
// that is. Its statements run on pgx directly, on a connection of the
// writer pool, not through database/sql.
type pipeline struct {
	conn   *pgx.Conn
	begun  bool     // BEGIN has been sent
	queued []queued // statements to send with the next round trip
	open   *pgRows  // the rows of the last round trip, until closed
}

// rollbackTimeout bounds the ROLLBACK of a failed pipelined transaction,
// whose own context may be what failed it.
const rollbackTimeout = 5 * time.Second

// queued is a statement sent with the next round trip; read, when set, gets
// its rows, and a non-nil error from it fails that round trip.
type queued struct {
	query  string
	args   []any
	read   func(scanner) error
	custom bool // planned for its arguments each time (laterCustom)
}

// inPipelinedTx runs fn in a pipelined write transaction on PostgreSQL and
// commits it when fn returns nil, the commit travelling with whatever fn
// left queued. On SQLite it is inTx.
func (db *DB) inPipelinedTx(ctx context.Context, fn func(tx *Tx) error) error {
	if db.dialect != Postgres {
		return db.inTx(ctx, fn)
	}
	return onPgx(ctx, db.w, func(conn *pgx.Conn) error {
		p := &pipeline{conn: conn}
		tx := &Tx{db: db, pipe: p}
		if err := fn(tx); err != nil {
			p.rollback()
			return err
		}
		if err := p.commit(ctx); err != nil {
			p.rollback()
			return err
		}
		return nil
	})
}

// later runs a statement whose result can wait: on a pipelined transaction
// it goes with the next round trip and read (if any) sees its rows then;
// otherwise it runs now. A failure surfaces from that round trip.
func (t *Tx) later(ctx context.Context, query string, args []any, read func(scanner) error) error {
	return t.queue(ctx, queued{query: query, args: args, read: read})
}

// queue queues q (query not yet rebound) on a pipelined transaction, or
// runs it now.
func (t *Tx) queue(ctx context.Context, q queued) error {
	if t.pipe != nil {
		q.query = t.db.q(q.query)
		t.pipe.queued = append(t.pipe.queued, q)
		return nil
	}
	query, args, read := q.query, q.args, q.read
	if read == nil {
		_, err := t.exec(ctx, query, args...)
		return err
	}
	rows, err := t.queryAll(ctx, query, args...)
	return each(rows, err, read)
}

// laterCustom is later for a statement whose best plan depends on how big
// its tables are now: on a pipelined transaction PostgreSQL plans it for
// its arguments and the tables' current sizes each time, instead of
// reusing the generic plan it cached on the connection. A generic plan made
// while a table was small (a new database; autovacuum has not analyzed it
// yet) can scan the whole table on every batch once it has grown: the
// duplicate lookup scanned messages, 1,695 times in an 8-s run, until
// planned per batch (BENCHMARKS.md, issue #23).
func (t *Tx) laterCustom(ctx context.Context, query string, args []any, read func(scanner) error) error {
	return t.queue(ctx, queued{query: query, args: args, read: read, custom: true})
}

// flush sends what later queued (and BEGIN, if not sent yet) and runs the
// reads; a no-op but on a pipelined transaction.
func (t *Tx) flush(ctx context.Context) error {
	if t.pipe == nil || len(t.pipe.queued) == 0 {
		return nil
	}
	br, err := t.pipe.send(ctx, "")
	if err != nil {
		return err
	}
	return br.Close()
}

// send sends BEGIN if not sent yet, the queued statements, and last (when
// not empty), in one round trip. It reads the results of all but last and
// returns the batch with last's result still to read.
func (p *pipeline) send(ctx context.Context, last string, args ...any) (pgx.BatchResults, error) {
	if p.open != nil {
		return nil, errors.New("sqlstore: statement on a pipelined transaction with rows still open")
	}
	b := &pgx.Batch{}
	begin := !p.begun
	if begin {
		b.Queue("begin")
		p.begun = true
	}
	qs := p.queued
	p.queued = nil
	for _, q := range qs {
		if q.custom {
			b.Queue("set local plan_cache_mode = force_custom_plan")
		}
		b.Queue(q.query, q.args...)
		if q.custom {
			b.Queue("set local plan_cache_mode = default")
		}
	}
	if last != "" {
		b.Queue(last, args...)
	}
	br := p.conn.SendBatch(ctx, b)
	err := func() error {
		if begin {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		for _, q := range qs {
			if q.custom {
				if _, err := br.Exec(); err != nil {
					return err
				}
			}
			if err := readQueued(br, q); err != nil {
				return err
			}
			if q.custom {
				if _, err := br.Exec(); err != nil {
					return err
				}
			}
		}
		return nil
	}()
	if err != nil {
		br.Close()
		return nil, err
	}
	return br, nil
}

// readQueued reads the result of a queued statement.
func readQueued(br pgx.BatchResults, q queued) error {
	if q.read == nil {
		_, err := br.Exec()
		return err
	}
	rows, err := br.Query()
	return each(pgRows{rows: rows}, err, q.read)
}

// exec runs query (already rebound) after what is queued.
func (p *pipeline) exec(ctx context.Context, query string, args []any) (sql.Result, error) {
	br, err := p.send(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return pgResult(tag), nil
}

// query runs query (already rebound) after what is queued; the rows must
// be closed before the transaction's next statement.
func (p *pipeline) query(ctx context.Context, query string, args []any) (rowsIter, error) {
	br, err := p.send(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	p.open = &pgRows{rows: rows, batch: br, done: func() { p.open = nil }}
	return p.open, nil
}

// commit sends what is queued and COMMIT in one round trip. A transaction
// that sent nothing has nothing to commit.
func (p *pipeline) commit(ctx context.Context) error {
	if !p.begun && len(p.queued) == 0 {
		return nil
	}
	br, err := p.send(ctx, "commit")
	if err != nil {
		return err
	}
	_, err = br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// rollback ends a transaction that failed. When the connection cannot say
// so it is closed, and the pool drops it, rather than hand out a
// connection inside a transaction.
func (p *pipeline) rollback() {
	if p.open != nil {
		p.open.Close()
	}
	if !p.begun {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
	defer cancel()
	if _, err := p.conn.Exec(ctx, "rollback"); err != nil {
		p.conn.Close(ctx)
	}
}

// pgRows adapts pgx's rows to rowsIter; for the last statement of a round
// trip it also ends the batch when closed.
type pgRows struct {
	rows  pgx.Rows
	batch pgx.BatchResults
	done  func()
}

func (r pgRows) Next() bool             { return r.rows.Next() }
func (r pgRows) Scan(dest ...any) error { return r.rows.Scan(dest...) }
func (r pgRows) Err() error             { return r.rows.Err() }

func (r pgRows) Close() error {
	r.rows.Close()
	err := r.rows.Err()
	if r.batch != nil {
		if cerr := r.batch.Close(); err == nil {
			err = cerr
		}
	}
	if r.done != nil {
		r.done()
	}
	return err
}

// pgRow is queryRow's row on a pipelined transaction: like *sql.Row, Scan
// reads the first row and answers sql.ErrNoRows when there is none.
type pgRow struct {
	rows rowsIter
	err  error
}

func (r *pgRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Close(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	return r.rows.Close()
}

// pgResult is a command tag as a sql.Result.
type pgResult pgconn.CommandTag

func (r pgResult) RowsAffected() (int64, error) { return pgconn.CommandTag(r).RowsAffected(), nil }
func (r pgResult) LastInsertId() (int64, error) {
	return 0, errors.New("sqlstore: no LastInsertId on PostgreSQL")
}

// queryDirect runs a read statement and hands its rows to read, which
// must be done with them when it returns. On PostgreSQL the statement runs
// on pgx directly, on a connection of the read pool: database/sql and pgx's
// stdlib adapter then convert no value twice (each column of a page of
// history went through a driver.Value and convertAssign; pgx decodes it
// straight into the destination). On SQLite it is query.
func (db *DB) queryDirect(ctx context.Context, query string, args []any, read func(rowsIter, error) error) error {
	if db.dialect != Postgres {
		rows, err := db.query(ctx, query, args...)
		return read(rows, err)
	}
	return onPgx(ctx, db.r, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, db.q(query), args...)
		if err != nil {
			return err
		}
		return read(pgRows{rows: rows}, nil)
	})
}

// onPgx runs fn on the pgx connection under one connection of pool,
// which it holds meanwhile.
func onPgx(ctx context.Context, pool *sql.DB, fn func(*pgx.Conn) error) error {
	c, err := pool.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("sqlstore: a pgx statement on a %T connection", dc)
		}
		return fn(sc.Conn())
	})
}
