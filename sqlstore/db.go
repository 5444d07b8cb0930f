// Package sqlstore implements Parley's stores on SQL databases: SQLite (the
// embedded default, through the pure-Go modernc.org/sqlite driver) and
// PostgreSQL (through pgx). Queries are written once with ? placeholders and
// rebound for PostgreSQL; schema differences live in the per-dialect
// migration folders.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/parley-chat/parley"
)

//go:embed migrations
var migrationFS embed.FS

// Dialect names a supported SQL database.
type Dialect string

// Supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is an open Parley database. It implements parley.UserStore,
// parley.SessionStore and parley.SocialStore.
//
// SQLite allows one writer at a time; DB therefore keeps one connection for
// writes (so writers queue in Go instead of failing with "database is
// locked") and a pool of read-only connections. On PostgreSQL both are the
// same pool.
type DB struct {
	dialect Dialect
	w       *sql.DB // writes; one connection on SQLite
	r       *sql.DB // reads
	rebound sync.Map
	// Prepared statements of w and r, on SQLite only (nil on PostgreSQL).
	wstmts, rstmts *stmtCache
	groups         groupCache    // group send states, checked against members_version
	ck             *checkpointer // SQLite only
}

// Open opens and migrates the database named by dsn: "sqlite:PATH" (or a
// bare file path) for SQLite, a "postgres://" URL for PostgreSQL.
func Open(ctx context.Context, dsn string) (*DB, error) {
	var db *DB
	var err error
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db, err = openPostgres(dsn)
	default:
		db, err = openSQLite(strings.TrimPrefix(dsn, "sqlite:"))
	}
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func openSQLite(path string) (*DB, error) {
	if path == "" {
		return nil, fmt.Errorf("sqlite: empty database path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("sqlite: create data folder: %w", err)
		}
	}
	// synchronous=FULL keeps every acknowledged commit across power loss;
	// throughput comes from grouping commits, not from weaker syncing.
	pragmas := "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)"
	base := "file:" + (&url.URL{Path: path}).EscapedPath()
	// temp_store=MEMORY on the writer keeps each statement's journal in
	// memory: a multi-row INSERT that could fail a constraint halfway
	// saves the pages it changes so that it can be undone alone, and with
	// the default those copies went to a temporary file, two write system
	// calls per page (7 % of the server's CPU at 2,000 direct messages/s,
	// BENCHMARKS.md issue #23). It holds at most the pages one statement
	// of the transaction changes.
	//
	// Checkpoints: the checkpointer (checkpoint.go) copies the WAL into the
	// database file every checkpointEvery while writes come in, on its own
	// connection, so that no commit waits for a checkpoint; at 5,000 direct
	// messages/s that took p99 from 42-166 ms to 33-46 ms (BENCHMARKS.md,
	// issue #23, session 35). The writer keeps SQLite's automatic
	// checkpoint, at walHardLimit pages, as the bound on the WAL under
	// constant writes (see checkpointer). Until then the WAL was
	// checkpointed by the commit that took it past 8,000 pages: fewer,
	// larger checkpoints copy fewer pages per message than SQLite's default
	// 1,000 (a direct message dirties about four pages, three of them
	// leaves of indexes the next batches write again); at 5,000-10,000
	// messages/s the checkpointer's period copies as many pages at a time.
	//
	// cache_size(-16384): the writer keeps up to 16 MiB of pages (SQLite's
	// default is 2 MiB). Every message inserts into indexes keyed by
	// sender and by conversation, whose leaves are spread over the whole
	// index; with the default cache many of them had been evicted by the
	// time the next batch wrote them again, and each was read back with a
	// pread from the WAL or the database file (3.6 % of the server's CPU
	// at 10,000 direct messages/s, BENCHMARKS.md, issue #23, session 34).
	// The cache survives from one transaction to the next, since this
	// connection is the only writer. Not larger: SQLite scans the cache's
	// whole hash table at the end of many transactions (pcache1Truncate),
	// 0.7 % of the CPU at 16 MiB and 1.3 % at 64 MiB in the same runs.
	w, err := sql.Open("sqlite", base+"?"+pragmas+"&_pragma=temp_store(2)&_pragma=wal_autocheckpoint("+walHardLimit+")&_pragma=cache_size(-16384)&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	// Create the file and switch it to WAL before readers open it read-only.
	if err := w.Ping(); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// Readers map the file (up to the driver's 2 GiB ceiling) instead of
	// reading each page with a system call: reading history touches one
	// page per message, and on a 7.3 GiB database this alone took reads
	// from 925 to 1,125 pages/s (BENCHMARKS.md). Only reads use the
	// mapping; writes and fsyncs go through the writer as before. The price
	// is SQLite's usual mmap caveat: an I/O error on the disk under a mapped
	// page kills the process (SIGBUS) instead of failing one query.
	r, err := sql.Open("sqlite", base+"?"+pragmas+"&_pragma=query_only(1)&_pragma=mmap_size(2147418112)")
	if err != nil {
		w.Close()
		return nil, err
	}
	n := max(4, runtime.NumCPU()*2)
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	ck, err := sql.Open("sqlite", base+"?"+pragmas)
	if err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	ck.SetMaxOpenConns(1)
	ck.SetMaxIdleConns(1)
	ck.SetConnMaxLifetime(0)
	return &DB{dialect: SQLite, w: w, r: r, wstmts: newStmtCache(w), rstmts: newStmtCache(r), ck: newCheckpointer(ck)}, nil
}

func openPostgres(dsn string) (*DB, error) {
	p, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	p.SetMaxOpenConns(32)
	p.SetMaxIdleConns(32)
	if err := p.Ping(); err != nil {
		p.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	return &DB{dialect: Postgres, w: p, r: p}, nil
}

// Pools returns the connection pools by name, for their statistics:
// "write" and "read" on SQLite (one writer connection, a pool of
// readers), one "main" pool on PostgreSQL.
func (db *DB) Pools() map[string]*sql.DB {
	if db.r == db.w {
		return map[string]*sql.DB{"main": db.w}
	}
	return map[string]*sql.DB{"write": db.w, "read": db.r}
}

// Dialect reports which database this is.
func (db *DB) Dialect() Dialect { return db.dialect }

// Close closes every connection.
func (db *DB) Close() error {
	var err error
	if db.wstmts != nil {
		err = errors.Join(db.wstmts.close(), db.rstmts.close())
	}
	if db.ck != nil {
		err = errors.Join(err, db.ck.close())
	}
	err = errors.Join(err, db.w.Close())
	if db.r != db.w {
		err = errors.Join(err, db.r.Close())
	}
	return err
}

// Stores returns db in every store role it plays.
func (db *DB) Stores() parley.Stores {
	return parley.Stores{Users: db, Sessions: db, Social: db, Conversations: db, Messages: db,
		Receipts: db, Changes: db, Groups: db, Scheduled: db, Media: db, Communities: db, Statuses: db, Analytics: db, Calls: db,
		Notify: db, Mail: db, Tickets: db, Health: db}
}

// Ping checks that the database answers; used by the health check.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.r.PingContext(ctx); err != nil {
		return err
	}
	var one int
	return db.r.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// q rewrites a query written with ? placeholders for the dialect.
func (db *DB) q(query string) string {
	if db.dialect != Postgres {
		return query
	}
	if v, ok := db.rebound.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	s := b.String()
	db.rebound.Store(query, s)
	return s
}

// exec runs a write statement.
func (db *DB) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if db.wstmts != nil {
		if st := db.wstmts.get(ctx, query); st != nil {
			return st.ExecContext(ctx, args...)
		}
	}
	return db.w.ExecContext(ctx, db.q(query), args...)
}

