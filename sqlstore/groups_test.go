package sqlstore_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/sqlstore"
)

func groupMsg(groupID, sender string) *parley.Send {
	return &parley.Send{Message: &parley.Message{ID: parley.NewID("msg"), ConversationID: groupID, SenderID: sender,
		Content: "c", ContentHash: "h", Type: "text", SentAt: time.Now().UTC().Truncate(time.Millisecond)}}
}

func change(groupID, event string) *parley.Change {
	return &parley.Change{ConversationID: groupID, Event: event, Payload: []byte(`{}`), CreatedAt: time.Now()}
}

// TestGroupStore is the group-store contract, run on every backend.
func TestGroupStore(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		var ann, bob, cat, dan *parley.User
		var g *parley.Group
		now := time.Now().UTC().Truncate(time.Millisecond)
		worlds := 0
		// setup gives each subtest users and a group of its own (Ann, its
		// owner, with Bob) so that any subtest runs alone; withCat adds
		// Cat later, after two messages.
		setup := func(t *testing.T, withCat bool) {
			t.Helper()
			worlds++
			name := func(s string) string { return fmt.Sprintf("%s%d", s, worlds) }
			ann, bob, cat, dan = mustUser(t, db, name("ann")), mustUser(t, db, name("bob")), mustUser(t, db, name("cat")), mustUser(t, db, name("dan"))
			g = &parley.Group{ID: parley.NewConversationID(parley.KindGroup), Name: "G", CreatedBy: ann.ID, OwnerID: ann.ID}
			must(t, db.CreateGroup(ctx, g, []string{bob.ID}, now, change(g.ID, "group_member_added")))
			if withCat {
				must(t, db.SendMessages(ctx, []*parley.Send{groupMsg(g.ID, ann.ID), groupMsg(g.ID, bob.ID)}))
				_, err := db.AddGroupMembers(ctx, g.ID, []string{cat.ID}, 1024, now.Add(time.Second), func(_, _ []string) ([]*parley.Change, error) {
					return []*parley.Change{change(g.ID, "group_member_added")}, nil
				})
				must(t, err)
			}
		}

		t.Run("SendChecksMembership", func(t *testing.T) {
			setup(t, false)
			batch := []*parley.Send{groupMsg(g.ID, ann.ID), groupMsg(g.ID, cat.ID), groupMsg("group_nope", ann.ID), groupMsg(g.ID, bob.ID)}
			must(t, db.SendMessages(ctx, batch))
			if batch[0].Err != nil || batch[0].Message.Seq != 1 || len(batch[0].Recipients) != 2 {
				t.Fatalf("member send = %+v", batch[0])
			}
			if parley.ErrorCode(batch[1].Err) != parley.ENOTFOUND || parley.ErrorCode(batch[2].Err) != parley.ENOTFOUND {
				t.Fatalf("outsider sends: %v, %v", batch[1].Err, batch[2].Err)
			}
			if batch[3].Err != nil || batch[3].Message.Seq != 2 { // no gap left by the refused sends
				t.Fatalf("second send = %+v", batch[3])
			}
			g.Settings.OnlyAdminsCanSend = true
			must(t, db.UpdateGroup(ctx, g, change(g.ID, "group_updated")))
			batch = []*parley.Send{groupMsg(g.ID, bob.ID), groupMsg(g.ID, ann.ID)}
			must(t, db.SendMessages(ctx, batch))
			if parley.ErrorCode(batch[0].Err) != parley.EFORBIDDEN || batch[1].Err != nil || batch[1].Message.Seq != 3 {
				t.Fatalf("only admins: %v %+v", batch[0].Err, batch[1])
			}
			g.Settings.OnlyAdminsCanSend = false
			must(t, db.UpdateGroup(ctx, g, change(g.ID, "group_updated")))
		})

		t.Run("JoinerSeesOnlyLaterChanges", func(t *testing.T) {
			setup(t, false)
			must(t, db.SendMessages(ctx, []*parley.Send{groupMsg(g.ID, ann.ID), groupMsg(g.ID, bob.ID), groupMsg(g.ID, ann.ID)}))
			added, err := db.AddGroupMembers(ctx, g.ID, []string{cat.ID, bob.ID}, 1024, now.Add(time.Second), func(added, before []string) ([]*parley.Change, error) {
				if len(added) != 1 || len(before) != 2 {
					t.Errorf("build(%v, %v)", added, before)
				}
				return []*parley.Change{change(g.ID, "group_member_added")}, nil
			})
			if err != nil || len(added) != 1 || added[0] != cat.ID {
				t.Fatalf("added %v, %v", added, err)
			}
			changes, _, err := db.Changes(ctx, cat.ID, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(changes) != 1 || changes[0].Event != "group_member_added" {
				t.Fatalf("cat's changes = %+v", changes)
			}
			msgs, err := db.History(ctx, g.ID, cat.ID, 0, time.Time{}, 50)
			if err != nil || len(msgs) != 0 {
				t.Fatalf("cat's history = %d, %v", len(msgs), err)
			}
			m, err := db.Member(ctx, g.ID, cat.ID)
			if err != nil || m.JoinedSeq != 3 || m.DeliveredSeq != 3 || m.JoinedChange != changes[0].ID-1 {
				t.Fatalf("cat = %+v, %v", m, err)
			}
			if _, err := db.AddGroupMembers(ctx, g.ID, []string{dan.ID}, 3, now, func(_, _ []string) ([]*parley.Change, error) { return nil, nil }); parley.ErrorCode(err) != parley.ECONFLICT {
				t.Fatalf("over the limit: %v", err)
			}
		})

		t.Run("RemovalPromotes", func(t *testing.T) {
			setup(t, true)
			// Ann (owner, only admin) leaves: Bob, the longest-standing member, is promoted and owns it.
			r, err := db.RemoveGroupMember(ctx, g.ID, ann.ID, now, func(r parley.GroupRemoval, remaining []string) ([]*parley.Change, error) {
				own := change(g.ID, "group_member_removed")
				own.ToUser = ann.ID
				return []*parley.Change{change(g.ID, "group_member_removed"), own}, nil
			})
			if err != nil || r.Promoted != bob.ID || r.OwnerID != bob.ID {
				t.Fatalf("removal = %+v, %v", r, err)
			}
			got, err := db.Group(ctx, g.ID)
			if err != nil || got.OwnerID != bob.ID || got.MembersCount != 2 {
				t.Fatalf("group = %+v, %v", got, err)
			}
			if _, err := db.RemoveGroupMember(ctx, g.ID, ann.ID, now, nil); parley.ErrorCode(err) != parley.ENOTFOUND {
				t.Fatalf("second removal: %v", err)
			}
			head, _ := db.HeadChange(ctx)
			changes, _, err := db.Changes(ctx, ann.ID, head-2, 10)
			if err != nil || len(changes) != 1 || changes[0].ToUser != ann.ID {
				t.Fatalf("ann's changes after leaving = %+v, %v", changes, err)
			}
			batch := []*parley.Send{groupMsg(g.ID, ann.ID)}
			must(t, db.SendMessages(ctx, batch))
			if parley.ErrorCode(batch[0].Err) != parley.ENOTFOUND {
				t.Fatalf("former member's send: %v", batch[0].Err)
			}
		})

		t.Run("Delete", func(t *testing.T) {
			setup(t, true)
			own := change(g.ID, "group_deleted")
			own.ToUser = cat.ID
			members, err := db.DeleteGroup(ctx, g.ID, func(members []string) ([]*parley.Change, error) {
				if !slices.Contains(members, cat.ID) {
					t.Errorf("members read under the lock = %v, without cat", members)
				}
				return []*parley.Change{own}, nil
			})
			must(t, err)
			if !slices.Contains(members, cat.ID) {
				t.Fatalf("DeleteGroup returned members %v", members)
			}
			if _, err := db.Group(ctx, g.ID); parley.ErrorCode(err) != parley.ENOTFOUND {
				t.Fatalf("deleted group: %v", err)
			}
			if _, err := db.MessageByID(ctx, "x"); parley.ErrorCode(err) != parley.ENOTFOUND {
				t.Fatal(err)
			}
			head, _ := db.HeadChange(ctx)
			changes, _, err := db.Changes(ctx, cat.ID, head-1, 10)
			if err != nil || len(changes) != 1 || changes[0].Event != "group_deleted" {
				t.Fatalf("cat's changes = %+v, %v", changes, err)
			}
			if groups, _ := db.UserGroups(ctx, cat.ID); len(groups) != 0 {
				t.Fatalf("cat's groups = %+v", groups)
			}
		})
	})
}

