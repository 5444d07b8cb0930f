package main

import (
	"io"
	"log/slog"
	"testing"
)

// TestParse checks flags, their PARLEY_* twins, and that the command line wins.
func TestParse(t *testing.T) {
	env := map[string]string{"PARLEY_ADDR": ":9000", "PARLEY_ADMINS": "ann, bob", "PARLEY_AUTH_RATE_LIMIT": "5", "PARLEY_LOG_LEVEL": "debug"}
	getenv := func(k string) string { return env[k] }
	t.Run("OK", func(t *testing.T) {
		cfg, level, err := parse([]string{"--db", "postgres://x/y", "--auth-rate-limit", "7"}, getenv, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Addr != ":9000" || cfg.DB != "postgres://x/y" || cfg.AuthRatePerMinute != 7 || len(cfg.Admins) != 2 || cfg.Admins[1] != "bob" || level != slog.LevelDebug {
			t.Fatalf("cfg = %+v level %v", cfg, level)
		}
		if cfg.DataDir != "./data" || cfg.Bus != "local" {
			t.Fatalf("defaults = %+v", cfg)
		}
	})
	t.Run("ErrBadEnv", func(t *testing.T) {
		bad := func(k string) string { return map[string]string{"PARLEY_AUTH_RATE_LIMIT": "lots"}[k] }
		if _, _, err := parse(nil, bad, io.Discard); err == nil {
			t.Fatal("bad PARLEY_AUTH_RATE_LIMIT accepted")
		}
	})
	t.Run("ErrArgument", func(t *testing.T) {
		if _, _, err := parse([]string{"serve"}, getenv, io.Discard); err == nil {
			t.Fatal("stray argument accepted")
		}
	})
}
