package sqlstore_test

import (
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/sqlstore"
)

// TestCallLostMarks is the contract of a call's lost devices, run on every
// backend: a mark names one device in its live calls and keeps its first
// time, a reconnect clears it, and ending a lost call is conditioned on
// the mark, so a call whose device came back, or that already ended,
// is not ended again.
func TestCallLostMarks(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		now := time.Now().UTC().Truncate(time.Millisecond)
		newCall := func(caller, callee string, at time.Time) *parley.Call {
			t.Helper()
			c := &parley.Call{ID: parley.NewID("call"), CallerID: caller, CalleeID: callee, Type: parley.CallVoice,
				State: parley.CallRinging, CallerDevice: "phone", CreatedAt: at}
			must(t, db.CreateCall(ctx, c, func(*parley.Call) []*parley.Change { return nil }))
			return c
		}
		read := func(id string) *parley.Call {
			t.Helper()
			c, err := db.CallByID(ctx, id)
			must(t, err)
			return c
		}
		accept := func(c *parley.Call, device string) {
			t.Helper()
			c.State, c.CalleeDevice, c.AnsweredAt = parley.CallAccepted, device, c.CreatedAt
			if won, err := db.MoveCall(ctx, c, parley.CallRinging); err != nil || !won {
				t.Fatalf("accept: %v %v", won, err)
			}
		}

		ringing := newCall("usr_ann", "usr_bob", now)
		live := newCall("usr_cat", "usr_ann", now.Add(time.Second))
		accept(live, "laptop")
		over := newCall("usr_ann", "usr_dan", now.Add(2*time.Second))
		over.State, over.Reason, over.EndedAt = parley.CallCanceled, "canceled", now
		if won, err := db.MoveCall(ctx, over, parley.CallRinging); err != nil || !won {
			t.Fatalf("cancel: %v %v", won, err)
		}

		t.Run("MarkOneDevice", func(t *testing.T) {
			// ann's tablet is in none of her calls.
			if n, err := db.MarkDeviceLost(ctx, "usr_ann", "tablet", now); err != nil || n != 0 {
				t.Fatalf("a device of no call: %d %v", n, err)
			}
			// The callee of a ringing call has no device in it yet.
			if n, err := db.MarkDeviceLost(ctx, "usr_bob", "", now); err != nil || n != 0 {
				t.Fatalf("no device: %d %v", n, err)
			}
			// ann's phone placed ringing (live) and over (ended).
			if n, err := db.MarkDeviceLost(ctx, "usr_ann", "phone", now); err != nil || n != 1 {
				t.Fatalf("ann's phone: marked %d calls, %v; want the ringing one", n, err)
			}
			if n, err := db.MarkDeviceLost(ctx, "usr_ann", "phone", now.Add(5*time.Second)); err != nil || n != 0 {
				t.Fatalf("marked again: %d %v", n, err)
			}
			if c := read(ringing.ID); !c.CallerLostAt.Equal(now) || !c.CalleeLostAt.IsZero() {
				t.Fatalf("ringing call: caller lost %v, callee lost %v; want the first mark's time", c.CallerLostAt, c.CalleeLostAt)
			}
			if c := read(over.ID); !c.CallerLostAt.IsZero() {
				t.Fatal("an ended call was marked")
			}
			// ann answered live on her laptop.
			if n, err := db.MarkDeviceLost(ctx, "usr_ann", "laptop", now.Add(time.Second)); err != nil || n != 1 {
				t.Fatalf("ann's laptop: %d %v", n, err)
			}
			if c := read(live.ID); !c.CalleeLostAt.Equal(now.Add(time.Second)) || !c.CallerLostAt.IsZero() {
				t.Fatalf("live call: %+v", c)
			}
		})

		t.Run("LostSince", func(t *testing.T) {
			due, err := db.LostSince(ctx, now, 10)
			if err != nil || len(due) != 1 || due[0].ID != ringing.ID {
				t.Fatalf("lost at or before the first mark: %v %v", due, err)
			}
			if due, err = db.LostSince(ctx, now.Add(time.Minute), 10); err != nil || len(due) != 2 || due[0].ID != ringing.ID || due[1].ID != live.ID {
				t.Fatalf("lost a minute later, oldest first: %v %v", due, err)
			}
		})

		t.Run("ClearedKeepsTheCall", func(t *testing.T) {
			must(t, db.ClearDeviceLost(ctx, "usr_ann", "laptop"))
			if c := read(live.ID); !c.CalleeLostAt.IsZero() {
				t.Fatalf("not cleared: %+v", c)
			}
			c := read(live.ID)
			c.State, c.Reason, c.EndedAt = parley.CallEnded, "connection_lost", now.Add(time.Minute)
			if won, err := db.EndLostCall(ctx, c, parley.CallAccepted, now.Add(time.Minute)); err != nil || won {
				t.Fatalf("a call whose device came back was ended: %v %v", won, err)
			}
			if c := read(live.ID); c.State != parley.CallAccepted {
				t.Fatalf("state %s", c.State)
			}
		})

		t.Run("EndOnce", func(t *testing.T) {
			c := read(ringing.ID)
			c.State, c.Reason, c.EndedAt = parley.CallFailed, "failed", now.Add(time.Minute)
			if won, err := db.EndLostCall(ctx, c, parley.CallRinging, now.Add(-time.Millisecond)); err != nil || won {
				t.Fatalf("ended before its grace was over: %v %v", won, err)
			}
			end := &parley.Change{Event: parley.EventCallEnded, ToUser: "usr_ann", Payload: []byte(`{}`), CreatedAt: now}
			if won, err := db.EndLostCall(ctx, c, parley.CallRinging, now, end); err != nil || !won {
				t.Fatalf("end: %v %v", won, err)
			}
			if won, err := db.EndLostCall(ctx, c, parley.CallRinging, now); err != nil || won {
				t.Fatalf("ended twice: %v %v", won, err)
			}
			if c := read(ringing.ID); c.State != parley.CallFailed || c.Reason != "failed" {
				t.Fatalf("after the end: %+v", c)
			}
			// A device of an ended call is no longer marked or cleared.
			if n, err := db.MarkDeviceLost(ctx, "usr_ann", "phone", now); err != nil || n != 0 {
				t.Fatalf("marked in an ended call: %d %v", n, err)
			}
		})

		t.Run("MarkParty", func(t *testing.T) {
			if ok, err := db.MarkPartyLost(ctx, live.ID, "usr_cat", parley.CallRinging, now); err != nil || ok {
				t.Fatalf("marked in another state: %v %v", ok, err)
			}
			if ok, err := db.MarkPartyLost(ctx, live.ID, "usr_cat", parley.CallAccepted, now); err != nil || !ok {
				t.Fatalf("mark the caller: %v %v", ok, err)
			}
			if ok, err := db.MarkPartyLost(ctx, live.ID, "usr_cat", parley.CallAccepted, now.Add(time.Second)); err != nil || ok {
				t.Fatalf("marked twice: %v %v", ok, err)
			}
			if c := read(live.ID); !c.CallerLostAt.Equal(now) || !c.CalleeLostAt.IsZero() {
				t.Fatalf("live call: %+v", c)
			}
			in, err := db.CallsIn(ctx, parley.CallAccepted, "", 10)
			if err != nil || len(in) != 1 || in[0].ID != live.ID {
				t.Fatalf("accepted calls: %v %v", in, err)
			}
			mine, err := db.LiveCallsOf(ctx, "usr_ann")
			if err != nil || len(mine) != 1 || mine[0].ID != live.ID {
				t.Fatalf("ann's live calls: %v %v", mine, err)
			}
		})
	})
}
