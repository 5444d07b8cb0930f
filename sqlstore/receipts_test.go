package sqlstore_test

import (
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
