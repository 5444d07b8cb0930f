package sqlstore_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/sqlstore"
)

// TestEmailUnique (issue #12 defect 8): an address is unique whatever its
// case; of concurrent registrations with one address exactly one wins and
// the others get email_taken, never an internal error.
func TestEmailUnique(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		now := time.Now().UTC().Truncate(time.Millisecond)
		newUser := func(name, email string) *parley.User {
			return &parley.User{ID: parley.NewID("usr"), Username: name, Email: email, PasswordHash: "h",
				Settings: parley.DefaultSettings(), CreatedAt: now, UpdatedAt: now}
		}
		if err := db.CreateUser(ctx, newUser("ann", "Ann@Example.test"), nil); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateUser(ctx, newUser("eve", "ann@example.TEST"), nil); parley.ErrorCode(err) != parley.EEMAILTAKEN {
			t.Fatalf("same address, other case: %v, want email_taken", err)
		}
		if err := db.CreateUser(ctx, newUser("ANN", "other@example.test"), nil); parley.ErrorCode(err) != parley.EUSERNAMETAKEN {
			t.Fatalf("taken username: %v, want username_taken", err)
		}
		for _, n := range []string{"no1", "no2"} { // no address is not an address
			if err := db.CreateUser(ctx, newUser(n, ""), nil); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = db.CreateUser(ctx, newUser(fmt.Sprintf("racer%d", i), "Race@example.test"), nil)
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch parley.ErrorCode(err) {
			case "":
				won++
			case parley.EEMAILTAKEN:
			default:
				t.Fatalf("concurrent registration: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d concurrent registrations with one address succeeded, want 1", won)
		}
	})
}

// TestEmailUniqueMigration: migration 0009 keeps a duplicated address on
// the earliest-registered account and clears it on the later ones.
func TestEmailUniqueMigration(t *testing.T) {
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			dsn := testdb.DSN(t, backend)
			db, err := sqlstore.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			raw := openRaw(t, backend, dsn)
			// Back to the schema before 0009, with duplicates in it.
			for _, q := range []string{
				`DROP INDEX users_email_lower`,
				`CREATE INDEX users_email_lower ON users (email_lower) WHERE email_lower <> ''`,
				`DELETE FROM schema_migrations WHERE version = 9`,
			} {
				if _, err := raw.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			for i, email := range []string{"Dup@x.test", "dup@X.TEST", "other@x.test", "DUP@x.test"} {
				id := fmt.Sprintf("usr_%d", i)
				if _, err := raw.Exec(`INSERT INTO users (id, username, username_lower, email, email_lower, password_hash, created_at, updated_at)
					VALUES ($1, $2, $3, $4, $5, 'h', $6, $6)`, id, id, id, email, strings.ToLower(email), 1000+i); err != nil {
					t.Fatal(err)
				}
			}
			raw.Close()
			if db, err = sqlstore.Open(ctx, dsn); err != nil {
				t.Fatalf("migrating: %v", err)
			}
			defer db.Close()
			want := map[string]string{"usr_0": "Dup@x.test", "usr_1": "", "usr_2": "other@x.test", "usr_3": ""}
			for id, email := range want {
				u, err := db.UserByID(ctx, id)
				if err != nil || u.Email != email {
					t.Fatalf("%s after the migration: email %q (%v), want %q", id, u.Email, err, email)
				}
			}
			if u, err := db.UserByEmail(ctx, "DUP@X.test"); err != nil || u.ID != "usr_0" {
				t.Fatalf("the address now belongs to %v (%v), want usr_0", u, err)
			}
		})
	}
}
