package realtime_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/server"
)

// TestPipelinedSends covers a socket that sends without waiting for each
// ack: its sends are committed in the order it sent them, and its next
// events are read and answered while a send waits for its commit.
func TestPipelinedSends(t *testing.T) {
	var dsn string
	srv := apitest.MustStart(t, "sqlite", func(c *server.Config) { dsn = c.DB })
	ann := apitest.Register(t, srv.URL(), "ann")
	bob := apitest.Register(t, srv.URL(), "bob")
	send := func(i int) map[string]any {
		return map[string]any{"recipientId": bob.UserID, "type": "text", "encryptedContent": "m" + strings.Repeat("x", i%7)}
	}
	// The conversation exists before the socket sends: its creation is a
	// write of its own, made before the send is queued.
	ann.Must(t, 201, "POST", "/api/messages/send", send(0))
	ws := apitest.DialWS(t, srv.URL(), ann.Token)

	t.Run("InOrder", func(t *testing.T) {
		const n = 100
		for i := 1; i <= n; i++ {
			ws.Send(t, "send_message", send(i), int64(i))
		}
		var last int64
		for i := 1; i <= n; i++ {
			var ack struct {
				Success bool
				Data    struct{ Seq int64 }
			}
			if err := json.Unmarshal(ws.WaitAck(t, int64(i)), &ack); err != nil || !ack.Success {
				t.Fatalf("send %d: %+v (%v)", i, ack, err)
			}
			if ack.Data.Seq <= last {
				t.Fatalf("send %d has seq %d, after seq %d: committed out of order", i, ack.Data.Seq, last)
			}
			last = ack.Data.Seq
		}
	})

	t.Run("NextEventWhileCommitWaits", func(t *testing.T) {
		// Hold SQLite's write lock: the send below is queued and its
		// commit waits for the lock (busy_timeout, 10 s).
		lock, err := sql.Open("sqlite", strings.TrimPrefix(dsn, "sqlite:"))
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Close()
		ctx := context.Background()
		conn, err := lock.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}
		ws.Send(t, "send_message", send(1), 1001)
		typing := ws.Call(t, "typing", map[string]any{"recipientId": bob.UserID, "isTyping": true}, 1002)
		if !strings.Contains(string(typing), `"success":true`) {
			t.Fatalf("typing ack %s", typing)
		}
		for _, f := range ws.Frames() {
			if f.Ack != nil && *f.Ack == 1001 {
				t.Fatalf("the send was answered while the database was locked: %s", f.Data)
			}
		}
		if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
		if ack := ws.WaitAck(t, 1001); !strings.Contains(string(ack), `"success":true`) {
			t.Fatalf("send ack %s", ack)
		}
	})
}
