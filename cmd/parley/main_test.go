package main

import (
	"io"
	"log/slog"
	"strings"
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

// TestParseBusAndProxies checks the multi-node settings: a NATS bus URL
// passes through, trusted proxies parse as CIDR ranges or single addresses.
func TestParseBusAndProxies(t *testing.T) {
	none := func(string) string { return "" }
	t.Run("OK", func(t *testing.T) {
		cfg, _, err := parse([]string{"--bus", "nats://10.0.0.9:4222", "--trusted-proxies", "10.0.0.0/8, 192.168.1.5,::1"}, none, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Bus != "nats://10.0.0.9:4222" {
			t.Fatalf("bus = %q", cfg.Bus)
		}
		var got []string
		for _, p := range cfg.TrustedProxies {
			got = append(got, p.String())
		}
		if strings.Join(got, " ") != "10.0.0.0/8 192.168.1.5/32 ::1/128" {
			t.Fatalf("trusted proxies = %v", got)
		}
	})
	t.Run("ErrBadProxy", func(t *testing.T) {
		if _, _, err := parse([]string{"--trusted-proxies", "lb.example.com"}, none, io.Discard); err == nil {
			t.Fatal("a host name was accepted as a trusted proxy")
		}
	})
}
