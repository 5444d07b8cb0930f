package jobs

import (
	"context"
	"sync"
	"time"
)

// LocalLeases keeps leases in this process's memory: for a node that
// shares its database with no other node (the embedded SQLite database),
// where a lease in the database would cost a write at every renewal and,
// with SQLite, make every reader reload its page cache after it.
type LocalLeases struct {
	mu     sync.Mutex
	leases map[string]localLease
}

type localLease struct {
	holder string
	until  time.Time
}

// NewLocalLeases returns an empty set of in-memory leases.
func NewLocalLeases() *LocalLeases { return &LocalLeases{leases: map[string]localLease{}} }

// TakeLease implements Leases.
func (l *LocalLeases) TakeLease(_ context.Context, name, holder string, now, until time.Time) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur, ok := l.leases[name]; ok && cur.holder != holder && cur.until.After(now) {
		return false, nil
	}
	l.leases[name] = localLease{holder: holder, until: until}
	return true, nil
}

// ReleaseLease implements Leases.
func (l *LocalLeases) ReleaseLease(_ context.Context, name, holder string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur, ok := l.leases[name]; ok && cur.holder == holder {
		delete(l.leases, name)
	}
	return nil
}
