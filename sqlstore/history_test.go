package sqlstore_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/sqlstore"
)

// TestHistory reads pages of a direct conversation: bounded by seq and by
// time, without what the viewer hid (and only for them), with reactions
// where there are some and an empty list elsewhere; an empty page for a
// member past the first message, ENOTFOUND for a stranger.
func TestHistory(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		start := time.Now().UTC().Truncate(time.Millisecond)
		ann, bob, cat := mustUser(t, db, "ann"), mustUser(t, db, "bob"), mustUser(t, db, "cat")
		conv, err := db.DirectConversation(ctx, ann.ID, bob.ID, start)
		must(t, err)
		var batch []*parley.Send
		for i := range 10 {
			batch = append(batch, &parley.Send{Message: &parley.Message{ID: parley.NewID("msg"), ConversationID: conv.ID,
				SenderID: ann.ID, RecipientID: bob.ID, Content: "c", ContentHash: "h", Type: "text", SentAt: start.Add(time.Duration(i) * time.Second)}})
		}
		must(t, db.SendMessages(ctx, batch))
		id := func(seq int64) string { return batch[seq-1].Message.ID }
		must(t, db.HideMessage(ctx, id(4), bob.ID, nil))
		must(t, db.SetReaction(ctx, id(6), ann.ID, "👍", start, nil))
		must(t, db.SetReaction(ctx, id(6), bob.ID, "🎉", start.Add(time.Second), nil))

		seqs := func(viewer string, beforeSeq int64, before time.Time, limit int) []int64 {
			t.Helper()
			msgs, err := db.History(ctx, conv.ID, viewer, beforeSeq, before, limit)
			must(t, err)
			out := []int64{}
			for _, m := range msgs {
				out = append(out, m.Seq)
				want := 0
				if m.Seq == 6 {
					want = 2
				}
				if m.Reactions == nil || len(m.Reactions) != want {
					t.Fatalf("message %d has reactions %v, want %d", m.Seq, m.Reactions, want)
				}
			}
			return out
		}
		for _, c := range []struct {
			name      string
			viewer    string
			beforeSeq int64
			before    time.Time
			limit     int
			want      []int64
		}{
			{"Newest", ann.ID, 0, time.Time{}, 3, []int64{10, 9, 8}},
			{"BeforeSeq", ann.ID, 6, time.Time{}, 3, []int64{5, 4, 3}},
			{"HiddenForBob", bob.ID, 6, time.Time{}, 3, []int64{5, 3, 2}},
			{"BeforeTime", bob.ID, 0, start.Add(3 * time.Second), 10, []int64{3, 2, 1}},
			{"PastTheFirst", ann.ID, 1, time.Time{}, 10, []int64{}},
		} {
			t.Run(c.name, func(t *testing.T) {
				got := seqs(c.viewer, c.beforeSeq, c.before, c.limit)
				if len(got) != len(c.want) {
					t.Fatalf("seqs %v, want %v", got, c.want)
				}
				for i := range got {
					if got[i] != c.want[i] {
						t.Fatalf("seqs %v, want %v", got, c.want)
					}
				}
			})
		}
		t.Run("ErrNotFound", func(t *testing.T) {
			if msgs, err := db.History(ctx, conv.ID, cat.ID, 0, time.Time{}, 10); parley.ErrorCode(err) != parley.ENOTFOUND {
				t.Fatalf("a stranger's page = %d messages, %v; want ENOTFOUND", len(msgs), err)
			}
		})
	})
}

// TestHistoryFields reads every field of a page's messages as MessageByID
// does, for either member: the page reads the viewer's own id, and empty
// optional columns, as NULL, and its conversation id from the argument.
func TestHistoryFields(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		start := time.Now().UTC().Truncate(time.Millisecond)
		ann, bob := mustUser(t, db, "ann"), mustUser(t, db, "bob")
		conv, err := db.DirectConversation(ctx, ann.ID, bob.ID, start)
		must(t, err)
		media := &parley.Media{ID: parley.NewID("med"), OwnerID: bob.ID, FileType: "image", MimeType: "image/png", Size: 10,
			SHA256: "s", UploadedAt: start}
		must(t, db.CreateMedia(ctx, media))
		first := &parley.Message{ID: parley.NewID("msg"), ConversationID: conv.ID, SenderID: ann.ID, RecipientID: bob.ID,
			Content: "one", ContentHash: "h1", Type: "text", SentAt: start}
		sends := []*parley.Send{{Message: first},
			{Message: &parley.Message{ID: parley.NewID("msg"), ConversationID: conv.ID, SenderID: bob.ID, RecipientID: ann.ID,
				ClientMessageID: "c2", Content: "", ContentHash: "h2", Type: "image", MediaID: media.ID, SentAt: start.Add(time.Second)}},
			{Message: &parley.Message{ID: parley.NewID("msg"), ConversationID: conv.ID, SenderID: ann.ID, RecipientID: bob.ID,
				ClientMessageID: "c3", Content: "three", ContentHash: "h3", Type: "text", ReplyToID: first.ID,
				ReplyToStatusID: "sts_x", SentAt: start.Add(2 * time.Second)}},
		}
		must(t, db.SendMessages(ctx, sends))
		for _, s := range sends {
			must(t, s.Err)
		}
		must(t, db.EditMessage(ctx, first.ID, "one!", "h1e", start.Add(time.Minute), nil))
		for _, viewer := range []string{ann.ID, bob.ID} {
			page, err := db.History(ctx, conv.ID, viewer, 0, time.Time{}, 10)
			must(t, err)
			if len(page) != len(sends) {
				t.Fatalf("%s: %d messages, want %d", viewer, len(page), len(sends))
			}
			for _, m := range page {
				want, err := db.MessageByID(ctx, m.ID)
				must(t, err)
				if !reflect.DeepEqual(m, want) {
					t.Errorf("%s: page has %+v, MessageByID %+v", viewer, *m, *want)
				}
			}
		}
	})
}
