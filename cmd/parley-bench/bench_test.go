package main

import (
	"context"
	"io"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/server"
)

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func benchCommon(t *testing.T, srv *server.Server, users int) common {
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	return common{base: u, users: users, sourceIPs: 2, timeout: 5 * time.Second, concurrency: 4, limit: time.Minute}
}

// TestScenarios runs both scenarios, small, against a whole server with
// its debug listener on.
func TestScenarios(t *testing.T) {
	debug := freeAddr(t)
	srv := apitest.MustStart(t, "sqlite", func(c *server.Config) { c.DebugAddr = debug })
	ctx := context.Background()

	t.Run("Idle", func(t *testing.T) {
		cfg := idleConfig{common: benchCommon(t, srv, 3), conns: 30, debugURL: "http://" + debug}
		res, err := runIdle(ctx, cfg, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if res.Connected != 30 || res.Failed != 0 || res.Dropped != 0 {
			t.Fatalf("connected %d, failed %d (%v), dropped %d", res.Connected, res.Failed, res.Errors, res.Dropped)
		}
		if res.Before.Connections != 0 || res.After.Connections != 30 || res.After.HeapInuse == 0 {
			t.Fatalf("server samples: before %+v after %+v", res.Before, res.After)
		}
		deadline := time.Now().Add(5 * time.Second)
		for srv.Hub().Connections() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := srv.Hub().Connections(); n != 0 {
			t.Fatalf("%d sockets left open", n)
		}
	})

	t.Run("Direct", func(t *testing.T) {
		cfg := directConfig{common: benchCommon(t, srv, 4), rate: 200, duration: time.Second, grace: 3 * time.Second, size: 64, maxInflight: 8}
		res, err := runDirect(ctx, cfg, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if res.Sent < 100 || res.Acked != res.Sent || res.Failed != 0 || res.Unanswered != 0 {
			t.Fatalf("sent %d acked %d failed %d unanswered %d errors %v", res.Sent, res.Acked, res.Failed, res.Unanswered, res.Errors)
		}
		if res.Lost != 0 || res.Duplicated != 0 || res.Stray != 0 || res.Received != int(res.Acked) || len(res.E2E) != int(res.Acked) {
			t.Fatalf("received %d lost %d dup %d stray %d e2e samples %d", res.Received, res.Lost, res.Duplicated, res.Stray, len(res.E2E))
		}
	})
}

func TestLoopbackOnly(t *testing.T) {
	for _, raw := range []string{"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:80", "http://127.0.0.9"} {
		if _, err := loopbackURL(raw); err != nil {
			t.Errorf("%s refused: %v", raw, err)
		}
	}
	for _, raw := range []string{"http://10.0.0.1:8080", "http://example.com", "http://0.0.0.0:8080", "ftp://127.0.0.1", "http://127.0.0.1.example.com"} {
		if _, err := loopbackURL(raw); err == nil {
			t.Errorf("%s accepted", raw)
		}
	}
}
