package socketio_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/testenv"
)

// TestInteropNodeClient runs the real socket.io-client (e2e/js) against the
// test-suite server over polling+upgrade, WebSocket only and polling only.
func TestInteropNodeClient(t *testing.T) {
	dir := testenv.NodeDir(t)
	base := MustStart(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "sio-interop.mjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SIO_URL="+base)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sio-interop.mjs: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