// TestGroupRemovalOrdersSends removes a member while others send
// concurrently: every message that reached the removed member committed
// before every message that did not (the conversation lock orders them).
func TestGroupRemovalOrdersSends(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		now := time.Now().UTC().Truncate(time.Millisecond)
		var users []string
		for i := range 5 {
			users = append(users, mustUser(t, db, fmt.Sprintf("u%d", i)).ID)
		}
		g := &parley.Group{ID: parley.NewID("group"), Name: "race", CreatedBy: users[0], OwnerID: users[0]}
		must(t, db.CreateGroup(ctx, g, users[1:], now))
		victim := users[4]
		var mu sync.Mutex
		var sends []*parley.Send
		var wg, ready sync.WaitGroup
		removed := make(chan struct{})
		// Each sender keeps sending until the removal is done and 5 more of
		// its sends landed after it: the removal always falls among sends
		// (a barrier, not a sleep), so messages land on both sides of it.
		for w := range 4 {
			wg.Add(1)
			ready.Add(1)
			go func() {
				defer wg.Done()
				after := -1
				for i := 0; after < 5 && i < 10_000; i++ {
					s := groupMsg(g.ID, users[w])
					if err := db.SendMessages(ctx, []*parley.Send{s}); err != nil || s.Err != nil {
						t.Errorf("send: %v %v", err, s.Err)
						if i < 3 {
							ready.Done()
						}
						return
					}
					mu.Lock()
					sends = append(sends, s)
					mu.Unlock()
					if i == 2 {
						ready.Done()
					}
					select {
					case <-removed:
						after++
					default:
					}
				}
			}()
		}
		ready.Wait()
		if _, err := db.RemoveGroupMember(ctx, g.ID, victim, now, func(parley.GroupRemoval, []string) ([]*parley.Change, error) { return nil, nil }); err != nil {
			t.Fatal(err)
		}
		close(removed)
		wg.Wait()
		maxWith, minWithout := int64(0), int64(1<<62)
		for _, s := range sends {
			has := false
			for _, r := range s.Recipients {
				has = has || r == victim
			}
			if has {
				maxWith = max(maxWith, s.Message.Seq)
			} else {
				minWithout = min(minWithout, s.Message.Seq)
			}
		}
		if maxWith == 0 || minWithout == 1<<62 {
			t.Fatalf("the removal did not fall among the sends: last seq to the member %d, first without %d", maxWith, minWithout)
		}
		if maxWith >= minWithout {
			t.Fatalf("message %d reached the removed member after message %d did not", maxWith, minWithout)
		}
	})
}