// queryRow runs a read returning one row.
func (db *DB) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if db.rstmts != nil {
		if st := db.rstmts.get(ctx, query); st != nil {
			return st.QueryRowContext(ctx, args...)
		}
	}
	return db.r.QueryRowContext(ctx, db.q(query), args...)
}

// query runs a read returning rows.
func (db *DB) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if db.rstmts != nil {
		if st := db.rstmts.get(ctx, query); st != nil {
			return st.QueryContext(ctx, args...)
		}
	}
	return db.r.QueryContext(ctx, db.q(query), args...)
}

// Tx is a write transaction with placeholder rebinding and, on SQLite,
// the writer's cached prepared statements.
type Tx struct {
	db     *DB
	tx     *sql.Tx              // nil on a pipelined PostgreSQL transaction (pg)
	stmts  map[string]*sql.Stmt // cached statements bound to this transaction
	missed []string             // statements that ran unprepared: prepare them after
	pipe   *pipeline            // a pipelined PostgreSQL transaction (see inPipelinedTx)
}

// stmt returns the transaction's view of the cached statement of query,
// or nil when it is not cached yet (it is then prepared after the
// transaction, see stmtCache).
func (t *Tx) stmt(ctx context.Context, query string) *sql.Stmt {
	if t.db.wstmts == nil {
		return nil
	}
	if st := t.stmts[query]; st != nil {
		return st
	}
	cached := t.db.wstmts.lookup(query)
	if cached == nil {
		return nil
	}
	// Reuses the statement already prepared on this connection; database/sql
	// closes the transaction's view at commit or rollback.
	st := t.tx.StmtContext(ctx, cached)
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	t.stmts[query] = st
	return st
}

