package service_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/localbus"
	"github.com/parley-chat/parley/maildir"
	"github.com/parley-chat/parley/service"
	"github.com/parley-chat/parley/sqlstore"
)

// TestReceiptTimesInHistory dates each message of a history page by the
// first receipt that reached it, reading only the receipts around the
// page: bob confirms delivery at messages 3, 7 and 10 and reads up to 5,
// each at its own minute.
func TestReceiptTimesInHistory(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	clock := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	setClock := func(min int) { mu.Lock(); defer mu.Unlock(); clock = time.Date(2026, 1, 2, 3, min, 0, 0, time.UTC) }
	svc := mustService(t, nil, now)
	register := func(name string) *parley.Identity { return mustRegister(t, svc, name) }
	ann, bob := register("ann"), register("bob")
	var ids []string
	for i := 1; i <= 10; i++ {
		r, err := svc.SendMessage(ctx, ann, service.SendInput{SenderID: ann.UserID, RecipientID: bob.UserID,
			EncryptedContent: fmt.Sprintf("c%d", i), Type: "text"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.MessageID)
	}
	mark := func(minute, seq int, status string) {
		setClock(minute)
		if _, err := svc.MarkStatus(ctx, bob, service.StatusInput{UserID: bob.UserID, MessageID: ids[seq-1], Status: status}); err != nil {
			t.Fatal(err)
		}
	}
	mark(3, 3, parley.StatusDelivered)
	mark(7, 7, parley.StatusDelivered)
	mark(8, 5, parley.StatusSeen)
	mark(10, 10, parley.StatusDelivered)
	at := func(min int) string { return time.Date(2026, 1, 2, 3, min, 0, 0, time.UTC).Format(time.RFC3339) }
	wantDelivered := map[int64]string{1: at(3), 2: at(3), 3: at(3), 4: at(7), 5: at(7), 6: at(7), 7: at(7), 8: at(10), 9: at(10), 10: at(10)}
	check := func(q service.HistoryQuery, wantSeqs ...int64) {
		t.Helper()
		page, err := svc.DirectHistory(ctx, ann, ann.UserID, bob.UserID, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) != len(wantSeqs) {
			t.Fatalf("%+v: %d messages, want %d", q, len(page), len(wantSeqs))
		}
		for i, m := range page {
			if m.Seq != wantSeqs[i] {
				t.Fatalf("%+v: message %d has seq %d, want %d", q, i, m.Seq, wantSeqs[i])
			}
			if got := m.DeliveredAt.Time.Format(time.RFC3339); got != wantDelivered[m.Seq] {
				t.Errorf("%+v: seq %d delivered at %s, want %s", q, m.Seq, got, wantDelivered[m.Seq])
			}
			switch {
			case m.Seq <= 5 && (m.Status != parley.StatusSeen || m.SeenAt.Time.Format(time.RFC3339) != at(8)):
				t.Errorf("seq %d: status %s seen at %v, want seen at %s", m.Seq, m.Status, m.SeenAt.Time, at(8))
			case m.Seq > 5 && (m.Status != parley.StatusDelivered || !m.SeenAt.IsZero()):
				t.Errorf("seq %d: status %s seen at %v, want delivered", m.Seq, m.Status, m.SeenAt.Time)
			}
		}
	}
	check(service.HistoryQuery{Limit: 50}, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)
	check(service.HistoryQuery{Limit: 2, BeforeSeq: 7}, 6, 5) // no mark inside the page: the next one dates it
	check(service.HistoryQuery{Limit: 1, BeforeSeq: 4}, 3)
	check(service.HistoryQuery{Limit: 3, BeforeSeq: 10}, 9, 8, 7)
}

// mustService starts a Service on a fresh SQLite database in a temporary
// folder; wrap, if set, replaces store roles with the test's own, and now, if
// set, is its clock. The service and database close when tb ends.
func mustService(tb testing.TB, wrap func(*sqlstore.DB, *parley.Stores), now func() time.Time) *service.Service {
	tb.Helper()
	return mustServiceOn(tb, localbus.New(), wrap, now)
}

// mustServiceOn is mustService publishing its events on bus.
func mustServiceOn(tb testing.TB, bus parley.Bus, wrap func(*sqlstore.DB, *parley.Stores), now func() time.Time) *service.Service {
	tb.Helper()
	dir := tb.TempDir()
	db, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(dir, "parley.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	store := db.Stores()
	if wrap != nil {
		wrap(db, &store)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := service.New(store, bus, &maildir.Sender{Dir: filepath.Join(dir, "mail"), Logger: logger},
		service.Config{PasswordCost: apitest.FastPasswords, Now: now, Logger: logger})
	tb.Cleanup(svc.Close)
	return svc
}

// mustRegister registers name on svc and returns its identity on device d1.
func mustRegister(tb testing.TB, svc *service.Service, name string) *parley.Identity {
	tb.Helper()
	r, err := svc.Register(context.Background(), service.RegisterInput{Username: name, Password: "correct horse battery", DeviceID: "d1",
		PublicKey: "pk-" + name, Email: name + "@example.test", Name: name})
	if err != nil {
		tb.Fatal(err)
	}
	return &parley.Identity{UserID: r.UserID, DeviceID: "d1"}
}

// TestReceiptTimesInChats dates the last message of each chat in the chat
// list as a page of history dates it: delivered and seen times from the
// recipient's marks, seen hidden while the recipient's read receipts are
// off, for the sender and the recipient alike.
func TestReceiptTimesInChats(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	clock := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	setClock := func(min int) { mu.Lock(); defer mu.Unlock(); clock = time.Date(2026, 1, 2, 3, min, 0, 0, time.UTC) }
	svc := mustService(t, nil, now)
	ann, bob, cat, dan, eve := mustRegister(t, svc, "ann"), mustRegister(t, svc, "bob"), mustRegister(t, svc, "cat"),
		mustRegister(t, svc, "dan"), mustRegister(t, svc, "eve")
	off := false
	if _, err := svc.UpdateSettings(ctx, dan, service.SettingsInput{ReadReceipts: &off}); err != nil {
		t.Fatal(err)
	}
	send := func(minute int, from, to *parley.Identity) string {
		t.Helper()
		setClock(minute)
		r, err := svc.SendMessage(ctx, from, service.SendInput{SenderID: from.UserID, RecipientID: to.UserID, EncryptedContent: "c", Type: "text"})
		if err != nil {
			t.Fatal(err)
		}
		return r.MessageID
	}
	mark := func(minute int, who *parley.Identity, messageID, status string) {
		t.Helper()
		setClock(minute)
		if _, err := svc.MarkStatus(ctx, who, service.StatusInput{UserID: who.UserID, MessageID: messageID, Status: status}); err != nil {
			t.Fatal(err)
		}
	}
	send(1, ann, bob)
	m := send(2, ann, bob)
	mark(3, bob, m, parley.StatusDelivered)
	mark(4, bob, m, parley.StatusSeen)
	m = send(5, cat, ann)
	mark(6, ann, m, parley.StatusDelivered)
	m = send(7, ann, dan)
	mark(8, dan, m, parley.StatusSeen)
	send(9, eve, ann)
	at := func(min int) parley.Time { return parley.Time{Time: time.Date(2026, 1, 2, 3, min, 0, 0, time.UTC)} }
	want := map[string]struct {
		status          string
		delivered, seen parley.Time
	}{
		bob.UserID: {parley.StatusSeen, at(3), at(4)},
		cat.UserID: {parley.StatusDelivered, at(6), parley.Time{}},
		dan.UserID: {parley.StatusDelivered, at(8), parley.Time{}},
		eve.UserID: {parley.StatusSent, parley.Time{}, parley.Time{}},
	}
	for _, viewer := range []*parley.Identity{ann, bob, cat, dan, eve} {
		chats, err := svc.Chats(ctx, viewer, 50)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range chats {
			last := c.LastMessage
			other := c.Peer.UserID
			if viewer != ann {
				other = viewer.UserID
			}
			w := want[other]
			if last.Status != w.status || !last.DeliveredAt.Equal(w.delivered.Time) || !last.SeenAt.Equal(w.seen.Time) {
				t.Errorf("%s's chat with %s: %s, delivered %v, seen %v; want %s, %v, %v", viewer.UserID, c.Peer.UserID,
					last.Status, last.DeliveredAt, last.SeenAt, w.status, w.delivered, w.seen)
			}
			page, err := svc.DirectHistory(ctx, viewer, viewer.UserID, c.Peer.UserID, service.HistoryQuery{Limit: 1})
			if err != nil || len(page) != 1 {
				t.Fatalf("history: %d, %v", len(page), err)
			}
			if got, want := last.AppendJSON(nil), page[0].AppendJSON(nil); string(got) != string(want) {
				t.Errorf("%s's chat with %s shows\n%s\nits history\n%s", viewer.UserID, c.Peer.UserID, got, want)
			}
		}
		if viewer == ann && len(chats) != 4 {
			t.Fatalf("ann has %d chats, want 4", len(chats))
		}
	}
}

// TestHistoryShowsChanges reads a page after each change of its messages:
// a reaction, an edit, a receipt, a delete for the reader only and one for
// everyone each show on the very next read, for both members.
func TestHistoryShowsChanges(t *testing.T) {
	ctx := context.Background()
	svc := mustService(t, nil, nil)
	ann, bob := mustRegister(t, svc, "ann"), mustRegister(t, svc, "bob")
	var ids []string
	for i := range 3 {
		r, err := svc.SendMessage(ctx, ann, service.SendInput{SenderID: ann.UserID, RecipientID: bob.UserID, EncryptedContent: fmt.Sprintf("c%d", i), Type: "text"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.MessageID)
	}
	page := func(who, peer *parley.Identity) map[string]*service.MessageView {
		t.Helper()
		list, err := svc.DirectHistory(ctx, who, who.UserID, peer.UserID, service.HistoryQuery{Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*service.MessageView{}
		for _, m := range list {
			out[m.MessageID] = m
		}
		return out
	}
	both := func(check func(name string, p map[string]*service.MessageView)) {
		t.Helper()
		check("ann", page(ann, bob))
		check("bob", page(bob, ann))
	}
	both(func(name string, p map[string]*service.MessageView) {
		if len(p) != 3 || len(p[ids[0]].Reactions) != 0 || p[ids[0]].Status != parley.StatusSent {
			t.Fatalf("%s: first read %+v", name, p[ids[0]])
		}
	})
	if _, err := svc.React(ctx, bob, service.ReactInput{MessageID: ids[0], Reaction: "👍", UserID: bob.UserID}); err != nil {
		t.Fatal(err)
	}
	both(func(name string, p map[string]*service.MessageView) {
		if r := p[ids[0]].Reactions; len(r) != 1 || r[0].UserID != bob.UserID || r[0].Reaction != "👍" {
			t.Errorf("%s: reactions after react %v", name, r)
		}
	})
	if _, err := svc.EditMessage(ctx, ann, service.EditInput{MessageID: ids[1], EncryptedContent: "edited", UserID: ann.UserID}); err != nil {
		t.Fatal(err)
	}
	both(func(name string, p map[string]*service.MessageView) {
		if m := p[ids[1]]; m.Content == nil || *m.Content != "edited" || m.EditedAt.IsZero() {
			t.Errorf("%s: after edit %+v", name, m)
		}
	})
	if _, err := svc.MarkStatus(ctx, bob, service.StatusInput{UserID: bob.UserID, MessageID: ids[1], Status: parley.StatusSeen}); err != nil {
		t.Fatal(err)
	}
	both(func(name string, p map[string]*service.MessageView) {
		if m := p[ids[1]]; m.Status != parley.StatusSeen || m.SeenAt.IsZero() || m.DeliveredAt.IsZero() {
			t.Errorf("%s: after seen %+v", name, m)
		}
		if m := p[ids[2]]; m.Status != parley.StatusSent {
			t.Errorf("%s: a later message is %s, want sent", name, m.Status)
		}
	})
	if _, err := svc.DeleteMessage(ctx, bob, service.DeleteInput{MessageID: ids[2], UserID: bob.UserID}); err != nil {
		t.Fatal(err)
	}
	if p := page(bob, ann); len(p) != 2 || p[ids[2]] != nil {
		t.Errorf("bob still sees the message he deleted for himself: %d messages", len(p))
	}
	if p := page(ann, bob); len(p) != 3 {
		t.Errorf("ann sees %d messages after bob's delete for himself, want 3", len(p))
	}
	if _, err := svc.DeleteMessage(ctx, ann, service.DeleteInput{MessageID: ids[0], UserID: ann.UserID, DeleteForEveryone: true}); err != nil {
		t.Fatal(err)
	}
	both(func(name string, p map[string]*service.MessageView) {
		if m := p[ids[0]]; !m.DeletedForEveryone || m.Content != nil || len(m.Reactions) != 0 {
			t.Errorf("%s: after delete for everyone %+v", name, m)
		}
	})
}
