// Package web serves Parley's browser client: static files embedded in the
// binary (go:embed), so `go run ./cmd/parley` serves it with nothing else
// installed. The client is native ES modules and custom elements with no
// runtime dependency; it talks to the same REST API and plain WebSocket as
// every other client.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var files embed.FS

// CSP is the Content-Security-Policy of every response of the client: no
// inline script, no third-party origin, sockets and requests to this
// origin only. Decrypted pictures and videos are shown from blob: URLs.
const CSP = "default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' blob: data:; " +
	"media-src 'self' blob:; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// clientRoutes are the paths the client routes itself (history API): each
// answers index.html, so a reload or a shared link opens the right screen.
// Everything else that is not a file is left to the rest of the server
// (and so answers the API's 404 envelope).
var clientRoutes = []string{"/{$}", "/login", "/register", "/forgot", "/reset", "/settings", "/profile", "/chat/{id}",
	"/calls", "/admin", "/communities", "/communities/{communityId}", "/communities/{communityId}/channels/{channelId}"}

// asset is one embedded file, ready to serve.
type asset struct {
	body []byte
	etag string
	ctyp string
}

// Client serves the embedded web client.
type Client struct {
	assets map[string]*asset // by URL path, e.g. /static/app.js
	index  *asset
	worker *asset // the service worker, served at /sw.js
}

// New indexes the embedded files. It computes each file's ETag once (a
// hash of its content), so caches revalidate cheaply and never serve a
// stale file after an upgrade.
func New() *Client {
	c := &Client{assets: map[string]*asset{}}
	err := fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		c.assets["/"+p] = &asset{body: b, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, ctyp: contentType(p)}
		return nil
	})
	if err != nil {
		panic(err) // the files are compiled in; failing to read them is a build error
	}
	c.index = c.assets["/static/index.html"]
	c.worker = c.assets["/static/sw.js"]
	if c.index == nil || c.worker == nil {
		panic("web: static/index.html or static/sw.js is missing")
	}
	return c
}

// Mount registers the client's files (GET /static/...) and its routes on mux.
func (c *Client) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /static/", c.serveFile)
	// A service worker controls the pages under the folder it is served
	// from: at /sw.js its scope is the whole client (push notifications,
	// clicks that open a chat), which /static/sw.js could not have.
	mux.HandleFunc("GET /sw.js", c.serveWorker)
	for _, p := range clientRoutes {
		mux.HandleFunc("GET "+p, c.serveIndex)
	}
}

func (c *Client) serveIndex(w http.ResponseWriter, r *http.Request) {
	c.serve(w, r, c.index)
}

func (c *Client) serveWorker(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Service-Worker-Allowed", "/")
	c.serve(w, r, c.worker)
}

func (c *Client) serveFile(w http.ResponseWriter, r *http.Request) {
	a := c.assets[path.Clean(r.URL.Path)]
	if a == nil || a == c.index || a == c.worker {
		securityHeaders(w)
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	c.serve(w, r, a)
}

func (c *Client) serve(w http.ResponseWriter, r *http.Request, a *asset) {
	securityHeaders(w)
	h := w.Header()
	h.Set("Content-Type", a.ctyp)
	h.Set("ETag", a.etag)
	// Revalidate every time: an unchanged file costs a 304 and no body.
	h.Set("Cache-Control", "no-cache")
	// ServeContent answers If-None-Match (304), HEAD and Range.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

func contentType(p string) string {
	switch {
	case strings.HasSuffix(p, ".html"):
		return "text/html; charset=utf-8"
	case strings.HasSuffix(p, ".js"):
		return "text/javascript; charset=utf-8"
	case strings.HasSuffix(p, ".css"):
		return "text/css; charset=utf-8"
	case strings.HasSuffix(p, ".svg"):
		return "image/svg+xml"
	case strings.HasSuffix(p, ".webmanifest"):
		return "application/manifest+json"
	case strings.HasSuffix(p, ".png"):
		return "image/png"
	}
	return "application/octet-stream"
}
