package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/web"
)

// TestServePWA: the service worker is served at /sw.js (so its scope can
// be the whole client) as JavaScript with the client's CSP; the manifest
// is application/manifest+json and names icons that are served, of the
// sizes it says; the calls and admin pages are client routes.
func TestServePWA(t *testing.T) {
	base := apitest.MustStart(t, "sqlite", nil).URL()
	get := func(t *testing.T, path string) (*http.Response, []byte) {
		t.Helper()
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, b
	}

	t.Run("ServiceWorker", func(t *testing.T) {
		res, body := get(t, "/sw.js")
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
			t.Fatalf("GET /sw.js: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
		}
		if res.Header.Get("Service-Worker-Allowed") != "/" || res.Header.Get("Content-Security-Policy") != web.CSP ||
			res.Header.Get("Cache-Control") != "no-cache" || res.Header.Get("ETag") == "" {
			t.Fatalf("GET /sw.js headers: %v", res.Header)
		}
		for _, want := range []string{"addEventListener('push'", "addEventListener('notificationclick'", "showNotification("} {
			if !bytes.Contains(body, []byte(want)) {
				t.Fatalf("/sw.js has no %s", want)
			}
		}
		// One copy, one URL: the worker is not also a /static/ file with a
		// narrower scope.
		if res, _ := get(t, "/static/sw.js"); res.StatusCode != 404 {
			t.Fatalf("GET /static/sw.js: %d, want 404", res.StatusCode)
		}
	})

	t.Run("Manifest", func(t *testing.T) {
		res, body := get(t, "/static/manifest.webmanifest")
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/manifest+json" {
			t.Fatalf("GET manifest: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
		}
		var m struct {
			Name      string `json:"name"`
			ShortName string `json:"short_name"`
			StartURL  string `json:"start_url"`
			Scope     string `json:"scope"`
			Display   string `json:"display"`
			Icons     []struct{ Src, Sizes, Type, Purpose string }
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("manifest: %v", err)
		}
		if m.Name != "Parley" || m.ShortName == "" || m.StartURL != "/" || m.Scope != "/" || m.Display != "standalone" {
			t.Fatalf("manifest = %+v", m)
		}
		pngs, maskable := 0, false
		for _, ic := range m.Icons {
			res, b := get(t, ic.Src)
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != ic.Type {
				t.Fatalf("icon %s: %d %q, manifest says %q", ic.Src, res.StatusCode, res.Header.Get("Content-Type"), ic.Type)
			}
			if ic.Type != "image/png" {
				continue
			}
			img, err := png.DecodeConfig(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("icon %s: %v", ic.Src, err)
			}
			if got := strconv.Itoa(img.Width) + "x" + strconv.Itoa(img.Height); got != ic.Sizes {
				t.Fatalf("icon %s is %s, manifest says %s", ic.Src, got, ic.Sizes)
			}
			pngs++
			maskable = maskable || ic.Purpose == "maskable"
		}
		if pngs < 2 || !maskable {
			t.Fatalf("%d PNG icons, maskable %v: browsers want 192 and 512 px and a maskable one", pngs, maskable)
		}
		_, index := get(t, "/")
		if !bytes.Contains(index, []byte(`<link rel="manifest" href="/static/manifest.webmanifest">`)) {
			t.Fatal("index.html does not link the manifest")
		}
	})

	t.Run("ClientRoutes", func(t *testing.T) {
		for _, p := range []string{"/calls", "/admin"} {
			res, body := get(t, p)
			if res.StatusCode != 200 || !bytes.Contains(body, []byte("<parley-app>")) {
				t.Fatalf("GET %s: %d", p, res.StatusCode)
			}
		}
	})
}

// TestTypeCheckWorker runs tsc over the service worker's JSDoc types with
// the worker's library (web/tsconfig.sw.json); the pages' check
// (TestTypeCheck) uses the DOM's.
func TestTypeCheckWorker(t *testing.T) {
	dir := devTools(t, "typescript")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.sw.json")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tsc -p tsconfig.sw.json: %v\n%s", err, out)
	}
}
