package httpapi_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/httpapi"
)

// TestServerTiming checks that every response says how long the server
// took, whether the handler writes its header or only its body.
func TestServerTiming(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, h := range map[string]http.HandlerFunc{
		"WriteHeader": func(w http.ResponseWriter, _ *http.Request) {
			time.Sleep(20 * time.Millisecond)
			w.WriteHeader(http.StatusCreated)
		},
		"WriteOnly": func(w http.ResponseWriter, _ *http.Request) {
			time.Sleep(20 * time.Millisecond)
			_, _ = w.Write([]byte("{}"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			httpapi.Middleware(logger, h).ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
			v, ok := strings.CutPrefix(rec.Header().Get("Server-Timing"), "app;dur=")
			if !ok {
				t.Fatalf("Server-Timing = %q", rec.Header().Get("Server-Timing"))
			}
			ms, err := strconv.ParseFloat(v, 64)
			if err != nil || ms < 20 || ms > 10_000 {
				t.Fatalf("dur = %q (%v), want the 20 ms the handler took, or a little more", v, err)
			}
		})
	}
}
