package sqlstore_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/sqlstore"
)

// TestStatuses is the status-store contract, run on every backend: the one
// visibility rule of every read, one first view however many readers race,
// and deletion and purge removing what refers to a status.
func TestStatuses(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		now := time.Now().UTC().Truncate(time.Millisecond)
		ann, bob, cat := mustUser(t, db, "ann"), mustUser(t, db, "bob"), mustUser(t, db, "cat")
		must(t, db.AddContact(ctx, ann.ID, bob.ID, now))
		must(t, db.AddContact(ctx, ann.ID, cat.ID, now))
		st := &parley.Status{ID: parley.NewID("status"), OwnerID: ann.ID, Type: parley.StatusTypeText, Content: "c",
			VisibleTo: parley.VisibleToAll, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		created := &parley.Change{ConversationID: st.ID, Event: parley.EventStatusCreated, MessageID: st.ID, ToUser: bob.ID,
			Payload: []byte(`{}`), CreatedAt: now}
		must(t, db.CreateStatus(ctx, st, []parley.StatusViewer{{UserID: bob.ID, EncryptedKey: "kb"}, {UserID: cat.ID, EncryptedKey: "kc"}}, created))

		t.Run("Visibility", func(t *testing.T) {
			seen, err := db.VisibleStatus(ctx, st.ID, bob.ID, now)
			if err != nil || seen.Key != "kb" || !seen.ViewedAt.IsZero() || seen.Status.Content != "c" {
				t.Fatalf("bob: %+v %v", seen, err)
			}
			if _, err := db.VisibleStatus(ctx, st.ID, ann.ID, now); parley.ErrorCode(err) != parley.ENOTFOUND {
				t.Fatalf("the owner is no viewer of their own: %v", err)
			}
			if _, err := db.VisibleStatus(ctx, st.ID, bob.ID, st.ExpiresAt); parley.ErrorCode(err) != parley.ENOTFOUND {
				t.Fatalf("at its expiry: %v", err)
			}
			// cat blocks ann: nothing either way; unblocked, back.
			must(t, db.Block(ctx, cat.ID, ann.ID, now))
			if list, err := db.StatusFeed(ctx, cat.ID, now); err != nil || len(list) != 0 {
				t.Fatalf("feed across a block: %v %v", list, err)
			}
			if ok, err := db.CanReadStatusMedia(ctx, "media_x", cat.ID, now); err != nil || ok {
				t.Fatalf("media across a block: %v %v", ok, err)
			}
			must(t, db.Unblock(ctx, cat.ID, ann.ID))
			if list, err := db.StatusesOf(ctx, ann.ID, cat.ID, now); err != nil || len(list) != 1 || list[0].Key != "kc" {
				t.Fatalf("after the unblock: %v %v", list, err)
			}
			// No longer a contact: nothing.
			must(t, db.RemoveContact(ctx, ann.ID, cat.ID))
			if list, err := db.StatusesOf(ctx, ann.ID, cat.ID, now); err != nil || len(list) != 0 {
				t.Fatalf("a removed contact: %v %v", list, err)
			}
			if own, err := db.StatusesOf(ctx, ann.ID, ann.ID, now); err != nil || len(own) != 1 {
				t.Fatalf("the owner's own: %v %v", own, err)
			}
		})

		t.Run("OneFirstView", func(t *testing.T) {
			var wg sync.WaitGroup
			var firsts atomic.Int32
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ch := &parley.Change{ConversationID: st.ID, Event: parley.EventStatusViewed, MessageID: st.ID, ToUser: ann.ID,
						Payload: []byte(`{}`), CreatedAt: now}
					first, err := db.RecordStatusView(ctx, st.ID, bob.ID, now.Add(time.Duration(i)*time.Millisecond), ch)
					if err != nil {
						t.Error(err)
					}
					if first {
						firsts.Add(1)
					}
				}()
			}
			wg.Wait()
			if firsts.Load() != 1 {
				t.Fatalf("%d first views, want 1", firsts.Load())
			}
			changes, _, err := db.Changes(ctx, ann.ID, 0, 100)
			if err != nil || len(changes) != 1 || changes[0].Event != parley.EventStatusViewed {
				t.Fatalf("the owner's sync: %v %v", changes, err)
			}
			viewers, err := db.StatusViewers(ctx, []string{st.ID})
			if err != nil || len(viewers[st.ID]) != 2 || viewers[st.ID][0].UserID != bob.ID || viewers[st.ID][0].ViewedAt.IsZero() ||
				!viewers[st.ID][1].ViewedAt.IsZero() {
				t.Fatalf("viewers (viewed first): %+v %v", viewers, err)
			}
		})

		t.Run("Purge", func(t *testing.T) {
			if _, err := db.DeleteStatus(ctx, st.ID, bob.ID); parley.ErrorCode(err) != parley.ENOTFOUND {
				t.Fatalf("deleted by another: %v", err)
			}
			if list, err := db.DeleteExpiredStatuses(ctx, st.ExpiresAt.Add(-time.Millisecond), 10); err != nil || len(list) != 0 {
				t.Fatalf("purged before its expiry: %v %v", list, err)
			}
			list, err := db.DeleteExpiredStatuses(ctx, st.ExpiresAt, 10)
			if err != nil || len(list) != 1 || list[0].ID != st.ID {
				t.Fatalf("purge at its expiry: %v %v", list, err)
			}
			if _, err := db.StatusByID(ctx, st.ID); parley.ErrorCode(err) != parley.ENOTFOUND {
				t.Fatalf("purged status: %v", err)
			}
			if v, err := db.StatusViewers(ctx, []string{st.ID}); err != nil || len(v) != 0 {
				t.Fatalf("viewers left: %v %v", v, err)
			}
			for _, u := range []*parley.User{ann, bob} {
				if changes, _, err := db.Changes(ctx, u.ID, 0, 100); err != nil || len(changes) != 0 {
					t.Fatalf("%s's sync still has %d entries (%v)", u.Username, len(changes), err)
				}
			}
		})
	})
}
