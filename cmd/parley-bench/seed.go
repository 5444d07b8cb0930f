package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/service"
	"github.com/parley-chat/parley/sqlstore"
)

// seedPassword is the password of every seeded account. Its hash uses a
// deliberately tiny argon2id cost so logging in as a seeded user is cheap;
// it is a benchmark fixture, never a real account.
const seedPassword = "parley-bench-password"

// seedConfig is the configuration of seed.
type seedConfig struct {
	dsn           string
	users         int
	conversations int
	messages      int
	size          int
	batch         int
	out           string
	receipts      string
	hubs          int // accounts with hubChats direct conversations each, instead of the --conversations layout
	hubChats      int
}

func parseSeed(args []string, out io.Writer) (seedConfig, error) {
	var c seedConfig
	fs := flag.NewFlagSet("parley-bench seed", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.dsn, "db", "", "the server's database: `sqlite:PATH` or a postgres:// URL on loopback (stop the server first)")
	fs.IntVar(&c.users, "users", 1000, "accounts to create, each with a device and a bearer token")
	fs.IntVar(&c.conversations, "conversations", 0, "direct conversations to create between those accounts")
	fs.IntVar(&c.messages, "messages", 0, "messages in total, spread evenly over the conversations and interleaved in time")
	fs.IntVar(&c.size, "size", 160, "`bytes` of ciphertext-like padding in each message")
	fs.IntVar(&c.batch, "batch", 20000, "messages per transaction")
	fs.StringVar(&c.out, "out", "", "`file` to write the accounts (with their tokens) and conversations to, for --users-file")
	fs.StringVar(&c.receipts, "receipts", "cursor", "receipt marks: `cursor` (one per member, at the end) or each (every message marked delivered and seen by its recipient, as clients that confirm each message leave it)")
	fs.IntVar(&c.hubs, "hubs", 0, "instead of --conversations: the first `N` accounts (the hubs) each get --hub-chats direct conversations with the other accounts (for the chats scenario)")
	fs.IntVar(&c.hubChats, "hub-chats", 1000, "direct conversations of each hub, each with a distinct other account")
	if err := parseArgs(fs, args); err != nil {
		return c, err
	}
	if c.hubs != 0 {
		switch {
		case c.conversations != 0:
			return c, errors.New("--hubs replaces --conversations: give one of them")
		case c.hubs < 0 || c.hubChats < 1 || c.hubChats > 100_000 || c.hubs > 1000:
			return c, errors.New("--hubs must be between 0 and 1000, --hub-chats between 1 and 100000")
		case c.users < c.hubs+c.hubChats:
			return c, fmt.Errorf("--users must be at least --hubs + --hub-chats (%d) so each hub's peers are distinct", c.hubs+c.hubChats)
		}
		c.conversations = c.hubs * c.hubChats
	}
	maxConvs := c.users * ((c.users - 1) / 2) // distinct pairs the layout below can make
	switch {
	case c.dsn == "" || c.out == "":
		return c, errors.New("--db and --out are required")
	case c.receipts != "cursor" && c.receipts != "each":
		return c, errors.New("--receipts must be cursor or each")
	case c.users < 2 || c.users > 1_000_000:
		return c, errors.New("--users must be between 2 and 1000000")
	case c.hubs == 0 && (c.conversations < 0 || c.conversations > maxConvs):
		return c, fmt.Errorf("--conversations must be between 0 and %d for %d users", maxConvs, c.users)
	case c.messages < 0 || c.messages > 100_000_000 || (c.messages > 0 && c.conversations == 0):
		return c, errors.New("--messages must be between 0 and 100000000, and needs --conversations")
	case c.size < 0 || c.size > 48<<10:
		return c, errors.New("--size must be between 0 and 49152")
	case c.batch < 100 || c.batch > 1_000_000:
		return c, errors.New("--batch must be between 100 and 1000000")
	}
	if strings.HasPrefix(c.dsn, "postgres://") || strings.HasPrefix(c.dsn, "postgresql://") {
		u, err := url.Parse(c.dsn)
		if err != nil {
			return c, fmt.Errorf("--db: %w", err)
		}
		if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return c, errors.New("--db: only a PostgreSQL on loopback may be seeded")
		}
	} else if !strings.HasPrefix(c.dsn, "sqlite:") {
		return c, errors.New("--db must be sqlite:PATH or a postgres:// URL")
	}
	return c, nil
}

