package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// maxCachedStmts bounds the query texts a stmtCache keeps. Parley's static
// queries number well under a hundred; the rest of the room goes to the
// texts whose IN lists vary with the list's length, and once it is full
// new texts simply run unprepared.
const maxCachedStmts = 512

// stmtCache keeps one prepared statement per query text for a *sql.DB, so
// SQLite parses and plans a query once per connection instead of on every
// call (database/sql prepares a *sql.Stmt again only on a connection it has
// not run on yet). It is used for SQLite only: pgx already keeps a cache of
// prepared statements on every PostgreSQL connection.
//
// Statements are prepared through the pool, which needs a free connection:
// never call prepare while holding the only writer connection in a
// transaction. Tx therefore runs a statement missing from the cache
// unprepared and inTx prepares it once the transaction is over.
type stmtCache struct {
	db *sql.DB

	mu     sync.RWMutex
	m      map[string]*sql.Stmt
	closed bool
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}}
}

// lookup returns the cached statement of query, or nil.
func (c *stmtCache) lookup(query string) *sql.Stmt {
	c.mu.RLock()
	st := c.m[query]
	c.mu.RUnlock()
	return st
}

// get returns the statement of query, preparing and caching it on a miss.
// It returns nil (run the query unprepared) when the cache is full or
// closed, or when preparing failed: running the query then reports the
// error with the usual context.
func (c *stmtCache) get(ctx context.Context, query string) *sql.Stmt {
	if st := c.lookup(query); st != nil {
		return st
	}
	if c.full() {
		return nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev := c.m[query]; prev != nil || c.closed || len(c.m) >= maxCachedStmts {
		_ = st.Close() // lost a race, or no room: the statement is not kept
		return prev
	}
	c.m[query] = st
	return st
}

func (c *stmtCache) full() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.closed || len(c.m) >= maxCachedStmts
}

// close closes every cached statement; later gets return nil.
func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, st := range c.m {
		errs = append(errs, st.Close())
		delete(c.m, q)
	}
	c.closed = true
	return errors.Join(errs...)
}

// len returns how many statements are cached.
func (c *stmtCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
