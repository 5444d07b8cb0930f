package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRawRoute: a raw route reads its body under its own limit (a declared
// or counted excess answers the 413 envelope), writes its own answer, and
// an error after it started answering is not turned into an envelope.
func TestRawRoute(t *testing.T) {
	const limit = 1 << 10
	a := &API{timeout: time.Second}
	a.routes = []route{
		{Method: "POST", Path: "/up", Public: true, raw: func(ctx context.Context, c *call) error {
			body, err := c.rawBody(limit)
			if err != nil {
				return err
			}
			n, err := io.Copy(io.Discard, body)
			if err != nil {
				return err
			}
			w := c.rawWriter()
			c.w.Header().Set("Content-Type", "text/plain")
			_, err = io.WriteString(w, strings.Repeat("x", int(n)))
			return err
		}},
		{Method: "GET", Path: "/late", Public: true, raw: func(ctx context.Context, c *call) error {
			_, _ = io.WriteString(c.rawWriter(), "partial")
			return errors.New("failed after writing")
		}},
	}
	mux := http.NewServeMux()
	a.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	post := func(body io.Reader, size int64) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/up", body)
		req.ContentLength = size
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	errCode := func(body string) string {
		var env struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.Unmarshal([]byte(body), &env)
		return env.Error.Code
	}
	if res, body := post(strings.NewReader(strings.Repeat("a", 100)), 100); res.StatusCode != 200 || len(body) != 100 {
		t.Fatalf("small upload: %d, %d bytes", res.StatusCode, len(body))
	}
	if res, body := post(strings.NewReader(strings.Repeat("a", limit+1)), limit+1); res.StatusCode != 413 || errCode(body) != "too_large" {
		t.Fatalf("declared too large: %d %s", res.StatusCode, body)
	}
	// No Content-Length (chunked): refused once the count passes the limit.
	if res, body := post(io.MultiReader(strings.NewReader(strings.Repeat("a", limit+1))), -1); res.StatusCode != 413 || errCode(body) != "too_large" {
		t.Fatalf("counted too large: %d %s", res.StatusCode, body)
	}
	res, err := http.Get(srv.URL + "/late")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "partial" {
		t.Fatalf("error after the answer started: %d %q", res.StatusCode, b)
	}
}

// TestRawRouteDocumented: a raw route's bodies appear in the OpenAPI
// description with their own content types.
func TestRawRouteDocumented(t *testing.T) {
	a := &API{timeout: time.Second}
	a.routes = []route{{Method: "GET", Path: "/api/things/{thingId}/content", Summary: "bytes",
		RawOut: &rawDoc{ContentType: "application/octet-stream", Description: "the bytes"},
		raw:    func(ctx context.Context, c *call) error { return nil }}}
	var doc map[string]any
	if err := json.Unmarshal(a.openAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	op := doc["paths"].(map[string]any)["/api/things/{thingId}/content"].(map[string]any)["get"].(map[string]any)
	content := op["responses"].(map[string]any)["200"].(map[string]any)["content"].(map[string]any)
	if _, ok := content["application/octet-stream"]; !ok {
		t.Fatalf("200 content %v", content)
	}
}
