package sqlstore_test

import (
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/sqlstore"
)

// BenchmarkHistoryFixture splits the cost of a page of history on a copy
// of a database seeded by parley-bench (BENCHMARKS.md, "History and chats,
// server CPU"), named by PARLEY_BENCH_SQLITE; it is skipped without one:
//
//	parley-bench seed --db sqlite:/tmp/h1/parley.db --users 2000 --conversations 2000 --messages 1000000 --out users.json
//	PARLEY_BENCH_SQLITE=/tmp/h1/parley.db go test -run '^$' -bench HistoryFixture -benchtime 2s ./sqlstore
//
// Each sub-benchmark reads a random page of 50 of a random conversation
// and reports the process's CPU time per page (cpu-µs/op) beside the wall
// time, which a shared machine inflates. Page, Receipts and
// ReceiptsPerMessage are the store calls a page of a direct chat makes
// (the last is what the receipt state took before MemberReceipts); the
// SQL ones are the page's SELECT cut down: only the index, the index and
// one column of each row, every column.
func BenchmarkHistoryFixture(b *testing.B) {
	path := os.Getenv("PARLEY_BENCH_SQLITE")
	if path == "" {
		b.Skip("PARLEY_BENCH_SQLITE names no seeded database")
	}
	db, err := sqlstore.Open(ctx, "sqlite:"+path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	raw := openRaw(b, "sqlite", path)
	raw.SetMaxOpenConns(1)
	if _, err := raw.Exec(`PRAGMA mmap_size = 2147418112`); err != nil { // as the server's readers
		b.Fatal(err)
	}
	type conv struct {
		id, a, b string
		last     int64
	}
	rows, err := raw.Query(`SELECT c.id, c.last_seq, MIN(m.user_id), MAX(m.user_id) FROM conversations c
		JOIN conversation_members m ON m.conversation_id = c.id WHERE c.kind = 'direct' AND c.last_seq > 100 GROUP BY c.id, c.last_seq`)
	if err != nil {
		b.Fatal(err)
	}
	var convs []conv
	for rows.Next() {
		var c conv
		if err := rows.Scan(&c.id, &c.last, &c.a, &c.b); err != nil {
			b.Fatal(err)
		}
		convs = append(convs, c)
	}
	if err := rows.Close(); err != nil || len(convs) == 0 {
		b.Fatalf("%d conversations of more than 100 messages, %v", len(convs), err)
	}
	pick := func() (conv, int64) {
		c := convs[rand.IntN(len(convs))]
		return c, 51 + rand.Int64N(c.last-50)
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	run := func(name string, page func(c conv, before int64) error) {
		b.Run(name, func(b *testing.B) {
			start := cpu()
			for b.Loop() {
				if err := page(pick()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpu()-start).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
	run("Page", func(c conv, before int64) error {
		msgs, err := db.History(ctx, c.id, c.a, before, time.Time{}, 50)
		if err == nil && len(msgs) != 50 {
			b.Fatalf("%d messages, want 50", len(msgs))
		}
		return err
	})
	run("Receipts", func(c conv, before int64) error {
		_, err := db.MemberReceipts(ctx, c.id, before-50, before-1)
		return err
	})
	run("ReceiptsPerMessage", func(c conv, before int64) error {
		if _, err := db.Members(ctx, c.id); err != nil {
			return err
		}
		for _, u := range []string{c.a, c.b} {
			if _, err := db.UserByID(ctx, u); err != nil {
				return err
			}
			for _, kind := range []string{parley.StatusDelivered, parley.StatusSeen} {
				if _, err := db.ReceiptMarks(ctx, c.id, u, kind, before-50, before-1); err != nil {
					return err
				}
			}
		}
		return nil
	})
	for _, q := range []struct{ name, columns string }{
		{"SQLIndexOnly", `m.seq`},
		{"SQLOneColumn", `m.seq, m.sent_at`},
		{"SQLAllColumns", `m.id, m.conversation_id, m.seq, m.sender_id, m.recipient_id, m.client_message_id, m.content,
			m.content_hash, m.type, m.media_id, m.reply_to_id, m.sent_at, m.edited_at, m.deleted_for_everyone, m.reply_to_status_id`},
	} {
		st, err := raw.Prepare(`SELECT ` + q.columns + ` FROM messages m WHERE m.conversation_id = ? AND m.seq < ? ORDER BY m.seq DESC LIMIT 50`)
		if err != nil {
			b.Fatal(err)
		}
		run(q.name, func(c conv, before int64) error {
			rows, err := st.Query(c.id, before)
			if err != nil {
				return err
			}
			cols, err := rows.Columns()
			if err != nil {
				return err
			}
			vals := make([]any, len(cols))
			dest := make([]any, len(cols))
			for i := range vals {
				dest[i] = &vals[i]
			}
			n := 0
			for rows.Next() {
				if err := rows.Scan(dest...); err != nil {
					return err
				}
				n++
			}
			if n != 50 {
				b.Fatalf("%d rows, want 50", n)
			}
			return rows.Close()
		})
	}
}
