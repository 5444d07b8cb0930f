package sqlstore_test

import (
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/sqlstore"
)

func postAt(t *testing.T, db *sqlstore.DB, conv, sender string, at time.Time) {
	t.Helper()
	s := &parley.Send{Message: &parley.Message{ID: parley.NewID("msg"), ConversationID: conv, SenderID: sender,
		Content: "c", ContentHash: "h", Type: "text", SentAt: at}}
	must(t, db.SendMessages(ctx, []*parley.Send{s}))
	if s.Err != nil {
		t.Fatalf("post by %s: %v", sender, s.Err)
	}
}

type counts struct{ sent, received int64 }

func countsOf(t *testing.T, db *sqlstore.DB, user string, from, to parley.Day) counts {
	t.Helper()
	c, err := db.UserCounts(ctx, user, from, to)
	must(t, err)
	return counts{c.Sent, c.Received}
}

// TestSharedReceived: a group member's "received" counts the others'
// posts of the times they were a member (windows across a removal and a
// return), by day, without a counter row per member: after the posts
// below user_daily_stats holds one row per sender and day, none for the
// members who only received. Deleting the group keeps the counts.
func TestSharedReceived(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			dsn := testdb.DSN(t, backend)
			db, err := sqlstore.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			raw := openRaw(t, backend, dsn)
			day1 := time.Date(2030, 3, 10, 12, 0, 0, 0, time.UTC)
			day2 := day1.Add(24 * time.Hour)
			d1, d2 := parley.DayOf(day1), parley.DayOf(day2)
			ann, bob, cat := mustUser(t, db, "ann"), mustUser(t, db, "bob"), mustUser(t, db, "cat")
			g := &parley.Group{ID: parley.NewConversationID(parley.KindGroup), Name: "G", CreatedBy: ann.ID, OwnerID: ann.ID}
			must(t, db.CreateGroup(ctx, g, []string{bob.ID}, day1, change(g.ID, "group_member_added")))
			add := func(u *parley.User) {
				_, err := db.AddGroupMembers(ctx, g.ID, []string{u.ID}, 1024, day1, func(_, _ []string) ([]*parley.Change, error) {
					return []*parley.Change{change(g.ID, "group_member_added")}, nil
				})
				must(t, err)
			}

			postAt(t, db, g.ID, ann.ID, day1)
			postAt(t, db, g.ID, ann.ID, day1.Add(time.Minute))
			postAt(t, db, g.ID, bob.ID, day1.Add(2*time.Minute))
			add(cat) // sees the group's history, but received none of it
			postAt(t, db, g.ID, ann.ID, day1.Add(3*time.Minute))
			if _, err := db.RemoveGroupMember(ctx, g.ID, bob.ID, day1, func(parley.GroupRemoval, []string) ([]*parley.Change, error) { return nil, nil }); err != nil {
				t.Fatal(err)
			}
			postAt(t, db, g.ID, cat.ID, day1.Add(4*time.Minute)) // bob is out
			add(bob)
			postAt(t, db, g.ID, ann.ID, day2)

			all := parley.Day(-1 << 40)
			for _, c := range []struct {
				who      *parley.User
				from, to parley.Day
				want     counts
			}{
				{ann, all, d2, counts{4, 2}}, {bob, all, d2, counts{1, 4}}, {cat, all, d2, counts{1, 2}},
				{ann, d1, d1, counts{3, 2}}, {bob, d1, d1, counts{1, 3}}, {cat, d1, d1, counts{1, 1}},
				{ann, d2, d2, counts{1, 0}}, {bob, d2, d2, counts{0, 1}}, {cat, d2, d2, counts{0, 1}},
			} {
				if got := countsOf(t, db, c.who.ID, c.from, c.to); got != c.want {
					t.Errorf("%s days %d..%d: %+v, want %+v", c.who.Username, c.from, c.to, got, c.want)
				}
			}
			var rows int
			must(t, raw.QueryRow(`SELECT COUNT(*) FROM user_daily_stats`).Scan(&rows))
			if rows != 4 { // ann day 1 and 2, bob day 1, cat day 1
				t.Errorf("user_daily_stats has %d rows, want 4 (one per sender and day)", rows)
			}

			if _, err := db.DeleteGroup(ctx, g.ID, func([]string) ([]*parley.Change, error) { return nil, nil }); err != nil {
				t.Fatal(err)
			}
			if got := countsOf(t, db, bob.ID, all, d2); got != (counts{1, 4}) {
				t.Errorf("bob after the group was deleted: %+v, want {1 4}", got)
			}
		})
	}
}

// TestSharedReceivedMigration: migration 0021 keeps what was counted
// before it (received per member, in user_daily_stats) and counts the
// members of existing groups from then on, once.
func TestSharedReceivedMigration(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			dsn := testdb.DSN(t, backend)
			db, err := sqlstore.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			day := time.Date(2030, 3, 10, 12, 0, 0, 0, time.UTC)
			ann, bob := mustUser(t, db, "ann"), mustUser(t, db, "bob")
			g := &parley.Group{ID: parley.NewConversationID(parley.KindGroup), Name: "G", CreatedBy: ann.ID, OwnerID: ann.ID}
			must(t, db.CreateGroup(ctx, g, []string{bob.ID}, day, change(g.ID, "group_member_added")))
			db.Close()

			// Back to before 0021, with a history of five posts by ann
			// counted the old way.
			raw := openRaw(t, backend, dsn)
			undo := []string{`DROP TRIGGER member_window_open`, `DROP TRIGGER member_window_close`}
			if backend == "postgres" {
				undo = []string{`DROP TRIGGER member_window_open ON conversation_members`, `DROP TRIGGER member_window_close ON conversation_members`,
					`DROP FUNCTION member_windows_open`, `DROP FUNCTION member_windows_close`}
			}
			undo = append(undo, `DROP TABLE member_windows`, `DROP TABLE conversation_daily_stats`,
				`ALTER TABLE user_daily_stats DROP COLUMN sent_shared`, `DELETE FROM schema_migrations WHERE version = 21`,
				`UPDATE conversations SET last_seq = 5`)
			for _, q := range undo {
				if _, err := raw.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			d := int64(parley.DayOf(day))
			for _, r := range [][3]any{{ann.ID, 5, 0}, {bob.ID, 0, 5}} {
				if _, err := raw.Exec(`INSERT INTO user_daily_stats (user_id, day, sent, received, last_sent_at) VALUES ($1, $2, $3, $4, 0)`,
					r[0], d, r[1], r[2]); err != nil {
					t.Fatal(err)
				}
			}
			raw.Close()

			if db, err = sqlstore.Open(ctx, dsn); err != nil {
				t.Fatalf("migrating: %v", err)
			}
			defer db.Close()
			all, today := parley.Day(-1<<40), parley.DayOf(day)
			if got := countsOf(t, db, bob.ID, all, today); got != (counts{0, 5}) {
				t.Fatalf("bob after the migration: %+v, want {0 5}", got)
			}
			postAt(t, db, g.ID, ann.ID, day.Add(time.Minute))
			postAt(t, db, g.ID, bob.ID, day.Add(2*time.Minute))
			if got := countsOf(t, db, bob.ID, all, today); got != (counts{1, 6}) {
				t.Errorf("bob after two more posts: %+v, want {1 6}", got)
			}
			if got := countsOf(t, db, ann.ID, all, today); got != (counts{6, 1}) {
				t.Errorf("ann after two more posts: %+v, want {6 1}", got)
			}
		})
	}
}
