package service_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/localbus"
	"github.com/parley-chat/parley/maildir"
	"github.com/parley-chat/parley/service"
	"github.com/parley-chat/parley/sqlstore"
)

// TestRingOffline checks the push hook of calls: it gets a call that
// starts ringing for a callee with no connected socket, and only then.
func TestRingOffline(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(dir, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var mu sync.Mutex
	var rung []*parley.Call
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := service.New(db.Stores(), localbus.New(), &maildir.Sender{Dir: filepath.Join(dir, "mail"), Logger: logger},
		service.Config{PasswordCost: apitest.FastPasswords, Logger: logger, RingOffline: func(_ context.Context, c *parley.Call) {
			mu.Lock()
			defer mu.Unlock()
			rung = append(rung, c)
		}})
	t.Cleanup(svc.Close)
	ann, bob := mustRegister(t, svc, "ann"), mustRegister(t, svc, "bob")

	first, err := svc.StartCall(ctx, ann, service.CallInput{ReceiverID: bob.UserID, Type: parley.CallVoice})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(rung) != 1 || rung[0].ID != first.CallID || rung[0].CalleeID != bob.UserID || rung[0].State != parley.CallRinging {
		t.Fatalf("offline callee: hook got %+v", rung)
	}
	mu.Unlock()
	if _, err := svc.EndCall(ctx, ann, service.CallIDInput{CallID: first.CallID}); err != nil {
		t.Fatal(err)
	}

	svc.SocketConnected(bob.UserID)
	if _, err := svc.StartCall(ctx, ann, service.CallInput{ReceiverID: bob.UserID, Type: parley.CallVideo}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(rung) != 1 {
		t.Fatalf("a callee with a socket was pushed: %+v", rung[1:])
	}
}
