package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/sqlstore"
)

var ctx = context.Background()

// openRaw opens dsn (a database testdb made) as a plain database/sql
// handle, for tests that look at or rewind the schema; closed at the
// end of the test.
func openRaw(tb testing.TB, backend, dsn string) *sql.DB {
	tb.Helper()
	driver, source := "pgx", dsn
	if backend == "sqlite" {
		driver, source = "sqlite", strings.TrimPrefix(dsn, "sqlite:")
	}
	raw, err := sql.Open(driver, source)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { raw.Close() })
	return raw
}

func mustUser(tb testing.TB, db *sqlstore.DB, username string) *parley.User {
	tb.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	u := &parley.User{ID: parley.NewID("usr"), Username: username, Email: username + "@example.test",
		PasswordHash: "hash", Name: "Name " + username, Settings: parley.DefaultSettings(), CreatedAt: now, UpdatedAt: now}
	d := &parley.Device{UserID: u.ID, DeviceID: "dev1", PublicKey: "pk-" + username, CreatedAt: now, UpdatedAt: now}
	if err := db.CreateUser(ctx, u, d); err != nil {
		tb.Fatalf("create user %s: %v", username, err)
	}
	return u
}

// TestUsers is the user-store contract, run on every backend.
func TestUsers(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ann := mustUser(t, db, "Ann")
		t.Run("OK", func(t *testing.T) {
			got, err := db.UserByID(ctx, ann.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Username != "Ann" || got.Email != "Ann@example.test" || !got.CreatedAt.Equal(ann.CreatedAt) || !got.Settings.ReadReceipts {
				t.Fatalf("got %+v, want %+v", got, ann)
			}
			byName, err := db.UserByUsername(ctx, "aNN")
			if err != nil || byName.ID != ann.ID {
				t.Fatalf("by username: %v %v", byName, err)
			}
			byEmail, err := db.UserByEmail(ctx, "ANN@example.test")
			if err != nil || byEmail.ID != ann.ID {
				t.Fatalf("by email: %v %v", byEmail, err)
			}
		})
		t.Run("ErrUsernameTaken", func(t *testing.T) {
			u := &parley.User{ID: parley.NewID("usr"), Username: "ANN", PasswordHash: "x", Settings: parley.DefaultSettings()}
			if err := db.CreateUser(ctx, u, nil); parley.ErrorCode(err) != parley.EUSERNAMETAKEN {
				t.Fatalf("err = %v, want username_taken", err)
			}
		})
		t.Run("ErrNotFound", func(t *testing.T) {
			if _, err := db.UserByID(ctx, "usr_missing"); parley.ErrorCode(err) != parley.ENOTFOUND {
				t.Fatalf("err = %v", err)
			}
			if _, err := db.UserByEmail(ctx, ""); parley.ErrorCode(err) != parley.ENOTFOUND {
				t.Fatalf("empty email err = %v", err)
			}
		})
		t.Run("Search", func(t *testing.T) {
			mustUser(t, db, "annabel")
			mustUser(t, db, "bob")
			mustUser(t, db, "a_b")
			got, err := db.SearchUsers(ctx, "ann", 20)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0].Username != "Ann" || got[1].Username != "annabel" {
				t.Fatalf("search ann = %v", names(got))
			}
			// "_" must match literally, not as a LIKE wildcard.
			got, _ = db.SearchUsers(ctx, "a_", 20)
			if len(got) != 1 || got[0].Username != "a_b" {
				t.Fatalf("search a_ = %v", names(got))
			}
			got, _ = db.SearchUsers(ctx, "name b", 20) // by display name
			if len(got) != 1 || got[0].Username != "bob" {
				t.Fatalf("search by name = %v", names(got))
			}
			got, _ = db.SearchUsers(ctx, "", 2)
			if len(got) != 2 {
				t.Fatalf("limit not applied: %v", names(got))
			}
		})
		t.Run("Profile", func(t *testing.T) {
			name, about := "Ann A.", "hi"
			u, err := db.UpdateProfile(ctx, ann.ID, parley.ProfileUpdate{Name: &name, About: &about}, time.Now())
			if err != nil || u.Name != name || u.About != about || u.Avatar != "" {
				t.Fatalf("update profile: %+v %v", u, err)
			}
			s := parley.Settings{LastSeenVisibility: parley.VisibilityNobody, ReadReceipts: false, PushPreviews: true}
			u, err = db.UpdateSettings(ctx, ann.ID, s, time.Now())
			if err != nil || u.Settings != s {
				t.Fatalf("settings: %+v %v", u, err)
			}
			if _, err := db.UpdateSettings(ctx, "usr_missing", s, time.Now()); parley.ErrorCode(err) != parley.ENOTFOUND {
				t.Fatalf("settings of missing user: %v", err)
			}
		})
		t.Run("Devices", func(t *testing.T) {
			now := time.Now()
			created, err := db.UpsertDevice(ctx, &parley.Device{UserID: ann.ID, DeviceID: "dev2", PublicKey: "k2", CreatedAt: now, UpdatedAt: now})
			if err != nil || !created {
				t.Fatalf("add device: %v %v", created, err)
			}
			created, err = db.UpsertDevice(ctx, &parley.Device{UserID: ann.ID, DeviceID: "dev1", PublicKey: "rotated", CreatedAt: now, UpdatedAt: now})
			if err != nil || created {
				t.Fatalf("rotate device: %v %v", created, err)
			}
			ds, err := db.Devices(ctx, ann.ID)
			if err != nil || len(ds) != 2 || ds[0].DeviceID != "dev1" || ds[0].PublicKey != "rotated" || ds[1].PublicKey != "k2" {
				t.Fatalf("devices: %+v %v", ds, err)
			}
		})
	})
}

