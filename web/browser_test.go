package web_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/server"
)

// chromium is Debian's Chromium; the suite never downloads a browser.
const chromium = "/usr/bin/chromium"

// devTools returns web/'s folder once node, Chromium and the npm dev
// dependencies (playwright-core, axe-core, typescript) are there; locally
// it skips with the reason, under CI=true it fails.
func devTools(t *testing.T, need ...string) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		testenv.Unavailable(t, "node not found: the web client's browser and type checks need Node")
	}
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range need {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", p)); err != nil {
			testenv.Unavailable(t, "npm dev dependencies missing: run npm ci --prefix web")
		}
	}
	return dir
}

// browserTools returns web/'s folder and the folder for screenshots and
// reports ($PARLEY_ARTIFACTS, default web/testdata/artifacts) once node,
// the npm dev dependencies and Chromium are there.
func browserTools(t *testing.T) (dir, artifacts string) {
	t.Helper()
	dir = devTools(t, "playwright-core", "axe-core")
	if _, err := os.Stat(chromium); err != nil {
		testenv.Unavailable(t, "chromium not found at "+chromium+": apt-get install chromium")
	}
	artifacts = os.Getenv("PARLEY_ARTIFACTS")
	if artifacts == "" {
		artifacts = filepath.Join(dir, "testdata", "artifacts")
	}
	return dir, artifacts
}

// runScenario runs browser/script with node and args in Debian's
// Chromium, logs its output and fails the test when it fails. The
// 10-minute bound is a bound, not a speed (3 minutes at load 36).
func runScenario(t *testing.T, dir, artifacts, script string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{filepath.Join(dir, "browser", script)}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1", "PARLEY_CHROMIUM="+chromium)
	out, err := cmd.CombinedOutput()
	t.Logf("scenario output:\n%s", out)
	if err != nil {
		t.Fatalf("browser scenario failed: %v (screenshots in %s)", err, artifacts)
	}
}

// lockedBuffer collects the server's log lines from every goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBrowser runs the web client's scenarios in a real Chromium
// (browser/scenario.mjs, driven by playwright-core) against a whole
// server: two users exchanging messages with ticks, typing and a reload;
// a second device; offline then online; a group of three with an image;
// safety codes; an accessibility scan of the main screens. Then it checks
// that the plaintext canary typed in the UI is nowhere in the database
// files, the media folder or the server's logs (the script checks every
// request body and socket frame). Screenshots and axe reports go to
// $PARLEY_ARTIFACTS (default web/testdata/artifacts).
func TestBrowser(t *testing.T) {
	dir, artifacts := browserTools(t)
	data := t.TempDir()
	logs := &lockedBuffer{}
	srv := apitest.MustStart(t, "sqlite", func(c *server.Config) {
		c.DataDir = data
		c.DB = "sqlite:" + filepath.Join(data, "parley.db")
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		// Three users register in one run; sign-in limits are not under test.
		c.AuthRatePerMinute = 0
	})
	canary := "canary-" + parley.NewID("x")[2:]

	runScenario(t, dir, artifacts, "scenario.mjs", srv.URL(), artifacts, canary, filepath.Join(data, "mail"))

	noPlaintext(t, data, logs.String(), "/api/messages/send", canary)
}

// noPlaintext fails the test when one of secrets (the plaintext canary
// typed in the UI, a piece of a file sent encrypted) is in a file under
// data (the database, the media folder) or in the server's logs. logged
// is a route the logs must name, so that the log check is known to check
// something.
func noPlaintext(t *testing.T, data, logs, logged string, secrets ...string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(data, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for i, secret := range secrets {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("plaintext secret %d found in %s", i, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("the server wrote no files: the check above checked nothing")
	}
	if !strings.Contains(logs, logged) {
		t.Fatalf("the server logged no %s: the log check checks nothing", logged)
	}
	for i, secret := range secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("plaintext secret %d found in the server's logs", i)
		}
	}
}

// TestTypeCheck runs the TypeScript compiler over the client's JSDoc types
// (tsc --checkJs --noEmit, web/tsconfig.json). TypeScript is a dev tool
// only: nothing it produces is served.
func TestTypeCheck(t *testing.T) {
	dir := devTools(t, "typescript")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tsc --checkJs: %v\n%s", err, out)
	}
}
