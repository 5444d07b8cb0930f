package server_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/server"
)

// TestDirectMessagesSocketIOClient runs e2e/js/parley-dm.mjs: two users of
// the real npm socket.io-client exercise every direct-message route and
// event, over the default transports (polling, then upgrade) and over
// WebSocket only.
func TestDirectMessagesSocketIOClient(t *testing.T) {
	dir := testenv.NodeDir(t)
	for _, transport := range []string{"default", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			srv := apitest.MustStart(t, "sqlite", func(c *server.Config) {
				c.ScheduleTick = 100 * time.Millisecond
				c.PresenceGrace = time.Second
			})
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "node", "parley-dm.mjs")
			cmd.Dir = dir
			cmd.Env = append(cmd.Environ(), "PARLEY_URL="+srv.URL(), "TRANSPORT="+transport)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), `"ok":true`) {
				t.Fatalf("parley-dm.mjs (%s): %v\n%s", transport, err, out)
			}
		})
	}
}

// TestGroupsSocketIOClient runs e2e/js/parley-groups.mjs: four users of the
// real npm socket.io-client exercise every group rule, over the default
// transports and over WebSocket only.
func TestGroupsSocketIOClient(t *testing.T) {
	dir := testenv.NodeDir(t)
	for _, transport := range []string{"default", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			srv := apitest.MustStart(t, "sqlite", nil)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "node", "parley-groups.mjs")
			cmd.Dir = dir
			cmd.Env = append(cmd.Environ(), "PARLEY_URL="+srv.URL(), "TRANSPORT="+transport)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), `"ok":true`) {
				t.Fatalf("parley-groups.mjs (%s): %v\n%s", transport, err, out)
			}
		})
	}
}
