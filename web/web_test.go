package web_test

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/web"
)

// TestServe: the client is served by the whole server at / with its CSP,
// the right content types and ETags; client routes answer index.html, and
// everything else keeps the API's JSON 404.
func TestServe(t *testing.T) {
	base := apitest.MustStart(t, "sqlite", nil).URL()
	get := func(path string, header map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}

	t.Run("OK", func(t *testing.T) {
		for _, p := range []string{"/", "/login", "/register", "/forgot", "/reset", "/settings", "/profile", "/chat/usr_abc",
			"/communities", "/communities/comm_abc", "/communities/comm_abc/channels/chan_abc"} {
			res, body := get(p, nil)
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/html; charset=utf-8" || !strings.Contains(body, "<parley-app>") {
				t.Fatalf("GET %s: %d %s", p, res.StatusCode, res.Header.Get("Content-Type"))
			}
			if got := res.Header.Get("Content-Security-Policy"); got != web.CSP {
				t.Fatalf("GET %s: CSP %q", p, got)
			}
			if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Referrer-Policy") != "no-referrer" {
				t.Fatalf("GET %s: headers %v", p, res.Header)
			}
		}
		for p, ctype := range map[string]string{"/static/js/app.js": "text/javascript; charset=utf-8",
			"/static/app.css": "text/css; charset=utf-8", "/static/icon.svg": "image/svg+xml"} {
			res, body := get(p, nil)
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != ctype || body == "" {
				t.Fatalf("GET %s: %d %q", p, res.StatusCode, res.Header.Get("Content-Type"))
			}
		}
	})
	t.Run("ETag", func(t *testing.T) {
		res, _ := get("/static/js/app.js", nil)
		tag := res.Header.Get("ETag")
		if tag == "" || res.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("ETag %q, Cache-Control %q", tag, res.Header.Get("Cache-Control"))
		}
		again, body := get("/static/js/app.js", map[string]string{"If-None-Match": tag})
		if again.StatusCode != http.StatusNotModified || body != "" {
			t.Fatalf("revalidation: %d with %d bytes", again.StatusCode, len(body))
		}
		other, _ := get("/static/app.css", nil)
		if other.Header.Get("ETag") == tag {
			t.Fatal("two files share an ETag")
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		for _, p := range []string{"/api/nothing", "/nothing", "/chat", "/static/nothing.js", "/static/index.html", "/static/../web.go"} {
			res, body := get(p, nil)
			if res.StatusCode != 404 {
				t.Fatalf("GET %s: %d, want 404", p, res.StatusCode)
			}
			if strings.Contains(body, "<parley-app>") {
				t.Fatalf("GET %s answered the client", p)
			}
			if !strings.HasPrefix(p, "/static/") {
				var env struct {
					Success bool
					Error   struct{ Code string }
				}
				if json.Unmarshal([]byte(body), &env) != nil || env.Success || env.Error.Code != "not_found" {
					t.Fatalf("GET %s: not the API's 404 envelope: %s", p, body)
				}
			}
		}
		req, _ := http.NewRequest("POST", base+"/", strings.NewReader("{}"))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("POST /: %d, want 405", res.StatusCode)
		}
	})
}

// TestStaticFiles: what the CSP promises holds for the files themselves:
// no inline script or handler, no third-party URL, and every module a
// file imports is embedded.
func TestStaticFiles(t *testing.T) {
	root := "static"
	inline := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|\son[a-z]+\s*=|=\s*["']?javascript:`)
	external := regexp.MustCompile(`(?i)(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/`)
	imports := regexp.MustCompile(`(?m)^\s*import\s+(?:[^'"]*\sfrom\s+)?['"]([^'"]+)['"]`)
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := string(b)
		if strings.HasSuffix(p, ".html") && inline.MatchString(s) {
			t.Errorf("%s: inline script or handler", p)
		}
		// The SVG namespace is a name, not a request.
		s = strings.ReplaceAll(s, "http://www.w3.org/2000/svg", "")
		if m := external.FindString(s); m != "" {
			t.Errorf("%s: third-party URL %q", p, m)
		}
		for _, m := range imports.FindAllStringSubmatch(s, -1) {
			target := filepath.Join(filepath.Dir(p), m[1])
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s imports %s, which is not embedded", p, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Fatalf("only %d static files found", n)
	}
}
