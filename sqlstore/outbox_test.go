package sqlstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/sqlstore"
)

// TestPushOutbox checks the outbox's promises on both databases: the
// cursor moves once (a second writer from the same position writes
// nothing), messages collapse into a device's pending push, a push sent
// while another message came in stays for it, and removing a device
// removes its pending push.
func TestPushOutbox(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ann := mustUser(t, db, "ann")
		now := time.Now().UTC().Truncate(time.Millisecond)
		dev := parley.PushDevice{UserID: ann.ID, DeviceID: "laptop", Platform: parley.PlatformWebPush, Subscription: "{}", CreatedAt: now}
		if err := db.SavePushDevice(ctx, &dev); err != nil {
			t.Fatal(err)
		}
		for i := range parley.MaxPushDevices - 1 {
			d := dev
			d.DeviceID = fmt.Sprintf("extra-%d", i)
			if err := db.SavePushDevice(ctx, &d); err != nil {
				t.Fatal(err)
			}
		}
		d := dev
		d.DeviceID = "one-too-many"
		if err := db.SavePushDevice(ctx, &d); parley.ErrorCode(err) != parley.ECONFLICT {
			t.Fatalf("device %d: %v, want conflict", parley.MaxPushDevices+1, err)
		}
		if err := db.SavePushDevice(ctx, &dev); err != nil { // replacing one is not adding
			t.Fatal(err)
		}

		push := func(conv string) *parley.Push {
			return &parley.Push{Device: dev, NotificationID: parley.NewID("ntf"), ConversationID: conv, Count: 1, NextAt: now}
		}
		_, from, _, err := db.PushCandidates(ctx, now, now, 10)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := db.EnqueuePushes(ctx, from, from+5, []*parley.Push{push("conv_a")}); err != nil || !ok {
			t.Fatalf("enqueue: %v %v", ok, err)
		}
		if ok, err := db.EnqueuePushes(ctx, from, from+5, []*parley.Push{push("conv_a")}); err != nil || ok {
			t.Fatalf("a second enqueue from the same cursor: %v %v, want nothing done", ok, err)
		}
		if ok, err := db.EnqueuePushes(ctx, from+5, from+6, []*parley.Push{push("conv_b")}); err != nil || !ok {
			t.Fatalf("enqueue: %v %v", ok, err)
		}
		due, err := db.DuePushes(ctx, now, 10)
		if err != nil || len(due) != 1 || due[0].Count != 2 || due[0].ConversationID != "conv_b" || due[0].Device.Subscription != "{}" {
			t.Fatalf("due = %+v, %v; want one push for 2 messages, the latest conv_b", due, err)
		}
		sending := due[0]
		if ok, err := db.EnqueuePushes(ctx, from+6, from+7, []*parley.Push{push("conv_c")}); err != nil || !ok {
			t.Fatalf("enqueue: %v %v", ok, err)
		}
		later := now.Add(time.Minute)
		if err := db.PushSent(ctx, sending, now, later); err != nil {
			t.Fatal(err)
		}
		if due, _ := db.DuePushes(ctx, now, 10); len(due) != 0 {
			t.Fatalf("due at once after a send: %+v", due)
		}
		due, err = db.DuePushes(ctx, later, 10)
		if err != nil || len(due) != 1 || due[0].Count != 1 || due[0].ConversationID != "conv_c" {
			t.Fatalf("due after the collapse window = %+v, %v; want the message that came in during the send", due, err)
		}
		if err := db.PushFailed(ctx, due[0], later.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if due, _ := db.DuePushes(ctx, later, 10); len(due) != 0 {
			t.Fatalf("due before its retry: %+v", due)
		}
		due, _ = db.DuePushes(ctx, later.Add(time.Second), 10)
		if len(due) != 1 || due[0].Attempts != 1 {
			t.Fatalf("due at its retry = %+v", due)
		}
		if ok, err := db.DeletePushDevice(ctx, ann.ID, "laptop"); err != nil || !ok {
			t.Fatalf("delete: %v %v", ok, err)
		}
		if due, _ := db.DuePushes(ctx, later.Add(time.Hour), 10); len(due) != 0 {
			t.Fatalf("a removed device's push is still due: %+v", due)
		}
		if ok, _ := db.DeletePushDevice(ctx, ann.ID, "laptop"); ok {
			t.Fatal("deleted twice")
		}

		a, err := db.ServerKey(ctx, "k", func() (string, error) { return "first", nil })
		if err != nil {
			t.Fatal(err)
		}
		b, err := db.ServerKey(ctx, "k", func() (string, error) { return "second", nil })
		if err != nil || a != "first" || b != "first" {
			t.Fatalf("server key %q then %q (%v), want first both times", a, b, err)
		}
	})
}

// TestPushClaims checks what the at-least-once promise rests on, on both
// databases: a claimed push is not due for another node until the claim
// ends; after a claimant that never reported back, the push is due again
// with the same notification id and topic; a claim of a push already
// claimed fails; a sent push is gone.
func TestPushClaims(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *sqlstore.DB) {
		ann := mustUser(t, db, "ann")
		now := time.Now().UTC().Truncate(time.Millisecond)
		dev := parley.PushDevice{UserID: ann.ID, DeviceID: "laptop", Platform: parley.PlatformWebPush, Subscription: "{}", CreatedAt: now}
		if err := db.SavePushDevice(ctx, &dev); err != nil {
			t.Fatal(err)
		}
		n, err := db.QueueUserPush(ctx, ann.ID, &parley.Push{Kind: parley.PushAdmin, Topic: "a1", NotificationID: "ntf_x",
			Data: parley.PushData{Message: "hello"}, Count: 1, NextAt: now})
		if err != nil || n != 1 {
			t.Fatalf("queue: %d %v", n, err)
		}
		due, err := db.DuePushes(ctx, now, 10)
		if err != nil || len(due) != 1 || due[0].Data.Message != "hello" || due[0].Kind != parley.PushAdmin {
			t.Fatalf("due = %+v, %v", due, err)
		}
		p := due[0]
		if ok, err := db.ClaimPush(ctx, p, now, now.Add(time.Minute)); err != nil || !ok {
			t.Fatalf("claim: %v %v", ok, err)
		}
		if ok, err := db.ClaimPush(ctx, p, now, now.Add(time.Minute)); err != nil || ok {
			t.Fatalf("a second claim: %v %v, want refused", ok, err)
		}
		if due, err := db.DuePushes(ctx, now.Add(30*time.Second), 10); err != nil || len(due) != 0 {
			t.Fatalf("a claimed push is due for others: %+v %v", due, err)
		}
		// The claimant died: once the claim ends, the same push is due again.
		later := now.Add(time.Minute)
		due, err = db.DuePushes(ctx, later, 10)
		if err != nil || len(due) != 1 || due[0].NotificationID != "ntf_x" || due[0].Topic != "a1" {
			t.Fatalf("after the claim ended: %+v %v", due, err)
		}
		if ok, err := db.ClaimPush(ctx, due[0], later, later.Add(time.Minute)); err != nil || !ok {
			t.Fatalf("claim after expiry: %v %v", ok, err)
		}
		if err := db.PushSent(ctx, due[0], later, later); err != nil {
			t.Fatal(err)
		}
		if due, err := db.DuePushes(ctx, later.Add(time.Hour), 10); err != nil || len(due) != 0 {
			t.Fatalf("a sent push is still due: %+v %v", due, err)
		}
	})
}
