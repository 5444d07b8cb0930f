package sqlstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/sqlstore"
)

// TestSendBlocked commits one batch mixing a blocked pair (both ways) and
// a free one: only the blocked sends fail, with EBLOCKED, and take no seq;
// after the unblock the same pair can write again.
func TestSendBlocked(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		now := time.Now().UTC().Truncate(time.Millisecond)
		ann, bob, cat := mustUser(t, db, "ann"), mustUser(t, db, "bob"), mustUser(t, db, "cat")
		ab, err := db.DirectConversation(ctx, ann.ID, bob.ID, now)
		must(t, err)
		ac, err := db.DirectConversation(ctx, ann.ID, cat.ID, now)
		must(t, err)
		send := func(conv *parley.Conversation, from, to *parley.User, cmid string) *parley.Send {
			return &parley.Send{Message: &parley.Message{ID: parley.NewID("msg"), ConversationID: conv.ID, SenderID: from.ID,
				RecipientID: to.ID, ClientMessageID: cmid, Content: "c", ContentHash: "h", Type: "text", SentAt: now}}
		}
		must(t, db.Block(ctx, bob.ID, ann.ID, now))
		batch := []*parley.Send{send(ab, ann, bob, "1"), send(ac, ann, cat, "2"), send(ab, bob, ann, "3"), send(ac, cat, ann, "4"),
			send(ab, ann, bob, "1")}
		must(t, db.SendMessages(ctx, batch))
		for i, s := range batch {
			blocked := s.Message.ConversationID == ab.ID
			if blocked && (parley.ErrorCode(s.Err) != parley.EBLOCKED || s.Message.Seq != 0 || s.Duplicate) {
				t.Fatalf("send %d across the block: err %v, seq %d, duplicate %v", i, s.Err, s.Message.Seq, s.Duplicate)
			}
			if !blocked && (s.Err != nil || s.Message.Seq == 0) {
				t.Fatalf("send %d between free users: err %v, seq %d", i, s.Err, s.Message.Seq)
			}
		}
		if batch[1].Message.Seq != 1 || batch[3].Message.Seq != 2 {
			t.Fatalf("seqs %d, %d; want 1, 2", batch[1].Message.Seq, batch[3].Message.Seq)
		}
		if msgs, err := db.History(ctx, ab.ID, ann.ID, 0, time.Time{}, 10); err != nil || len(msgs) != 0 {
			t.Fatalf("blocked sends stored: %d messages, %v", len(msgs), err)
		}
		must(t, db.Unblock(ctx, bob.ID, ann.ID))
		again := send(ab, ann, bob, "1")
		must(t, db.SendMessages(ctx, []*parley.Send{again}))
		if again.Err != nil || again.Duplicate || again.Message.Seq != 1 {
			t.Fatalf("after the unblock: err %v, duplicate %v, seq %d", again.Err, again.Duplicate, again.Message.Seq)
		}
	})
}

// TestSendBatchIsolation (issue #12 defect 1): one send that makes the
// batch's transaction fail (here: its conversation does not exist) fails
// alone; every other send of the batch commits.
func TestSendBatchIsolation(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		p := newPair(t, db)
		ann, ab := p.ann, p.ab
		send := func(convID, cmid string) *parley.Send { return p.text("", convID, cmid) }
		batch := []*parley.Send{send(ab.ID, "1"), send("conv_missing", "2"), send(ab.ID, "3"), send(ab.ID, "1")}
		must(t, db.SendMessages(ctx, batch))
		if batch[1].Err == nil {
			t.Fatal("the send to a missing conversation succeeded")
		}
		for _, i := range []int{0, 2, 3} {
			if s := batch[i]; s.Err != nil || s.Message.Seq == 0 {
				t.Fatalf("good send %d: err %v, seq %d", i, s.Err, s.Message.Seq)
			}
		}
		if !batch[3].Duplicate || batch[3].Message.ID != batch[0].Message.ID {
			t.Fatalf("the repeated clientMessageId was not answered with the first message")
		}
		if msgs, err := db.History(ctx, ab.ID, ann.ID, 0, time.Time{}, 10); err != nil || len(msgs) != 2 {
			t.Fatalf("stored %d messages (%v), want 2", len(msgs), err)
		}
	})
}

