package web_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/server"
)

// TestBrowserStatuses runs web/browser/statuses.mjs in Debian's Chromium
// against a whole server: ann posts a text status (the canary in it) to
// her contacts bob and carol; bob sees her ring unviewed, opens it and
// reads the text, decrypted with his own key; ann's viewers list shows bob
// only, then carol too, live; a photo status for all except carol reaches
// bob and not carol, and ann deletes it; a video status plays for bob; a
// status shared only with carol reaches her and not bob; the viewer
// advances by itself; axe-core finds no serious or critical violation on
// the strip (light and dark), the composer or the viewer. The scenario checks that no request body or
// socket frame holds the canary or the photo; this test then checks that
// no file the server wrote and no log line does either. Screenshots and
// axe reports go to $PARLEY_ARTIFACTS (default web/testdata/artifacts),
// named statuses-*.
func TestBrowserStatuses(t *testing.T) {
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
	// The scenario posts this picture as a photo status: a piece of it past
	// the PNG header must be in no file the server wrote.
	photo, err := os.ReadFile(filepath.Join(dir, "static", "icon-192.png"))
	if err != nil {
		t.Fatal(err)
	}

	runScenario(t, dir, artifacts, "statuses.mjs", srv.URL(), artifacts, canary)

	noPlaintext(t, data, logs.String(), "/api/statuses/create", canary, string(photo[64:160]))
}