// TestSendBatch commits one batch across conversations: seqs follow batch
// order within each conversation, repeats of a clientMessageId inside the
// batch and across batches answer with the first message, and a repeat of
// a refused group send is refused the same way.
func TestSendBatch(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		now := time.Now().UTC().Truncate(time.Millisecond)
		ann, bob, cat := mustUser(t, db, "ann"), mustUser(t, db, "bob"), mustUser(t, db, "cat")
		ab, err := db.DirectConversation(ctx, ann.ID, bob.ID, now)
		must(t, err)
		g := &parley.Group{ID: parley.NewID("group"), Name: "G", CreatedBy: ann.ID, OwnerID: ann.ID}
		must(t, db.CreateGroup(ctx, g, []string{bob.ID}, now))
		direct := func(cmid string) *parley.Send {
			return &parley.Send{Message: &parley.Message{ID: parley.NewID("msg"), ConversationID: ab.ID, SenderID: ann.ID, RecipientID: bob.ID,
				ClientMessageID: cmid, Content: "c", ContentHash: "h", Type: "text", SentAt: now}}
		}
		var batch []*parley.Send
		for i := range 41 { // 41 = 32 + 8 + 1 rows per multi-row insert
			batch = append(batch, direct(fmt.Sprintf("d%d", i)))
			if i%10 == 0 {
				batch = append(batch, groupMsg(g.ID, bob.ID))
			}
		}
		repeat := direct("d3")
		outsider := groupMsg(g.ID, cat.ID)
		outsider.Message.ClientMessageID = "x"
		outsiderAgain := groupMsg(g.ID, cat.ID)
		outsiderAgain.Message.ClientMessageID = "x"
		batch = append(batch, repeat, outsider, outsiderAgain)
		must(t, db.SendMessages(ctx, batch))
		var dseq, gseq int64
		for _, s := range batch[:len(batch)-3] {
			if s.Err != nil || s.Duplicate {
				t.Fatalf("send %+v: %v", s.Message, s.Err)
			}
			want := &dseq
			if s.Message.ConversationID == g.ID {
				want = &gseq
			}
			*want++
			if s.Message.Seq != *want {
				t.Fatalf("seq %d, want %d", s.Message.Seq, *want)
			}
		}
		if !repeat.Duplicate || repeat.Message.ID != batch[4].Message.ID || repeat.Message.Seq != 4 {
			t.Fatalf("in-batch repeat = %+v (first %+v)", repeat.Message, batch[4].Message)
		}
		if parley.ErrorCode(outsider.Err) != parley.ENOTFOUND || parley.ErrorCode(outsiderAgain.Err) != parley.ENOTFOUND || outsiderAgain.Duplicate {
			t.Fatalf("refused repeats: %v, %v", outsider.Err, outsiderAgain.Err)
		}
		again := direct("d40")
		must(t, db.SendMessages(ctx, []*parley.Send{again, direct("new")}))
		if !again.Duplicate || again.Message.Seq != 41 {
			t.Fatalf("later repeat = %+v", again)
		}
		msgs, err := db.History(ctx, ab.ID, bob.ID, 0, time.Time{}, 200)
		if err != nil || len(msgs) != 42 || msgs[0].Seq != 42 {
			t.Fatalf("history: %d messages, %v", len(msgs), err)
		}
		changes, _, err := db.Changes(ctx, bob.ID, 0, 200)
		if err != nil || len(changes) != 42+5 { // direct and group messages
			t.Fatalf("changes: %d, %v", len(changes), err)
		}
	})
}