// TestSendBatchFailsInLastStatement: a batch whose message insert fails
// (a message id already stored) fails in the statement that also writes
// the day's totals and the changes (on PostgreSQL one statement,
// addChangesAfter). Nothing of the batch stays: the retry of each send
// alone commits the good one with the next seq, one change and one count.
func TestSendBatchFailsInLastStatement(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		p := newPair(t, db)
		now, ann, bob, ab := p.now, p.ann, p.bob, p.ab
		send := func(id, cmid string) *parley.Send { return p.text(id, "", cmid) }
		first := send(parley.NewID("msg"), "1")
		must(t, db.SendMessages(ctx, []*parley.Send{first}))
		batch := []*parley.Send{send(parley.NewID("msg"), "2"), send(first.Message.ID, "3")}
		must(t, db.SendMessages(ctx, batch))
		if s := batch[0]; s.Err != nil || s.Message.Seq != 2 {
			t.Fatalf("good send: err %v, seq %d, want seq 2", s.Err, s.Message.Seq)
		}
		if batch[1].Err == nil {
			t.Fatal("the send reusing a stored message id succeeded")
		}
		msgs, err := db.History(ctx, ab.ID, ann.ID, 0, time.Time{}, 10)
		if err != nil || len(msgs) != 2 {
			t.Fatalf("stored %d messages (%v), want 2", len(msgs), err)
		}
		changes, _, err := db.Changes(ctx, bob.ID, 0, 10)
		must(t, err)
		var seqs []int64
		for _, c := range changes {
			if c.ConversationID == ab.ID && c.MessageID != "" {
				seqs = append(seqs, c.Seq)
			}
		}
		if len(seqs) != 2 || seqs[0] != 1 || seqs[1] != 2 {
			t.Fatalf("message changes at seqs %v, want [1 2]", seqs)
		}
		day := parley.DayOf(now)
		c, err := db.UserCounts(ctx, ann.ID, day, day)
		if err != nil || c.Sent != 2 {
			t.Fatalf("ann sent %d (%v), want 2", c.Sent, err)
		}
		stats, _, err := db.DailyStats(ctx, day, day)
		if err != nil || len(stats) != 1 || stats[0].MessagesSent != 2 || stats[0].ActiveUsers != 1 {
			t.Fatalf("daily stats %+v (%v), want 2 messages from 1 active user", stats, err)
		}
	})
}

// TestSendClientIDOtherConversation (issue #12 defect 6): a clientMessageId
// already used in another conversation is a conflict, never the other
// conversation's message.
func TestSendClientIDOtherConversation(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		now := time.Now().UTC().Truncate(time.Millisecond)
		ann, bob, cat := mustUser(t, db, "ann"), mustUser(t, db, "bob"), mustUser(t, db, "cat")
		ab, err := db.DirectConversation(ctx, ann.ID, bob.ID, now)
		must(t, err)
		ac, err := db.DirectConversation(ctx, ann.ID, cat.ID, now)
		must(t, err)
		send := func(conv *parley.Conversation, to *parley.User) *parley.Send {
			return &parley.Send{Message: &parley.Message{ID: parley.NewID("msg"), ConversationID: conv.ID, SenderID: ann.ID,
				RecipientID: to.ID, ClientMessageID: "k", Content: "c", ContentHash: "h", Type: "text", SentAt: now}}
		}
		first := send(ab, bob)
		must(t, db.SendMessages(ctx, []*parley.Send{first}))
		batch := []*parley.Send{send(ac, cat), send(ab, bob)}
		must(t, db.SendMessages(ctx, batch))
		if parley.ErrorCode(batch[0].Err) != parley.ECONFLICT || batch[0].Message.ConversationID != ac.ID {
			t.Fatalf("reuse in another conversation: err %v, conversation %s", batch[0].Err, batch[0].Message.ConversationID)
		}
		if batch[1].Err != nil || !batch[1].Duplicate || batch[1].Message.ID != first.Message.ID {
			t.Fatalf("retry in the same conversation: err %v, duplicate %v", batch[1].Err, batch[1].Duplicate)
		}
	})
}

