package realtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/apitest"
)

// countingSIO is a Socket.IO client of the default namespace over
// WebSocket that only counts the events it receives.
type countingSIO struct {
	token  string
	joined chan struct{}
	events atomic.Int64
}

func (c *countingSIO) OnOpen(*gws.Conn)                {}
func (c *countingSIO) OnClose(*gws.Conn, error)        {}
func (c *countingSIO) OnPing(conn *gws.Conn, p []byte) { _ = conn.WritePong(p) }
func (c *countingSIO) OnPong(*gws.Conn, []byte)        {}
func (c *countingSIO) OnMessage(conn *gws.Conn, m *gws.Message) {
	defer m.Close()
	b := m.Bytes()
	switch {
	case len(b) > 0 && b[0] == '0': // Engine.IO open: join the namespace
		auth, _ := json.Marshal(map[string]string{"token": c.token})
		_ = conn.WriteMessage(gws.OpcodeText, append([]byte("40"), auth...))
	case len(b) == 1 && b[0] == '2':
		_ = conn.WriteMessage(gws.OpcodeText, []byte("3"))
	case len(b) > 1 && b[0] == '4' && b[1] == '0':
		close(c.joined)
	case len(b) > 1 && b[0] == '4' && b[1] == '2':
		c.events.Add(1)
	}
}

// BenchmarkHubFanOut measures what the hub does for one event addressed to
// 1,000 users, each with one Socket.IO socket: frame it once and queue it to
// every socket (the writes themselves run on the sockets' own goroutines).
// Every 32 events the timer stops until all clients have read everything,
// so no queue overflows. ns/op is per event; ns/delivery per socket.
//
//	go test -run '^$' -bench HubFanOut ./realtime
func BenchmarkHubFanOut(b *testing.B) {
	const members = 1000
	srv := apitest.MustStart(b, "sqlite", nil)
	ids := make([]string, members)
	clients := make([]*countingSIO, members)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	prefix := apitest.Unique("f")
	for i := range members {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			u := apitest.Register(b, srv.URL(), fmt.Sprintf("%s_%d", prefix, i))
			ids[i] = u.UserID
			c := &countingSIO{token: u.Token, joined: make(chan struct{})}
			conn, _, err := gws.NewClient(c, &gws.ClientOption{
				Addr: "ws" + strings.TrimPrefix(srv.URL(), "http") + "/socket.io/?EIO=4&transport=websocket"})
			if err != nil {
				b.Error(err)
				return
			}
			b.Cleanup(func() { _ = conn.NetConn().Close() })
			go conn.ReadLoop()
			select {
			case <-c.joined:
			case <-time.After(10 * time.Second):
				b.Error("socket.io connect timed out")
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	view := `{"messageId":"msg_aaaaaaaaaaaaaaaaaaaaaaaaaa","conversationId":"group_bbbbbbbbbbbbbbbbbbbbbbbbbb","seq":42,` +
		`"senderId":"usr_cccccccccccccccccccccccccc","groupId":"group_bbbbbbbbbbbbbbbbbbbbbbbbbb","content":"{\"message\":\"` +
		strings.Repeat("A", 344) + `\",\"keys\":{},\"iv\":\"iv\"}","contentHash":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",` +
		`"type":"text","status":"sent","sentAt":"2026-01-02T03:04:05.678Z","reactions":[],"deletedForEveryone":false}`
	ctx := context.Background()
	waitAll := func(want int64) {
		deadline := time.Now().Add(30 * time.Second)
		for _, c := range clients {
			for c.events.Load() < want {
				if time.Now().After(deadline) {
					b.Fatalf("a client received %d of %d events", c.events.Load(), want)
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
	}
	var sent int64
	for b.Loop() {
		if err := srv.Bus().Publish(ctx, &parley.Event{Name: "new_group_message", Data: json.RawMessage(view), To: ids}); err != nil {
			b.Fatal(err)
		}
		sent++
		if sent%32 == 0 {
			b.StopTimer()
			waitAll(sent)
			b.StartTimer()
		}
	}
	b.StopTimer()
	waitAll(sent)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(sent*members), "ns/delivery")
}
