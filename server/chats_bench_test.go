package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
)

// BenchmarkChatsHTTP measures GET /api/chats?limit=200 end to end for a
// user with 1,000 direct conversations, each with one message from the
// peer, of which the reader confirmed a third as delivered and a third as
// seen (as clients leave them). It reports the server's own time from the
// Server-Timing header (authentication, the database, the JSON) at p50 and
// p99, and the client's, one request at a time:
//
//	go test -run '^$' -bench ChatsHTTP -benchtime 400x ./server
func BenchmarkChatsHTTP(b *testing.B) {
	const chats = 1000
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			srv := apitest.MustStart(b, backend, nil)
			reader := benchUsers(b, srv.URL(), "reader", 1, nil)[0]
			peers := benchUsers(b, srv.URL(), "peer", chats, nil)
			inParallel(b, 8, chats, func(i int) error {
				raw, err := peers[i].post("/api/messages/send", map[string]any{"recipientId": reader.userID, "type": "text",
					"encryptedContent": fmt.Sprintf("m%d-%s", i, strings.Repeat("x", 200))}, 201)
				var m struct{ MessageID string }
				if err == nil {
					err = json.Unmarshal(raw, &m)
				}
				if err == nil && i%3 > 0 {
					status := []string{"", "delivered", "seen"}[i%3]
					_, err = reader.post("/api/status", map[string]string{"messageId": m.MessageID, "status": status}, 200)
				}
				return err
			})
			var server, client []time.Duration
			for b.Loop() {
				s, c := getChats(b, reader, 200)
				server, client = append(server, s), append(client, c)
			}
			slices.Sort(server)
			slices.Sort(client)
			at := func(d []time.Duration, q float64) float64 {
				return float64(d[min(len(d)-1, int(q*float64(len(d))))]) / float64(time.Millisecond)
			}
			b.ReportMetric(at(server, 0.5), "server-p50-ms")
			b.ReportMetric(at(server, 0.99), "server-p99-ms")
			b.ReportMetric(at(client, 0.5), "client-p50-ms")
			b.ReportMetric(at(client, 0.99), "client-p99-ms")
		})
	}
}

// getChats reads the caller's chat list and returns the server's time
// (Server-Timing app;dur) and the client's; it checks that the page is
// full and ordered by activity.
func getChats(b *testing.B, c *benchClient, limit int) (server, client time.Duration) {
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/chats?limit=%d", c.base, limit), nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	start := time.Now()
	res, err := c.http.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	client = time.Since(start)
	if err != nil || res.StatusCode != 200 {
		b.Fatalf("GET /api/chats: %d %s (%v)", res.StatusCode, raw, err)
	}
	st, ok := strings.CutPrefix(res.Header.Get("Server-Timing"), "app;dur=")
	ms, perr := strconv.ParseFloat(st, 64)
	if !ok || perr != nil {
		b.Fatalf("Server-Timing %q", res.Header.Get("Server-Timing"))
	}
	var env struct {
		Data []struct {
			LastActivityAt string
			LastMessage    *struct{ MessageID string }
		}
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		b.Fatal(err)
	}
	if len(env.Data) != limit {
		b.Fatalf("%d chats, want %d", len(env.Data), limit)
	}
	for i, ch := range env.Data {
		if ch.LastMessage == nil || (i > 0 && ch.LastActivityAt > env.Data[i-1].LastActivityAt) {
			b.Fatalf("chat %d: last message %v, activity %s after %s", i, ch.LastMessage, ch.LastActivityAt, env.Data[max(i-1, 0)].LastActivityAt)
		}
	}
	return time.Duration(ms * float64(time.Millisecond)), client
}