// TestSendPolicies commits one batch to a direct conversation, a group and
// an id of no conversation kind: the send policy of each kind fills the
// recipients (both users; the group's members), the unknown kind fails
// alone with ENOTFOUND, and each message's change carries its kind's event.
func TestSendPolicies(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		now := time.Now().UTC().Truncate(time.Millisecond)
		ann, bob, cat := mustUser(t, db, "ann"), mustUser(t, db, "bob"), mustUser(t, db, "cat")
		ab, err := db.DirectConversation(ctx, ann.ID, bob.ID, now)
		must(t, err)
		g := &parley.Group{ID: parley.NewConversationID(parley.KindGroup), Name: "g", CreatedBy: ann.ID, OwnerID: ann.ID, CreatedAt: now, UpdatedAt: now}
		must(t, db.CreateGroup(ctx, g, []string{cat.ID}, now))
		msg := func(conv, to string) *parley.Send {
			return &parley.Send{Message: &parley.Message{ID: parley.NewID("msg"), ConversationID: conv, SenderID: ann.ID,
				RecipientID: to, Content: "c", ContentHash: "h", Type: "text", SentAt: now}}
		}
		direct, group, unknown := msg(ab.ID, bob.ID), msg(g.ID, ""), msg("thing_"+ann.ID, bob.ID)
		must(t, db.SendMessages(ctx, []*parley.Send{unknown, direct, group}))
		if parley.ErrorCode(unknown.Err) != parley.ENOTFOUND || unknown.Message.Seq != 0 {
			t.Fatalf("send to an unknown kind: err %v, seq %d", unknown.Err, unknown.Message.Seq)
		}
		if direct.Err != nil || !sameSet(direct.Recipients, []string{ann.ID, bob.ID}) {
			t.Fatalf("direct send: err %v, recipients %v", direct.Err, direct.Recipients)
		}
		if group.Err != nil || !sameSet(group.Recipients, []string{ann.ID, cat.ID}) {
			t.Fatalf("group send: err %v, recipients %v", group.Err, group.Recipients)
		}
		changes, _, err := db.Changes(ctx, ann.ID, 0, 100)
		must(t, err)
		events := map[string]string{}
		for _, c := range changes {
			if c.MessageID != "" {
				events[c.MessageID] = c.Event
			}
		}
		if events[direct.Message.ID] != parley.EventNewMessage || events[group.Message.ID] != parley.EventNewGroupMessage {
			t.Fatalf("events %v", events)
		}
	})
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	in := map[string]bool{}
	for _, x := range a {
		in[x] = true
	}
	for _, x := range b {
		if !in[x] {
			return false
		}
	}
	return true
}

// TestSendLargeBatch commits a batch larger than one multi-row statement
// takes on SQLite (300 sends over three conversations, sizes that leave a
// remainder): seqs follow the batch order in each conversation with no gap,
// sends without a clientMessageId never collide, a repeat of a stored
// clientMessageId answers with the stored message, its reuse in another
// conversation conflicts, and every message has its sync-log change and
// its count in the sender's daily counters.
func TestSendLargeBatch(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		now := time.Now().UTC().Truncate(time.Millisecond)
		ann := mustUser(t, db, "ann")
		var convs []*parley.Conversation
		var peers []*parley.User
		for _, name := range []string{"bob", "cat", "dan"} {
			peer := mustUser(t, db, name)
			conv, err := db.DirectConversation(ctx, ann.ID, peer.ID, now)
			must(t, err)
			convs, peers = append(convs, conv), append(peers, peer)
		}
		send := func(k int, cmid string) *parley.Send {
			return &parley.Send{Message: &parley.Message{ID: parley.NewID("msg"), ConversationID: convs[k].ID, SenderID: ann.ID,
				RecipientID: peers[k].ID, ClientMessageID: cmid, Content: fmt.Sprintf("c%s", cmid), ContentHash: "h", Type: "text",
				SentAt: now}}
		}
		stored := send(0, "stored")
		must(t, db.SendMessages(ctx, []*parley.Send{stored}))

		var batch []*parley.Send
		for i := range 300 {
			cmid := fmt.Sprintf("k%d", i)
			if i%7 == 0 {
				cmid = "" // none given
			}
			batch = append(batch, send(i%3, cmid))
		}
		repeat, reused := send(0, "stored"), send(1, "stored")
		batch = append(batch, repeat, reused)
		must(t, db.SendMessages(ctx, batch))

		if repeat.Err != nil || !repeat.Duplicate || repeat.Message.ID != stored.Message.ID {
			t.Fatalf("repeat of a stored clientMessageId: err %v, duplicate %v", repeat.Err, repeat.Duplicate)
		}
		if parley.ErrorCode(reused.Err) != parley.ECONFLICT {
			t.Fatalf("stored clientMessageId reused in another conversation: err %v", reused.Err)
		}
		next := []int64{2, 1, 1} // the stored message took seq 1 of the first conversation
		for i, s := range batch[:300] {
			k := i % 3
			if s.Err != nil || s.Duplicate || s.Message.Seq != next[k] {
				t.Fatalf("send %d: err %v, duplicate %v, seq %d; want seq %d", i, s.Err, s.Duplicate, s.Message.Seq, next[k])
			}
			next[k]++
		}
		for k, conv := range convs {
			msgs, err := db.History(ctx, conv.ID, ann.ID, 0, time.Time{}, 200)
			must(t, err)
			if want := int(next[k] - 1); len(msgs) != want {
				t.Fatalf("conversation %d holds %d messages, want %d", k, len(msgs), want)
			}
		}
		changes, msgs, err := db.Changes(ctx, ann.ID, 0, 1000)
		must(t, err)
		if len(changes) != 301 || len(msgs) != 301 {
			t.Fatalf("%d changes, %d messages in the sync log; want 301", len(changes), len(msgs))
		}
		for _, c := range changes {
			if m := msgs[c.MessageID]; m == nil || m.Seq != c.Seq || m.ConversationID != c.ConversationID {
				t.Fatalf("change %d does not match its message", c.ID)
			}
		}
		counts, err := db.UserCounts(ctx, ann.ID, parley.DayOf(now), parley.DayOf(now))
		must(t, err)
		if counts.Sent != 301 {
			t.Fatalf("sender's daily count %d, want 301", counts.Sent)
		}
	})
}