func (t *Tx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if t.pipe != nil {
		return t.pipe.exec(ctx, t.db.q(query), args)
	}
	if st := t.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	res, err := t.tx.ExecContext(ctx, t.db.q(query), args...)
	if err == nil && t.db.wstmts != nil {
		t.missed = append(t.missed, query)
	}
	return res, err
}

func (t *Tx) queryRow(ctx context.Context, query string, args ...any) scanner {
	if t.pipe != nil {
		rows, err := t.pipe.query(ctx, t.db.q(query), args)
		return &pgRow{rows: rows, err: err}
	}
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	if t.db.wstmts != nil {
		t.missed = append(t.missed, query)
	}
	return t.tx.QueryRowContext(ctx, t.db.q(query), args...)
}

// query runs a read returning rows in the transaction. It never uses a
// cached statement: all statements of a transaction share one connection,
// and running the same prepared statement again while its rows are still
// open (a nested query with the same text) would reset those rows.
func (t *Tx) query(ctx context.Context, query string, args ...any) (rowsIter, error) {
	if t.pipe != nil {
		return t.pipe.query(ctx, t.db.q(query), args)
	}
	return t.tx.QueryContext(ctx, t.db.q(query), args...)
}

// inTx runs fn in a write transaction, committing when fn returns nil.
func (db *DB) inTx(ctx context.Context, fn func(tx *Tx) error) error {
	stx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	tx := &Tx{db: db, tx: stx}
	if err := fn(tx); err != nil {
		_ = stx.Rollback()
		return err
	}
	err = stx.Commit()
	if db.ck != nil {
		db.ck.writes.Add(1)
	}
	// The writer connection is free again: prepare what ran unprepared, so
	// the next transaction finds it cached.
	for _, q := range tx.missed {
		db.wstmts.get(ctx, q)
	}
	return err
}

// isUniqueViolation reports whether err is a unique or primary-key violation.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	return false
}

// notFound turns sql.ErrNoRows into an ENOTFOUND error naming what.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return parley.Errorf(parley.ENOTFOUND, "%s not found", what)
	}
	return err
}

// migrationLockKey names Parley's PostgreSQL advisory lock for migrations.
const migrationLockKey int64 = 0x7061726c6579 // "parley"

// migrate applies, in order and each in its own transaction, the embedded
// migrations not yet recorded in schema_migrations. On PostgreSQL a lock on
// that table makes nodes starting together apply each migration once, and
// an advisory lock makes them create the table once (concurrent CREATE
// TABLE IF NOT EXISTS statements can fail with a duplicate key).
func (db *DB) migrate(ctx context.Context) error {
	err := db.inTx(ctx, func(tx *Tx) error {
		if db.dialect == Postgres {
			if _, err := tx.exec(ctx, `SELECT pg_advisory_xact_lock(?)`, migrationLockKey); err != nil {
				return err
			}
		}
		_, err := tx.tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	dir := "migrations/" + string(db.dialect)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, name := range names {
		version, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migrate: bad file name %s", name)
		}
		body, err := fs.ReadFile(migrationFS, dir+"/"+name)
		if err != nil {
			return err
		}
		err = db.inTx(ctx, func(tx *Tx) error {
			if db.dialect == Postgres {
				if _, err := tx.exec(ctx, `LOCK TABLE schema_migrations IN EXCLUSIVE MODE`); err != nil {
					return err
				}
			}
			var n int
			if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			_, err := tx.exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				version, name, parley.Millis(timeNow()))
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	return nil
}
