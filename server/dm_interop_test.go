package server_test

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
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
	t.Parallel()
	dir := testenv.NodeDir(t)
	for _, transport := range []string{"default", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			srv := apitest.MustStart(t, "sqlite", func(c *server.Config) {
				c.ScheduleTick = 100 * time.Millisecond
				c.PresenceGrace = time.Second
			})
			runScript(t, dir, "parley-dm.mjs", srv, transport)
		})
	}
}

// TestGroupsSocketIOClient runs e2e/js/parley-groups.mjs: four users of the
// real npm socket.io-client exercise every group rule, over the default
// transports and over WebSocket only.
func TestGroupsSocketIOClient(t *testing.T) {
	t.Parallel()
	dir := testenv.NodeDir(t)
	for _, transport := range []string{"default", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			srv := apitest.MustStart(t, "sqlite", nil)
			runScript(t, dir, "parley-groups.mjs", srv, transport)
		})
	}
}

// runScript runs an end-to-end script of e2e/js against srv, then checks
// every REST answer, event and ack it recorded against the OpenAPI and
// AsyncAPI documents (issue #13's conformance test): no undocumented field,
// no missing required one.
func runScript(t *testing.T, dir, script string, srv *server.Server, transport string) {
	t.Helper()
	rec := filepath.Join(t.TempDir(), "record.jsonl")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "PARLEY_URL="+srv.URL(), "TRANSPORT="+transport, "PARLEY_RECORD="+rec)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"ok":true`) {
		t.Fatalf("%s (%s): %v\n%s", script, transport, err, out)
	}
	ct, err := apitest.LoadContract(http.DefaultClient, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	n, problems, err := ct.CheckRecording(rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s (%s) saw an answer the documents do not describe: %s", script, transport, p)
	}
	if n < 30 {
		t.Fatalf("%s (%s) recorded only %d answers and events", script, transport, n)
	}
	t.Logf("%s (%s): %d recorded answers, events and acks checked against the documents", script, transport, n)
}