// seedResult is what seed wrote.
type seedResult struct {
	File     *usersFile
	Messages int
	Took     time.Duration
	Bytes    int64 // SQLite files after the load; 0 on PostgreSQL
}

// seeder writes rows into one database connection with multi-row INSERTs.
type seeder struct {
	db       *sql.DB
	postgres bool
	tx       *sql.Tx
}

// insert writes rows (each len(cols) values) into table, several rows per
// statement.
func (s *seeder) insert(ctx context.Context, table string, cols []string, rows [][]any) error {
	per := max(1, 960/len(cols))
	for len(rows) > 0 {
		n := min(per, len(rows))
		var b strings.Builder
		b.WriteString("INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES ")
		args := make([]any, 0, n*len(cols))
		for i, r := range rows[:n] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('(')
			for j := range r {
				if j > 0 {
					b.WriteString(", ")
				}
				if s.postgres {
					b.WriteString("$" + strconv.Itoa(len(args)+1))
				} else {
					b.WriteByte('?')
				}
				args = append(args, r[j])
			}
			b.WriteByte(')')
		}
		if _, err := s.tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("insert into %s: %w", table, err)
		}
		rows = rows[n:]
	}
	return nil
}

func (s *seeder) begin(ctx context.Context) error {
	var err error
	s.tx, err = s.db.BeginTx(ctx, nil)
	return err
}

func (s *seeder) commit() error {
	err := s.tx.Commit()
	s.tx = nil
	return err
}

// runSeed creates the accounts, conversations and messages in the
// database (migrating it first, exactly as the server does) and writes the
// users file. It writes the tables of the real schema directly, in big
// transactions without fsync: it builds a benchmark fixture, so only the
// end result matters, and a crash means seeding again.
func runSeed(ctx context.Context, c seedConfig, out, progress io.Writer) (*seedResult, error) {
	start := time.Now()
	store, err := sqlstore.Open(ctx, c.dsn)
	if err != nil {
		return nil, err
	}
	if err := store.Close(); err != nil {
		return nil, err
	}
	s := &seeder{}
	path := strings.TrimPrefix(c.dsn, "sqlite:")
	if strings.HasPrefix(c.dsn, "sqlite:") {
		// Foreign keys stay off only for this connection; every row written
		// references rows written before it anyway.
		s.db, err = sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+
			"?_pragma=busy_timeout(10000)&_pragma=synchronous(OFF)&_pragma=cache_size(-262144)&_pragma=foreign_keys(0)")
	} else {
		s.postgres = true
		s.db, err = sql.Open("pgx", c.dsn)
	}
	if err != nil {
		return nil, err
	}
	defer s.db.Close()
	s.db.SetMaxOpenConns(1)

	run := strconv.FormatInt(time.Now().UnixNano()%1e10, 36)
	now := time.Now().UTC().Truncate(time.Millisecond)
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	pwHash := fmt.Sprintf("$argon2id$v=%d$m=64,t=1,p=1$%s$%s", argon2.Version, base64.RawStdEncoding.EncodeToString(salt),
		base64.RawStdEncoding.EncodeToString(argon2.IDKey([]byte(seedPassword), salt, 1, 64, 1, 32)))
	f := &usersFile{Users: make([]*benchUser, c.users)}

	// Accounts, devices and sessions.
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	var users, devices, sessions [][]any
	flushUsers := func() error {
		err := errors.Join(
			s.insert(ctx, "users", []string{"id", "username", "username_lower", "name", "name_lower", "password_hash", "created_at", "updated_at"}, users),
			s.insert(ctx, "devices", []string{"user_id", "device_id", "public_key", "created_at", "updated_at"}, devices),
			s.insert(ctx, "sessions", []string{"token_hash", "user_id", "device_id", "created_at", "expires_at"}, sessions))
		users, devices, sessions = users[:0], devices[:0], sessions[:0]
		return err
	}
	ms := parley.Millis(now)
	for i := range c.users {
		name := fmt.Sprintf("s%s_%d", run, i)
		tok := make([]byte, 32)
		_, _ = rand.Read(tok)
		u := &benchUser{ID: parley.NewID("usr"), Name: name, Token: "prl_" + base64.RawURLEncoding.EncodeToString(tok)}
		f.Users[i] = u
		users = append(users, []any{u.ID, name, name, name, name, pwHash, ms, ms})
		devices = append(devices, []any{u.ID, "bench", "bench-key", ms, ms})
		sessions = append(sessions, []any{service.HashToken(u.Token), u.ID, "bench", ms, parley.Millis(now.Add(30 * 24 * time.Hour))})
		if len(users) == 5000 {
			if err := flushUsers(); err != nil {
				return nil, err
			}
		}
	}
	if err := flushUsers(); err != nil {
		return nil, err
	}
	if err := s.commit(); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "seeded %d accounts in %s\n", c.users, time.Since(start).Round(time.Millisecond))

	if c.conversations > 0 {
		if err := seedConversations(ctx, s, c, f, now, progress); err != nil {
			return nil, err
		}
	}
	if s.postgres {
		// What autovacuum would soon do after such a load; without it the
		// first plans run on an empty table's statistics.
		if _, err := s.db.ExecContext(ctx, "ANALYZE"); err != nil {
			return nil, err
		}
	} else if _, err := s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return nil, err
	}
	if err := writeUsersFile(c.out, f); err != nil {
		return nil, err
	}
	res := &seedResult{File: f, Messages: c.messages, Took: time.Since(start)}
	if !s.postgres {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if st, err := os.Stat(path + suffix); err == nil {
				res.Bytes += st.Size()
			}
		}
	}
	fmt.Fprintf(out, "\n== seed: %d accounts, %d direct conversations, %d messages of %d-byte padding ==\n",
		c.users, c.conversations, c.messages, c.size)
	fmt.Fprintf(out, "took %s", res.Took.Round(time.Millisecond))
	if c.messages > 0 {
		fmt.Fprintf(out, " (%.0f messages/s)", float64(c.messages)/res.Took.Seconds())
	}
	fmt.Fprintln(out)
	if res.Bytes > 0 {
		fmt.Fprintf(out, "database files %.1f MiB\n", float64(res.Bytes)/(1<<20))
	}
	fmt.Fprintf(out, "accounts and tokens written to %s (password of every seeded account: %s)\n", c.out, seedPassword)
	return res, nil
}