// TestSendConcurrentBatches commits batches from several goroutines at
// once, as several nodes do, over conversations they share (every pair of
// six users, in both directions): every send commits, each conversation's
// seqs are 1..n with no gap or repeat, and the sync log holds each message
// once. On PostgreSQL the batches lock the same conversation rows (in id
// order), the change counter and the daily counters.
func TestSendConcurrentBatches(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		now := time.Now().UTC().Truncate(time.Millisecond)
		var users []*parley.User
		for i := range 6 {
			users = append(users, mustUser(t, db, fmt.Sprintf("u%d", i)))
		}
		conv := map[[2]int]string{}
		for i := range users {
			for j := range users {
				if i < j {
					c, err := db.DirectConversation(ctx, users[i].ID, users[j].ID, now)
					must(t, err)
					conv[[2]int{i, j}], conv[[2]int{j, i}] = c.ID, c.ID
				}
			}
		}
		const workers, batches, size = 4, 10, 30
		var wg sync.WaitGroup
		results := make(chan []*parley.Send, workers*batches)
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range batches {
					var batch []*parley.Send
					for i := range size {
						from, to := (w+i)%len(users), (w+i+1+b%5)%len(users)
						batch = append(batch, &parley.Send{Message: &parley.Message{ID: parley.NewID("msg"),
							ConversationID: conv[[2]int{from, to}], SenderID: users[from].ID, RecipientID: users[to].ID,
							ClientMessageID: fmt.Sprintf("w%d-b%d-%d", w, b, i), Content: "c", ContentHash: "h", Type: "text", SentAt: now}})
					}
					if err := db.SendMessages(ctx, batch); err != nil {
						errs <- err
						return
					}
					results <- batch
				}
			}()
		}
		wg.Wait()
		close(results)
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		seqs := map[string][]int64{}
		for batch := range results {
			for _, s := range batch {
				if s.Err != nil || s.Duplicate {
					t.Fatalf("send: err %v, duplicate %v", s.Err, s.Duplicate)
				}
				seqs[s.Message.ConversationID] = append(seqs[s.Message.ConversationID], s.Message.Seq)
			}
		}
		total := 0
		for c, list := range seqs {
			slices.Sort(list)
			for i, seq := range list {
				if seq != int64(i+1) {
					t.Fatalf("conversation %s: seqs %v, want 1..%d", c, list, len(list))
				}
			}
			total += len(list)
		}
		if total != workers*batches*size {
			t.Fatalf("%d messages committed, want %d", total, workers*batches*size)
		}
		inLog := 0
		for _, u := range users {
			changes, _, err := db.Changes(ctx, u.ID, 0, 10*total)
			must(t, err)
			seen := map[string]bool{}
			for _, c := range changes {
				if seen[c.MessageID] {
					t.Fatalf("message %s twice in the sync log of %s", c.MessageID, u.ID)
				}
				seen[c.MessageID] = true
			}
			inLog += len(seen)
		}
		if inLog != 2*total { // each message is in its sender's and its recipient's log
			t.Fatalf("%d entries in the users' sync logs, want %d", inLog, 2*total)
		}
	})
}

