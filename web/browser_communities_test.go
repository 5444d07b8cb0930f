package web_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/server"
)

// TestBrowserCommunities runs web/browser/communities.mjs in Debian's
// Chromium against a whole server: a private community created in one
// browser, a join request from another approved in the first one's page,
// channel keys handed over by the admin's open client on
// channel_key_needed (at once, or when the admin's client comes back while
// the member waits), channel messages (with a reply and a like) decrypted
// in the member's browser, a private channel, an announcement channel without a
// composer for the member, a pinned message in the Pinned list, a reload
// on a channel's address, the community deleted live, a public community
// read with its community key and left, a rejected request, and an
// axe-core scan of the community and
// channel screens. The script checks every request body and socket frame
// for the plaintext canary; this test then checks the database files and
// the server's logs. Screenshots and axe reports go to $PARLEY_ARTIFACTS
// (default web/testdata/artifacts), named communities-*.
func TestBrowserCommunities(t *testing.T) {
	dir, artifacts := browserTools(t)
	data := t.TempDir()
	dbFile := filepath.Join(data, "parley.db")
	logs := &lockedBuffer{}
	srv := apitest.MustStart(t, "sqlite", func(c *server.Config) {
		c.DataDir = data
		c.DB = "sqlite:" + dbFile
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.AuthRatePerMinute = 0
	})
	canary := "canary-" + parley.NewID("x")[2:]

	runScenario(t, dir, artifacts, "communities.mjs", srv.URL(), artifacts, canary)

	// The canary typed in the UI is in no file the server wrote (the
	// database with its write-ahead log) and in no log line.
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
		if bytes.Contains(b, []byte(canary)) {
			t.Errorf("plaintext canary found in %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("the server wrote no files: the check above checked nothing")
	}
	l := logs.String()
	for _, route := range []string{"/api/channel-messages/send", "/api/channels/keys", "/api/communities/requests/approve"} {
		if !strings.Contains(l, route) {
			t.Fatalf("the server logged no %s: the scenario did not run it, or the log check checks nothing", route)
		}
	}
	if strings.Contains(l, canary) {
		t.Error("plaintext canary found in the server's logs")
	}
}