// seedConversations creates the direct conversations and fills them. Pair k
// is (k mod U, k mod U + 1 + k div U), which gives distinct pairs while
// k < U·⌊(U−1)/2⌋. Messages are written round by round (seq 1 of every
// conversation, then seq 2, ...), so a conversation's messages are spread
// over the file as they would be after months of use; each message has its
// sync-log row, and both members' cursors stand at the end (all delivered
// and seen). With --receipts each, every message has its own delivered
// and seen mark instead of one mark per member at the end. With --hubs,
// conversation k belongs to hub h = k div N (N = --hub-chats) and is
// (H + (k mod (U−H)), h) for H hubs: the N peers of a hub are distinct
// non-hub accounts, and the peer (A) sends the odd seqs, so a hub's
// one-message chats each end with a message to the hub.
func seedConversations(ctx context.Context, s *seeder, c seedConfig, f *usersFile, now time.Time, progress io.Writer) error {
	U, C, M := c.users, c.conversations, c.messages
	per, rem := M/C, M%C
	count := func(k int) int {
		if k < rem {
			return per + 1
		}
		return per
	}
	// lastIndex is the position, in the order written, of conversation k's
	// last message; message i is sent at t0 + i ms.
	lastIndex := func(k int) int {
		if k < rem {
			return per*C + k
		}
		return (per-1)*C + k
	}
	t0 := parley.Millis(now) - int64(M) - 60_000

	var head int64
	if err := s.db.QueryRowContext(ctx, "SELECT last FROM change_counter WHERE id = 1").Scan(&head); err != nil {
		return err
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	var convs, members, marks [][]any
	for k := range C {
		a, b := k%U, (k%U+1+k/U)%U
		if c.hubs > 0 {
			a, b = c.hubs+k%(U-c.hubs), k/c.hubChats
		}
		ua, ub := f.Users[a], f.Users[b]
		key := ua.ID + "|" + ub.ID // the store's direct key: the two ids in order
		if ub.ID < ua.ID {
			key = ub.ID + "|" + ua.ID
		}
		n := count(k)
		last := int64(0)
		if n > 0 {
			last = t0 + int64(lastIndex(k))
		}
		cv := &seededConv{ID: parley.NewConversationID(parley.KindDirect), A: a, B: b, Messages: n, Last: last}
		f.Conversations = append(f.Conversations, cv)
		created := parley.Millis(now) - int64(M) - 120_000
		convs = append(convs, []any{cv.ID, parley.KindDirect, key, n, last, created})
		for _, u := range []*benchUser{ua, ub} {
			members = append(members, []any{cv.ID, u.ID, "member", created, 0, n, n, n})
			if n > 0 && c.receipts != "each" {
				for _, kind := range []string{parley.StatusDelivered, parley.StatusSeen} {
					marks = append(marks, []any{cv.ID, u.ID, kind, n, last + 1})
				}
			}
		}
		if len(convs) == 2000 || k == C-1 {
			if err := errors.Join(
				s.insert(ctx, "conversations", []string{"id", "kind", "direct_key", "last_seq", "last_message_at", "created_at"}, convs),
				s.insert(ctx, "conversation_members", []string{"conversation_id", "user_id", "role", "joined_at", "joined_seq", "delivered_seq", "read_seq", "shown_read_seq"}, members),
				s.insert(ctx, "receipt_marks", []string{"conversation_id", "user_id", "kind", "seq", "at"}, marks)); err != nil {
				return err
			}
			convs, members, marks = convs[:0], members[:0], marks[:0]
		}
	}
	if err := s.commit(); err != nil {
		return err
	}

	pad := base64.StdEncoding.EncodeToString(make([]byte, c.size*3/4))
	content := `{"message":"` + pad + `","key":"k","iv":"iv"}`
	sum := sha256.Sum256([]byte(content))
	hash := hex.EncodeToString(sum[:])
	var written atomic.Int64
	stop := everySecond(ctx, progress, func(el time.Duration) string {
		w := written.Load()
		return fmt.Sprintf("messages %d/%d (%.0f/s)", w, M, float64(w)/el.Seconds())
	})
	defer stop()
	var msgs, changes, msgMarks [][]any
	flush := func() error {
		if err := s.begin(ctx); err != nil {
			return err
		}
		if err := errors.Join(
			s.insert(ctx, "messages", []string{"id", "conversation_id", "seq", "sender_id", "recipient_id", "content", "content_hash", "type", "sent_at"}, msgs),
			s.insert(ctx, "changes", []string{"id", "conversation_id", "seq", "event", "message_id", "created_at"}, changes),
			s.insert(ctx, "receipt_marks", []string{"conversation_id", "user_id", "kind", "seq", "at"}, msgMarks)); err != nil {
			_ = s.tx.Rollback()
			return err
		}
		last := head + written.Load() + int64(len(msgs))
		if _, err := s.tx.ExecContext(ctx, rebind(s.postgres, "UPDATE change_counter SET last = ? WHERE id = 1"), last); err != nil {
			_ = s.tx.Rollback()
			return err
		}
		// The seeded messages are old history: the push outbox starts
		// after them instead of walking every change at start-up.
		if _, err := s.tx.ExecContext(ctx, rebind(s.postgres, "UPDATE push_cursor SET last = ? WHERE id = 1"), last); err != nil {
			_ = s.tx.Rollback()
			return err
		}
		if err := s.commit(); err != nil {
			return err
		}
		written.Add(int64(len(msgs)))
		msgs, changes, msgMarks = msgs[:0], changes[:0], msgMarks[:0]
		return ctx.Err()
	}
	i := 0
	for r := 1; r <= per+1; r++ {
		for k := range C {
			if r > count(k) {
				continue
			}
			cv := f.Conversations[k]
			from, to := f.Users[cv.A], f.Users[cv.B]
			if r%2 == 0 {
				from, to = to, from
			}
			id := parley.NewID("msg")
			at := t0 + int64(i)
			msgs = append(msgs, []any{id, cv.ID, r, from.ID, to.ID, content, hash, "text", at})
			changes = append(changes, []any{head + int64(i) + 1, cv.ID, r, parley.EventNewMessage, id, at})
			if c.receipts == "each" {
				msgMarks = append(msgMarks, []any{cv.ID, to.ID, parley.StatusDelivered, r, at + 100}, []any{cv.ID, to.ID, parley.StatusSeen, r, at + 1000})
			}
			i++
			if len(msgs) == c.batch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if len(msgs) > 0 {
		return flush()
	}
	return nil
}

// rebind turns ? placeholders into PostgreSQL's $n.
func rebind(postgres bool, q string) string {
	if !postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
