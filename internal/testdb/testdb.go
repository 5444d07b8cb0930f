// Package testdb opens fresh, migrated Parley databases for tests: a SQLite
// file in a temporary folder, or a new PostgreSQL database with a unique
// name on the test server, dropped when the test ends.
package testdb

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/sqlstore"
)

// Backends are the database backends every store and service suite runs on.
var Backends = []string{"sqlite", "postgres"}

// DSN returns the dsn of a fresh, empty database of the given backend; the
// database is dropped when tb ends. It skips (or fails in CI) when
// PostgreSQL is unreachable.
func DSN(tb testing.TB, backend string) string {
	tb.Helper()
	switch backend {
	case "sqlite":
		return "sqlite:" + filepath.Join(tb.TempDir(), "parley.db")
	case "postgres":
		admin := testenv.PostgresURL(tb)
		name := "parley_test_" + parley.NewID("db")[3:]
		adb, err := sql.Open("pgx", admin)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := adb.Exec(`CREATE DATABASE ` + name); err != nil {
			adb.Close()
			tb.Fatalf("create test database: %v", err)
		}
		tb.Cleanup(func() {
			if _, err := adb.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`); err != nil {
				tb.Logf("drop test database %s: %v", name, err)
			}
			adb.Close()
		})
		u, err := url.Parse(admin)
		if err != nil {
			tb.Fatal(err)
		}
		u.Path = "/" + name
		return u.String()
	}
	tb.Fatalf("unknown backend %q", backend)
	return ""
}

// MustOpen opens a fresh migrated database of the given backend, closed and
// dropped when tb ends.
func MustOpen(tb testing.TB, backend string) *sqlstore.DB {
	tb.Helper()
	db, err := sqlstore.Open(context.Background(), DSN(tb, backend))
	if err != nil {
		tb.Fatalf("open %s: %v", backend, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// Each runs fn as a subtest once per backend with a fresh database.
func Each(t *testing.T, fn func(t *testing.T, db *sqlstore.DB)) {
	t.Helper()
	for _, b := range Backends {
		t.Run(b, func(t *testing.T) {
			fn(t, MustOpen(t, b))
		})
	}
}
