package sqlstore_test

import (
	"slices"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/sqlstore"
)

// TestReceiptMarks reads a member's cursor advances for a range of seqs:
// those inside it and the first one after it, and nothing else.
func TestReceiptMarks(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		start := time.Now().UTC().Truncate(time.Millisecond)
		ann, bob := mustUser(t, db, "ann"), mustUser(t, db, "bob")
		conv, err := db.DirectConversation(ctx, ann.ID, bob.ID, start)
		must(t, err)
		var batch []*parley.Send
		for range 10 {
			batch = append(batch, &parley.Send{Message: &parley.Message{ID: parley.NewID("msg"), ConversationID: conv.ID,
				SenderID: ann.ID, RecipientID: bob.ID, Content: "c", ContentHash: "h", Type: "text", SentAt: start}})
		}
		must(t, db.SendMessages(ctx, batch))
		for i, seq := range []int64{3, 7, 10} {
			if _, err := db.AdvanceReceipt(ctx, conv.ID, bob.ID, parley.StatusDelivered, seq, start.Add(time.Duration(i+1)*time.Minute), false); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			from, to int64
			want     []int64
		}{
			{1, 1, []int64{3}},
			{4, 6, []int64{7}},
			{3, 7, []int64{3, 7, 10}},
			{1, 10, []int64{3, 7, 10}},
			{8, 10, []int64{10}},
			{11, 20, nil},
		} {
			marks, err := db.ReceiptMarks(ctx, conv.ID, bob.ID, parley.StatusDelivered, c.from, c.to)
			must(t, err)
			var got []int64
			for _, m := range marks {
				got = append(got, m.Seq)
			}
			if len(got) != len(c.want) {
				t.Fatalf("marks for %d..%d = %v, want %v", c.from, c.to, got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("marks for %d..%d = %v, want %v", c.from, c.to, got, c.want)
				}
			}
			if len(marks) > 0 && marks[len(marks)-1].Seq == 10 && !marks[len(marks)-1].At.Equal(start.Add(3*time.Minute)) {
				t.Fatalf("mark 10 at %v, want %v", marks[len(marks)-1].At, start.Add(3*time.Minute))
			}
		}
		if marks, err := db.ReceiptMarks(ctx, conv.ID, ann.ID, parley.StatusDelivered, 1, 10); err != nil || len(marks) != 0 {
			t.Fatalf("ann's marks = %v, %v; she has none", marks, err)
		}
	})
}

// TestMemberReceipts reads a direct conversation's receipt state over a
// range of seqs in one call, and it must be what Members, the users'
// settings and ReceiptMarks for each member and kind say separately.
func TestMemberReceipts(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		start := time.Now().UTC().Truncate(time.Millisecond)
		ann, bob := mustUser(t, db, "ann"), mustUser(t, db, "bob")
		settings := parley.DefaultSettings()
		settings.ReadReceipts = false
		_, err := db.UpdateSettings(ctx, ann.ID, settings, start)
		must(t, err)
		conv, err := db.DirectConversation(ctx, ann.ID, bob.ID, start)
		must(t, err)
		var batch []*parley.Send
		for i := range 12 {
			from, to := ann.ID, bob.ID
			if i%3 == 2 {
				from, to = bob.ID, ann.ID
			}
			batch = append(batch, &parley.Send{Message: &parley.Message{ID: parley.NewID("msg"), ConversationID: conv.ID,
				SenderID: from, RecipientID: to, Content: "c", ContentHash: "h", Type: "text", SentAt: start}})
		}
		must(t, db.SendMessages(ctx, batch))
		at := start
		advance := func(user *parley.User, kind string, seq int64, private bool) {
			t.Helper()
			at = at.Add(time.Minute)
			if _, err := db.AdvanceReceipt(ctx, conv.ID, user.ID, kind, seq, at, private); err != nil {
				t.Fatal(err)
			}
		}
		advance(bob, parley.StatusDelivered, 2, false)
		advance(bob, parley.StatusSeen, 4, false)
		advance(bob, parley.StatusDelivered, 8, false)
		advance(bob, parley.StatusSeen, 11, false)
		advance(ann, parley.StatusDelivered, 6, false)
		advance(ann, parley.StatusSeen, 9, true)
		members, err := db.Members(ctx, conv.ID)
		must(t, err)
		for _, r := range [][2]int64{{1, 1}, {1, 12}, {3, 5}, {5, 8}, {9, 9}, {12, 40}} {
			got, err := db.MemberReceipts(ctx, conv.ID, r[0], r[1])
			must(t, err)
			if len(got) != len(members) {
				t.Fatalf("%v: %d members, want %d", r, len(got), len(members))
			}
			for _, m := range got {
				i := slices.IndexFunc(members, func(w *parley.Member) bool { return w.UserID == m.UserID })
				if i < 0 || m.Member != *members[i] {
					t.Fatalf("%v: member %+v, want one of %v", r, m.Member, members)
				}
				if want := m.UserID == bob.ID; m.ReadReceipts != want {
					t.Errorf("%v: %s's readReceipts = %v, want %v", r, m.UserID, m.ReadReceipts, want)
				}
				for kind, marks := range map[string][]parley.ReceiptMark{parley.StatusDelivered: m.Delivered, parley.StatusSeen: m.Seen} {
					want, err := db.ReceiptMarks(ctx, conv.ID, m.UserID, kind, r[0], r[1])
					must(t, err)
					if len(marks) != len(want) {
						t.Fatalf("%v: %s's %s marks %v, want %v", r, m.UserID, kind, marks, want)
					}
					for j := range want {
						if marks[j].Seq != want[j].Seq || !marks[j].At.Equal(want[j].At) {
							t.Fatalf("%v: %s's %s marks %v, want %v", r, m.UserID, kind, marks, want)
						}
					}
				}
			}
		}
		if got, err := db.MemberReceipts(ctx, "conv_none", 1, 10); err != nil || len(got) != 0 {
			t.Fatalf("receipts of an unknown conversation = %v, %v; want none", got, err)
		}
	})
}
