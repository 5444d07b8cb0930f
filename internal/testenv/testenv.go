// Package testenv decides whether an integration suite that needs an outside
// service (PostgreSQL, NATS, Node) runs, skips or fails.
//
// On a laptop a missing service skips the suite with a one-line reason. In CI
// (the environment variable CI=true) every integration suite must run, so a
// missing service fails the test instead.
package testenv

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI, where skipping is not allowed.
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable skips tb with reason, or fails it when running in CI.
func Unavailable(tb testing.TB, reason string) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("CI=true but %s", reason)
	}
	tb.Skip(reason)
}

// RequireTCP makes sure something listens on addr (host:port), or skips/fails.
func RequireTCP(tb testing.TB, what, addr string) {
	tb.Helper()
	d := net.Dialer{Timeout: 2 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		Unavailable(tb, what+" is not reachable at "+addr)
		return
	}
	c.Close()
}

// PostgresURL returns the URL of the PostgreSQL server used by the tests
// (PARLEY_TEST_POSTGRES, default postgres://postgres@127.0.0.1:5432/test),
// after checking that it accepts TCP connections.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("PARLEY_TEST_POSTGRES")
	if u == "" {
		u = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	RequireTCP(tb, "PostgreSQL", "127.0.0.1:5432")
	return u
}

// NATSURL returns the URL of the NATS server used by the tests
// (PARLEY_TEST_NATS, default nats://127.0.0.1:4222), after checking it is up.
func NATSURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("PARLEY_TEST_NATS")
	if u == "" {
		u = "nats://127.0.0.1:4222"
	}
	RequireTCP(tb, "NATS", "127.0.0.1:4222")
	return u
}

// RepoRoot returns the repository's top folder (the one holding go.mod).
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// NodeDir returns the folder of the JavaScript test clients (e2e/js) after
// checking that node is installed and the npm packages are present.
func NodeDir(tb testing.TB) string {
	tb.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		Unavailable(tb, "node is not installed")
		return ""
	}
	dir := filepath.Join(RepoRoot(tb), "e2e", "js")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "socket.io-client")); err != nil {
		Unavailable(tb, "npm packages missing: run npm ci --prefix e2e/js")
		return ""
	}
	return dir
}