func names(us []*parley.User) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.Username)
	}
	return out
}

// TestSessions is the session-store contract, run on every backend.
func TestSessions(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ann := mustUser(t, db, "ann")
		now := time.Now()
		for _, h := range []string{"h1", "h2"} {
			if err := db.CreateSession(ctx, &parley.Session{TokenHash: h, UserID: ann.ID, DeviceID: "dev1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		t.Run("Revoke", func(t *testing.T) {
			if _, err := db.SessionByTokenHash(ctx, "h1"); err != nil {
				t.Fatal(err)
			}
			if err := db.RevokeSession(ctx, "h1"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.SessionByTokenHash(ctx, "h1"); parley.ErrorCode(err) != parley.ENOTFOUND {
				t.Fatalf("revoked session still found: %v", err)
			}
		})
		t.Run("ResetPassword", func(t *testing.T) {
			if err := db.CreatePasswordReset(ctx, &parley.PasswordReset{TokenHash: "r1", UserID: ann.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if err := db.CreatePasswordReset(ctx, &parley.PasswordReset{TokenHash: "old", UserID: ann.ID, CreatedAt: now, ExpiresAt: now.Add(-time.Second)}); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ResetPassword(ctx, "old", "new-hash", now); parley.ErrorCode(err) != parley.ENOTFOUND {
				t.Fatalf("expired token accepted: %v", err)
			}
			uid, err := db.ResetPassword(ctx, "r1", "new-hash", now)
			if err != nil || uid != ann.ID {
				t.Fatalf("reset: %v %v", uid, err)
			}
			if _, err := db.ResetPassword(ctx, "r1", "other", now); parley.ErrorCode(err) != parley.ENOTFOUND {
				t.Fatalf("token used twice: %v", err)
			}
			u, _ := db.UserByID(ctx, ann.ID)
			if u.PasswordHash != "new-hash" {
				t.Fatalf("hash = %q", u.PasswordHash)
			}
			if _, err := db.SessionByTokenHash(ctx, "h2"); parley.ErrorCode(err) != parley.ENOTFOUND {
				t.Fatalf("sessions not revoked by reset: %v", err)
			}
		})
	})
}

// TestSocial is the contacts/blocks/mutes contract, run on every backend.
func TestSocial(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		a, b, c := mustUser(t, db, "aaa"), mustUser(t, db, "bbb"), mustUser(t, db, "ccc")
		now := time.Now()
		t.Run("Contacts", func(t *testing.T) {
			must(t, db.AddContact(ctx, a.ID, b.ID, now))
			must(t, db.AddContact(ctx, a.ID, b.ID, now)) // twice is fine
			must(t, db.AddContact(ctx, c.ID, b.ID, now.Add(time.Millisecond)))
			got, _ := db.Contacts(ctx, a.ID)
			if fmt.Sprint(got) != fmt.Sprint([]string{b.ID}) {
				t.Fatalf("contacts = %v", got)
			}
			rev, _ := db.ContactOf(ctx, b.ID)
			if fmt.Sprint(rev) != fmt.Sprint([]string{a.ID, c.ID}) {
				t.Fatalf("contact of = %v", rev)
			}
			must(t, db.RemoveContact(ctx, a.ID, b.ID))
			got, _ = db.Contacts(ctx, a.ID)
			if len(got) != 0 {
				t.Fatalf("after remove = %v", got)
			}
		})
		t.Run("Blocks", func(t *testing.T) {
			must(t, db.Block(ctx, a.ID, c.ID, now))
			for _, pair := range [][2]string{{a.ID, c.ID}, {c.ID, a.ID}} {
				if ok, err := db.BlockedEither(ctx, pair[0], pair[1]); err != nil || !ok {
					t.Fatalf("BlockedEither%v = %v %v", pair, ok, err)
				}
			}
			if ok, _ := db.BlockedEither(ctx, a.ID, b.ID); ok {
				t.Fatal("a and b are not blocked")
			}
			if got, _ := db.BlockedEitherWay(ctx, c.ID); fmt.Sprint(got) != fmt.Sprint([]string{a.ID}) {
				t.Fatalf("BlockedEitherWay = %v", got)
			}
			got, _ := db.Blocked(ctx, a.ID)
			if fmt.Sprint(got) != fmt.Sprint([]string{c.ID}) {
				t.Fatalf("blocked = %v", got)
			}
			must(t, db.Unblock(ctx, a.ID, c.ID))
			if ok, _ := db.BlockedEither(ctx, c.ID, a.ID); ok {
				t.Fatal("still blocked after unblock")
			}
		})
		t.Run("Mutes", func(t *testing.T) {
			must(t, db.Mute(ctx, a.ID, b.ID, now.Add(time.Minute), now))
			if ok, _ := db.IsMuted(ctx, a.ID, b.ID, now); !ok {
				t.Fatal("not muted")
			}
			if ok, _ := db.IsMuted(ctx, a.ID, b.ID, now.Add(2*time.Minute)); ok {
				t.Fatal("mute did not expire")
			}
			if ok, _ := db.IsMuted(ctx, b.ID, a.ID, now); ok {
				t.Fatal("mute is one-way")
			}
			must(t, db.Mute(ctx, a.ID, b.ID, time.Time{}, now)) // until unmuted
			if ok, _ := db.IsMuted(ctx, a.ID, b.ID, now.Add(24*365*time.Hour)); !ok {
				t.Fatal("indefinite mute expired")
			}
			must(t, db.Unmute(ctx, a.ID, b.ID))
			if ok, _ := db.IsMuted(ctx, a.ID, b.ID, now); ok {
				t.Fatal("muted after unmute")
			}
		})
	})
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// TestConcurrentWrites drives the store from many goroutines at once: SQLite
// must queue writers instead of answering "database is locked".
func TestConcurrentWrites(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		owner := mustUser(t, db, "owner")
		var wg sync.WaitGroup
		errs := make(chan error, 400)
		for g := 0; g < 40; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					now := time.Now()
					u := &parley.User{ID: parley.NewID("usr"), Username: fmt.Sprintf("u%d_%d", g, i), PasswordHash: "x",
						Settings: parley.DefaultSettings(), CreatedAt: now, UpdatedAt: now}
					if err := db.CreateUser(ctx, u, nil); err != nil {
						errs <- err
						continue
					}
					if err := db.AddContact(ctx, owner.ID, u.ID, now); err != nil {
						errs <- err
					}
					if _, err := db.Contacts(ctx, owner.ID); err != nil {
						errs <- err
					}
				}
			}(g)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent write: %v", err)
		}
		got, _ := db.Contacts(ctx, owner.ID)
		if len(got) != 400 {
			t.Fatalf("contacts = %d, want 400", len(got))
		}
	})
}
