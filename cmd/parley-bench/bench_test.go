package main

import (
	"context"
	"database/sql"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/server"
)

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func benchCommon(t *testing.T, srv *server.Server, users int) common {
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	return common{base: u, users: users, sourceIPs: 2, timeout: 5 * time.Second, concurrency: 4, limit: time.Minute}
}

// TestScenarios runs every scenario, small, against a whole server with
// its debug listener on, over a database seed filled first.
func TestScenarios(t *testing.T) {
	debug := freeAddr(t)
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "parley.db")
	usersFile := filepath.Join(t.TempDir(), "users.json")
	ctx := context.Background()
	seeded, err := runSeed(ctx, seedConfig{dsn: dsn, users: 40, conversations: 30, messages: 3000, size: 32, batch: 700, out: usersFile}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(seeded.File.Users) != 40 || len(seeded.File.Conversations) != 30 || seeded.Bytes == 0 {
		t.Fatalf("seeded %d users, %d conversations, %d bytes", len(seeded.File.Users), len(seeded.File.Conversations), seeded.Bytes)
	}
	srv := apitest.MustStart(t, "sqlite", func(c *server.Config) { c.DebugAddr, c.DB = debug, dsn })

	t.Run("Idle", func(t *testing.T) {
		cc := benchCommon(t, srv, 3)
		cc.debugURL = "http://" + debug
		cfg := idleConfig{common: cc, conns: 30}
		res, err := runIdle(ctx, cfg, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if res.Connected != 30 || res.Failed != 0 || res.Dropped != 0 {
			t.Fatalf("connected %d, failed %d (%v), dropped %d", res.Connected, res.Failed, res.Errors, res.Dropped)
		}
		if res.Before.Connections != 0 || res.After.Connections != 30 || res.After.HeapInuse == 0 {
			t.Fatalf("server samples: before %+v after %+v", res.Before, res.After)
		}
		deadline := time.Now().Add(5 * time.Second)
		for srv.Hub().Connections() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := srv.Hub().Connections(); n != 0 {
			t.Fatalf("%d sockets left open", n)
		}
	})

	t.Run("Direct", func(t *testing.T) {
		cfg := directConfig{common: benchCommon(t, srv, 4), load: load{rate: 200, duration: time.Second, grace: 3 * time.Second, size: 64, maxInflight: 8}, warmup: true}
		res, err := runDirect(ctx, cfg, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if res.Sent < 100 || res.Acked != res.Sent || res.Failed != 0 || res.Unanswered != 0 {
			t.Fatalf("sent %d acked %d failed %d unanswered %d errors %v", res.Sent, res.Acked, res.Failed, res.Unanswered, res.Errors)
		}
		if res.Lost != 0 || res.Duplicated != 0 || res.Stray != 0 || res.Received != int(res.Acked) || len(res.E2E) != int(res.Acked) {
			t.Fatalf("received %d lost %d dup %d stray %d e2e samples %d", res.Received, res.Lost, res.Duplicated, res.Stray, len(res.E2E))
		}
	})

	t.Run("History", func(t *testing.T) {
		cc := benchCommon(t, srv, 1)
		cc.usersFile = usersFile
		res, err := runHistory(ctx, historyConfig{common: cc, readsFlags: readsFlags{workers: 4, duration: time.Second}, pageSize: 50}, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if res.Reads < 1 || res.Failed != 0 || len(res.Server) != int(res.Reads) || res.Server[0] <= 0 {
			t.Fatalf("pages %d, failed %d (%v), server timings %d", res.Reads, res.Failed, res.Errors, len(res.Server))
		}
	})

	t.Run("Storm", func(t *testing.T) {
		cc := benchCommon(t, srv, 20)
		cc.usersFile = usersFile
		res, err := runStorm(ctx, stormConfig{common: cc, senders: 5, perUser: 3, syncLimit: 2, size: 32, retries: 3, markDelivered: true}, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if res.Acked != 60 || res.Connected != 20 || res.CaughtUp != 20 || res.Marked != 20 || res.Lost != 0 || res.SyncFailed != 0 {
			t.Fatalf("acked %d, connected %d, caught up %d, marked %d, lost %d, sync failed %d, errors %v",
				res.Acked, res.Connected, res.CaughtUp, res.Marked, res.Lost, res.SyncFailed, res.Errors)
		}
		// Three messages each with pages of two: every client paged.
		if res.SyncCalls < 40 {
			t.Fatalf("%d sync calls for 20 clients with 3 messages each in pages of 2", res.SyncCalls)
		}
	})

	t.Run("Group", func(t *testing.T) {
		cc := benchCommon(t, srv, 30)
		cc.usersFile = usersFile
		res, err := runGroup(ctx, groupConfig{common: cc, senders: 3, load: load{rate: 50, duration: time.Second, grace: 3 * time.Second, size: 32, maxInflight: 4}},
			io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if res.Acked < 25 || res.Failed != 0 || res.Missing != 0 || res.Duplicated != 0 || res.Stray != 0 ||
			res.Deliveries != res.Acked*30 || len(res.LastDelivery) != int(res.Acked) {
			t.Fatalf("acked %d failed %d, deliveries %d, missing %d, dup %d, stray %d, complete %d, errors %v",
				res.Acked, res.Failed, res.Deliveries, res.Missing, res.Duplicated, res.Stray, len(res.LastDelivery), res.Errors)
		}
	})

	t.Run("Channel", func(t *testing.T) {
		cc := benchCommon(t, srv, 30)
		cc.usersFile = usersFile
		res, err := runGroup(ctx, groupConfig{common: cc, channel: true, online: 20, senders: 3,
			load: load{rate: 50, duration: time.Second, grace: 3 * time.Second, size: 32, maxInflight: 4}}, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if res.Members != 20 || res.Acked < 25 || res.Failed != 0 || res.Missing != 0 || res.Duplicated != 0 || res.Stray != 0 ||
			res.Deliveries != res.Acked*20 || len(res.LastDelivery) != int(res.Acked) {
			t.Fatalf("members %d, acked %d failed %d, deliveries %d, missing %d, dup %d, stray %d, complete %d, errors %v",
				res.Members, res.Acked, res.Failed, res.Deliveries, res.Missing, res.Duplicated, res.Stray, len(res.LastDelivery), res.Errors)
		}
	})
}

// TestSeedPostgres seeds a PostgreSQL database, with a receipt per
// message, and reads its history through a server on it, so the
// fixture's SQL stays valid on both.
func TestSeedPostgres(t *testing.T) {
	dsn := testdb.DSN(t, "postgres")
	usersFile := filepath.Join(t.TempDir(), "users.json")
	ctx := context.Background()
	if _, err := runSeed(ctx, seedConfig{dsn: dsn, users: 10, conversations: 5, messages: 600, size: 32, batch: 250, out: usersFile, receipts: "each"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	var marks int
	var counter, pushed int64
	err = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM receipt_marks").Scan(&marks)
	if err == nil {
		err = db.QueryRowContext(ctx, "SELECT c.last, p.last FROM change_counter c, push_cursor p").Scan(&counter, &pushed)
	}
	db.Close()
	if err != nil || marks != 2*600 {
		t.Fatalf("%d receipt marks (%v), want one delivered and one seen per message", marks, err)
	}
	// Seeded messages are old history: no push for them.
	if counter < 600 || pushed != counter {
		t.Fatalf("change counter %d, push cursor %d: the push outbox would walk the seeded changes", counter, pushed)
	}
	srv := apitest.MustStart(t, "sqlite", func(c *server.Config) { c.DB = dsn })
	cc := benchCommon(t, srv, 1)
	cc.usersFile = usersFile
	res, err := runHistory(ctx, historyConfig{common: cc, readsFlags: readsFlags{workers: 2, duration: 500 * time.Millisecond}, pageSize: 50}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reads < 1 || res.Failed != 0 {
		t.Fatalf("pages %d, failed %d (%v)", res.Reads, res.Failed, res.Errors)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, raw := range []string{"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:80", "http://127.0.0.9"} {
		if _, err := loopbackURL(raw); err != nil {
			t.Errorf("%s refused: %v", raw, err)
		}
	}
	for _, raw := range []string{"http://10.0.0.1:8080", "http://example.com", "http://0.0.0.0:8080", "ftp://127.0.0.1", "http://127.0.0.1.example.com"} {
		if _, err := loopbackURL(raw); err == nil {
			t.Errorf("%s accepted", raw)
		}
	}
}

// TestChats seeds hubs (accounts with many conversations) on SQLite and
// on PostgreSQL and reads their chat lists through a server on each: with
// a limit smaller than a hub's conversations and with the default page,
// which is larger.
func TestChats(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			dsn := "sqlite:" + filepath.Join(t.TempDir(), "parley.db")
			if backend == "postgres" {
				dsn = testdb.DSN(t, "postgres")
			}
			usersFile := filepath.Join(t.TempDir(), "users.json")
			ctx := context.Background()
			// 2 hubs with 30 chats each; 70 messages: 10 chats have two.
			seeded, err := runSeed(ctx, seedConfig{dsn: dsn, users: 40, hubs: 2, hubChats: 30, conversations: 60, messages: 70, size: 32,
				batch: 100, out: usersFile, receipts: "each"}, io.Discard, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			peers := map[[2]int]bool{}
			for _, cv := range seeded.File.Conversations {
				if cv.B > 1 || cv.A < 2 || peers[[2]int{cv.A, cv.B}] || cv.Last == 0 || cv.Messages < 1 {
					t.Fatalf("conversation %+v: want a distinct non-hub peer as A, a hub as B, messages", cv)
				}
				peers[[2]int{cv.A, cv.B}] = true
			}
			srv := apitest.MustStart(t, "sqlite", func(c *server.Config) { c.DB = dsn })
			for _, page := range []int{10, 0} {
				cc := benchCommon(t, srv, 1)
				cc.usersFile = usersFile
				res, err := runChats(ctx, chatsConfig{common: cc, readsFlags: readsFlags{workers: 2, duration: 500 * time.Millisecond}, pageSize: page, minChats: 30}, io.Discard, io.Discard)
				if err != nil {
					t.Fatal(err)
				}
				if res.Readers != 2 || res.Reads < 1 || res.Failed != 0 || len(res.Server) != int(res.Reads) || res.Server[0] <= 0 {
					t.Fatalf("page %d: readers %d, lists %d, failed %d (%v), server timings %d", page, res.Readers, res.Reads, res.Failed, res.Errors, len(res.Server))
				}
			}
		})
	}
}

func TestCheckChats(t *testing.T) {
	body := []byte(`{"success":true,"data":[{"conversationId":"c2","lastMessage":{"conversationId":"c2"}},` +
		`{"conversationId":"c1","lastMessage":{"conversationId":"c1"}}]}`)
	if err := checkChats(body, []string{"c2", "c1"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range [][]string{{"c1", "c2"}, {"c2"}, {"c2", "c1", "c0"}} {
		if err := checkChats(body, want); err == nil {
			t.Errorf("list c2, c1 accepted as %v", want)
		}
	}
	noLast := []byte(`[{"conversationId":"c2","lastMessage":null},{"conversationId":"c1","lastMessage":{"conversationId":"c1"}}]`)
	if err := checkChats(noLast, []string{"c2", "c1"}); err == nil {
		t.Error("a chat without its last message accepted")
	}
}

func TestParseSeedHubs(t *testing.T) {
	c, err := parseSeed([]string{"--db", "sqlite:/tmp/x.db", "--out", "/tmp/u.json", "--users", "1100", "--hubs", "3", "--hub-chats", "1000", "--messages", "3000"}, io.Discard)
	if err != nil || c.conversations != 3000 {
		t.Fatalf("conversations %d, %v", c.conversations, err)
	}
	for _, args := range [][]string{
		{"--users", "1002", "--hubs", "3", "--hub-chats", "1000"},   // too few peers
		{"--users", "2000", "--hubs", "3", "--conversations", "10"}, // both layouts
		{"--users", "2000", "--hubs", "-1"},                         // negative
	} {
		if _, err := parseSeed(append([]string{"--db", "sqlite:/tmp/x.db", "--out", "/tmp/u.json"}, args...), io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
