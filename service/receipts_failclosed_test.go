package service_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/service"
	"github.com/parley-chat/parley/sqlstore"
)

// flakyUsers is a store whose user reads fail while failing is set, after
// the first passes reads.
type flakyUsers struct {
	*sqlstore.DB
	failing atomic.Bool
	passes  atomic.Int32
}

var errFlaky = errors.New("store unavailable")

func (f *flakyUsers) UserByID(ctx context.Context, id string) (*parley.User, error) {
	if f.failing.Load() && f.passes.Add(-1) < 0 {
		return nil, errFlaky
	}
	return f.DB.UserByID(ctx, id)
}

// MemberReceipts reads the members' settings with their cursors and
// marks: it fails with the other user reads.
func (f *flakyUsers) MemberReceipts(ctx context.Context, conversationID string, fromSeq, toSeq int64) ([]*parley.MemberReceipts, error) {
	if f.failing.Load() {
		return nil, errFlaky
	}
	return f.DB.MemberReceipts(ctx, conversationID, fromSeq, toSeq)
}

func (f *flakyUsers) UsersByIDs(ctx context.Context, ids []string) ([]*parley.User, error) {
	if f.failing.Load() {
		return nil, errFlaky
	}
	return f.DB.UsersByIDs(ctx, ids)
}

// TestReadReceiptsFailClosed: when the recipient's readReceipts setting
// cannot be read, the sender sees "delivered", never "seen" (issue #12
// defect 5, the fail-closed half).
func TestReadReceiptsFailClosed(t *testing.T) {
	ctx := context.Background()
	store := &flakyUsers{}
	svc := mustService(t, func(db *sqlstore.DB, st *parley.Stores) { store.DB = db; st.Users, st.Receipts = store, store }, nil)
	register := func(name string) *parley.Identity { return mustRegister(t, svc, name) }
	ann, bob := register("ann"), register("bob")
	r, err := svc.SendMessage(ctx, ann, service.SendInput{SenderID: ann.UserID, RecipientID: bob.UserID, EncryptedContent: "c", Type: "text"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.MarkStatus(ctx, bob, service.StatusInput{UserID: bob.UserID, MessageID: r.MessageID, Status: parley.StatusSeen}); err != nil {
		t.Fatal(err)
	}
	// History reads no account to check the peer: the send taught the
	// service that bob exists (facts). Every user read from here on is the
	// read of bob's setting, and fails.
	store.passes.Store(0)
	store.failing.Store(true)
	page, err := svc.DirectHistory(ctx, ann, ann.UserID, bob.UserID, service.HistoryQuery{Limit: 10})
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	for _, m := range page {
		if m.Status == parley.StatusSeen || !m.SeenAt.IsZero() {
			t.Fatalf("with the setting unreadable the sender sees %s (seen at %v), want delivered", m.Status, m.SeenAt.Time)
		}
	}
	if len(page) != 1 {
		t.Fatalf("%d messages, want 1", len(page))
	}
}
