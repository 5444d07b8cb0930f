package sqlstore_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/testdb"
)

// BenchmarkSendMessages measures the group commit's store side: one
// SendMessages transaction of a batch of direct messages (each with a
// clientMessageId, 256 bytes of content and its sync-log row) spread over
// 100 conversations, committed durably. ns/op is per batch; msgs/s is the
// rate one committer goroutine can sustain on this store alone;
// cpu-µs/msg is this process's CPU time (user and system, from getrusage)
// per message, what a loaded machine disturbs least.
//
//	go test -run '^$' -bench SendMessages -benchtime 200x ./sqlstore
func BenchmarkSendMessages(b *testing.B) {
	for _, backend := range testdb.Backends {
		for _, batch := range []int{1, 16, 64, 256} {
			b.Run(fmt.Sprintf("%s/batch=%d", backend, batch), func(b *testing.B) {
				db := testdb.MustOpen(b, backend)
				now := time.Now().UTC().Truncate(time.Millisecond)
				var convs [][2]string // conversation id, sender
				var peers []string
				for i := range 100 {
					a, c := mustUser(b, db, fmt.Sprintf("a%d", i)), mustUser(b, db, fmt.Sprintf("b%d", i))
					conv, err := db.DirectConversation(ctx, a.ID, c.ID, now)
					if err != nil {
						b.Fatal(err)
					}
					convs = append(convs, [2]string{conv.ID, a.ID})
					peers = append(peers, c.ID)
				}
				content := `{"message":"` + strings.Repeat("A", 256) + `","key":"k","iv":"iv"}`
				n := 0
				start := processCPU(b)
				for b.Loop() {
					sends := make([]*parley.Send, batch)
					for i := range sends {
						k := n % len(convs)
						sends[i] = &parley.Send{Message: &parley.Message{ID: parley.NewID("msg"), ConversationID: convs[k][0],
							SenderID: convs[k][1], RecipientID: peers[k], ClientMessageID: fmt.Sprintf("c%d", n), Content: content,
							ContentHash: "0000", Type: "text", SentAt: now}}
						n++
					}
					if err := db.SendMessages(ctx, sends); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
				b.ReportMetric(float64((processCPU(b)-start).Microseconds())/float64(n), "cpu-µs/msg")
			})
		}
	}
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSendMessagesConcurrent is BenchmarkSendMessages with several
// committers at once (as several nodes, or several commit goroutines of
// one node, would run), each committing batches of 64 sends over its own
// 100 conversations: whether a second transaction in flight adds
// throughput on this database.
//
//	go test -run '^$' -bench SendMessagesConcurrent -benchtime 200x ./sqlstore
func BenchmarkSendMessagesConcurrent(b *testing.B) {
	for _, backend := range testdb.Backends {
		for _, workers := range []int{1, 2, 4} {
			b.Run(fmt.Sprintf("%s/workers=%d", backend, workers), func(b *testing.B) {
				db := testdb.MustOpen(b, backend)
				now := time.Now().UTC().Truncate(time.Millisecond)
				type conv struct{ id, sender, peer string }
				convs := make([][]conv, workers)
				for w := range workers {
					for i := range 100 {
						a, c := mustUser(b, db, fmt.Sprintf("a%d_%d", w, i)), mustUser(b, db, fmt.Sprintf("b%d_%d", w, i))
						cv, err := db.DirectConversation(ctx, a.ID, c.ID, now)
						if err != nil {
							b.Fatal(err)
						}
						convs[w] = append(convs[w], conv{cv.ID, a.ID, c.ID})
					}
				}
				content := `{"message":"` + strings.Repeat("A", 256) + `","key":"k","iv":"iv"}`
				const batch = 64
				batches := make(chan int)
				errs := make(chan error, workers)
				for w := range workers {
					go func() {
						var err error
						for n := range batches {
							if err != nil {
								continue // drain
							}
							sends := make([]*parley.Send, batch)
							for i := range sends {
								c := convs[w][(n*batch+i)%len(convs[w])]
								sends[i] = &parley.Send{Message: &parley.Message{ID: parley.NewID("msg"), ConversationID: c.id,
									SenderID: c.sender, RecipientID: c.peer, ClientMessageID: fmt.Sprintf("c%d_%d", n, i), Content: content,
									ContentHash: "0000", Type: "text", SentAt: now}}
							}
							err = db.SendMessages(ctx, sends)
						}
						errs <- err
					}()
				}
				n := 0
				for b.Loop() {
					batches <- n
					n++
				}
				close(batches)
				for range workers {
					if err := <-errs; err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n*batch)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}