// TestSendLeavesConnectionClean: on PostgreSQL a send batch runs pipelined
// on a connection of the pool (BEGIN with its first statements, COMMIT with
// its last). With one connection in the pool, a batch that fails in its
// last round trip, a send whose context is already cancelled, and a send
// cancelled while it runs must each leave that connection (or its
// replacement) outside any transaction: the sends and reads after them
// work, and nothing of the failed ones is stored. After the failed batch
// the pool still has the same connection: it was rolled back, not
// discarded by the driver for coming back inside a transaction.
func TestSendLeavesConnectionClean(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		for _, p := range db.Pools() {
			p.SetMaxOpenConns(1)
		}
		p := newPair(t, db)
		ann, bob, ab := p.ann, p.bob, p.ab
		n := 0
		send := func(id string) *parley.Send {
			n++
			return p.text(id, "", fmt.Sprint(n))
		}
		// backend is the PostgreSQL process of the pool's one connection.
		backend := func() int {
			var pid int
			for _, p := range db.Pools() {
				must(t, p.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid))
			}
			return pid
		}
		first := send("")
		must(t, db.SendMessages(ctx, []*parley.Send{first}))
		var pid int
		if db.Dialect() == sqlstore.Postgres {
			pid = backend()
		}
		// Fails in the statement that goes with COMMIT: the id is taken.
		again := send(first.Message.ID)
		if err := db.SendMessages(ctx, []*parley.Send{again}); err == nil && again.Err == nil {
			t.Fatal("a send reusing a stored message id succeeded")
		}
		// Rolled back, not thrown away: the pool kept the connection.
		if db.Dialect() == sqlstore.Postgres && backend() != pid {
			t.Fatal("the connection of the failed batch was replaced: it was handed back inside a transaction")
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if err := db.SendMessages(cancelled, []*parley.Send{send("")}); err == nil {
			t.Fatal("a send with a cancelled context succeeded")
		}
		// Cancelled while it runs: whatever it reached, the next ones work.
		for i := range 20 {
			running, cancel := context.WithTimeout(ctx, time.Duration(i)*50*time.Microsecond)
			_ = db.SendMessages(running, []*parley.Send{send(""), send("")})
			cancel()
		}
		last := send("")
		must(t, db.SendMessages(ctx, []*parley.Send{last}))
		msgs, err := db.History(ctx, ab.ID, ann.ID, 0, time.Time{}, 100)
		must(t, err)
		// Every stored message has its own seq, 1..len, and the last send
		// has the highest: no send of a failed batch holds a seq or a row.
		for i, m := range msgs {
			if m.ID == first.Message.ID && m.Seq != 1 {
				t.Fatalf("first message at seq %d", m.Seq)
			}
			if i > 0 && m.Seq != msgs[i-1].Seq+1 && m.Seq != msgs[i-1].Seq-1 {
				t.Fatalf("seqs %d and %d are not consecutive", msgs[i-1].Seq, m.Seq)
			}
		}
		if last.Message.Seq != int64(len(msgs)) {
			t.Fatalf("last send at seq %d of %d stored messages", last.Message.Seq, len(msgs))
		}
		changes, _, err := db.Changes(ctx, bob.ID, 0, 200)
		must(t, err)
		count := 0
		for _, c := range changes {
			if c.ConversationID == ab.ID && c.MessageID != "" {
				count++
			}
		}
		if count != len(msgs) {
			t.Fatalf("%d message changes for %d stored messages", count, len(msgs))
		}
	})
}

// pair is two new users, ann and bob, and their direct conversation.
type pair struct {
	now      time.Time
	ann, bob *parley.User
	ab       *parley.Conversation
}

func newPair(t *testing.T, db *sqlstore.DB) *pair {
	t.Helper()
	p := &pair{now: time.Now().UTC().Truncate(time.Millisecond), ann: mustUser(t, db, "ann"), bob: mustUser(t, db, "bob")}
	var err error
	p.ab, err = db.DirectConversation(ctx, p.ann.ID, p.bob.ID, p.now)
	must(t, err)
	return p
}

// text is a text message from ann to bob with message id id (a new one
// when empty) in conversation convID (theirs when empty).
func (p *pair) text(id, convID, cmid string) *parley.Send {
	if id == "" {
		id = parley.NewID("msg")
	}
	if convID == "" {
		convID = p.ab.ID
	}
	return &parley.Send{Message: &parley.Message{ID: id, ConversationID: convID, SenderID: p.ann.ID,
		RecipientID: p.bob.ID, ClientMessageID: cmid, Content: "c", ContentHash: "h", Type: "text", SentAt: p.now}}
}
