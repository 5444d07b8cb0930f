// Package apitest starts whole Parley servers for black-box tests and
// drives their REST API as a client would.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/server"
	"github.com/parley-chat/parley/service"
)

// FastPasswords is a cheap argon2id cost so tests can register many users.
var FastPasswords = service.PasswordCost{Time: 1, Memory: 64, Threads: 1}

// MustStart starts a server on 127.0.0.1:0 with a fresh database of the
// given backend and a temporary data folder; edit may adjust the config.
// The server is closed when tb ends.
func MustStart(tb testing.TB, backend string, edit func(*server.Config)) *server.Server {
	tb.Helper()
	cfg := server.Config{
		Addr:          "127.0.0.1:0",
		DataDir:       tb.TempDir(),
		DB:            testdb.DSN(tb, backend),
		PasswordCost:  FastPasswords,
		PresenceGrace: 300 * time.Millisecond,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		// A request's store deadline is a timing too: on a loaded 2-core
		// machine 30 concurrent registrations missed the default 5 s. Tests
		// of the deadline itself set their own.
		DBTimeout: 30 * time.Second,
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(tWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := server.New(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("start server: %v", err)
	}
	s.Start()
	tb.Cleanup(func() { s.Close() })
	return s
}

type tWriter struct{ tb testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.tb.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

// Client calls a server's REST API, with a token once signed in. It holds
// no testing.TB: each call takes the test (or subtest) that a failure is
// reported on, so a helper called in a subtest never fails its parent.
type Client struct {
	Base     string
	Token    string
	UserID   string
	Username string
	HTTP     *http.Client

	contract *Contract // loaded on the first request
}

// NewClient returns an anonymous client of the server at base.
func NewClient(base string) *Client {
	return &Client{Base: base, HTTP: &http.Client{Timeout: 60 * time.Second}} // a bound above the 30 s DBTimeout of test servers
}

// Response is a decoded envelope with its HTTP status.
type Response struct {
	Status  int
	Header  http.Header
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Message string          `json:"message"`
	Error   struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Decode decodes Data into v, failing the test on error.
func (r *Response) Decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Data, v); err != nil {
		tb.Fatalf("decode %s: %v", r.Data, err)
	}
}

// Do sends a request; body is JSON-encoded unless it is a string or []byte
// (sent as is). It fails the test only on transport errors.
func (c *Client) Do(tb testing.TB, method, path string, body any) *Response {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.Base+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := &Response{Status: resp.StatusCode, Header: resp.Header}
	if err := json.Unmarshal(raw, out); err != nil {
		tb.Fatalf("%s %s: status %d, body is not an envelope: %q", method, path, resp.StatusCode, raw)
	}
	c.checkContract(tb, method, req.URL.Path, resp.StatusCode, raw)
	return out
}

// checkContract fails the test when a response does not conform to the
// server's OpenAPI document.
func (c *Client) checkContract(tb testing.TB, method, path string, status int, raw []byte) {
	tb.Helper()
	if c.contract == nil {
		ct, err := LoadContract(c.HTTP, c.Base)
		if err != nil {
			tb.Errorf("contract: %v", err)
			return
		}
		c.contract = ct
	}
	if err := c.contract.CheckResponse(method, path, status, raw); err != nil {
		tb.Errorf("contract: %s %s: %v", method, path, err)
	}
}

// Must sends a request and fails the test unless the status is want.
func (c *Client) Must(tb testing.TB, want int, method, path string, body any) *Response {
	tb.Helper()
	r := c.Do(tb, method, path, body)
	if r.Status != want {
		tb.Fatalf("%s %s: status %d (%s: %s), want %d", method, path, r.Status, r.Error.Code, r.Error.Message, want)
	}
	return r
}

// Register creates a user (password "password-<username>") and returns a
// client signed in as them.
func Register(tb testing.TB, base, username string) *Client {
	tb.Helper()
	c := NewClient(base)
	r := c.Must(tb, 201, "POST", "/api/users/register", map[string]string{
		"username": username, "password": "password-" + username, "deviceId": "dev-" + username,
		"publicKey": "pk-" + username, "email": username + "@example.test", "name": "User " + username})
	var res struct{ UserID, Token, Username string }
	r.Decode(tb, &res)
	c.Token, c.UserID, c.Username = res.Token, res.UserID, res.Username
	return c
}

// Unique returns a username unique within the test run.
func Unique(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1e12)
}
