package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/localbus"
	"github.com/parley-chat/parley/maildir"
	"github.com/parley-chat/parley/sqlstore"
)

// gatedSender is a push provider whose requests wait at a gate: each
// Send reports its arrival on arrived, then waits for release (or for its
// context), and counts how many were in flight at once.
type gatedSender struct {
	arrived chan string // the notification id of each request, as it starts
	release chan struct{}

	mu              sync.Mutex
	inFlight, most  int
	sent, cancelled []string
}

func (g *gatedSender) Send(ctx context.Context, p *parley.Push) error {
	g.mu.Lock()
	g.inFlight++
	g.most = max(g.most, g.inFlight)
	g.mu.Unlock()
	g.arrived <- p.NotificationID
	var err error
	select {
	case <-g.release:
	case <-ctx.Done():
		err = ctx.Err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inFlight--
	if err != nil {
		g.cancelled = append(g.cancelled, p.NotificationID)
	} else {
		g.sent = append(g.sent, p.NotificationID)
	}
	return err
}

// outboxWithPushes returns a service whose fcm pushes go to snd, with
// PushConcurrency limit, and n users with one fcm device and one due
// push each.
func outboxWithPushes(t *testing.T, snd parley.PushSender, limit, n int) (*Service, *sqlstore.DB) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(dir, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := New(db.Stores(), localbus.New(), &maildir.Sender{Dir: filepath.Join(dir, "mail"), Logger: logger},
		Config{Logger: logger, PushSenders: map[string]parley.PushSender{parley.PlatformFCM: snd}, PushConcurrency: limit,
			PushClaim: 20 * time.Second})
	t.Cleanup(svc.Close)
	now := time.Now().UTC().Truncate(time.Millisecond)
	for i := range n {
		u := &parley.User{ID: parley.NewID("usr"), Username: fmt.Sprintf("u%d", i), PasswordHash: "h",
			Settings: parley.DefaultSettings(), CreatedAt: now, UpdatedAt: now}
		if err := db.CreateUser(ctx, u, nil); err != nil {
			t.Fatal(err)
		}
		if err := db.SavePushDevice(ctx, &parley.PushDevice{UserID: u.ID, DeviceID: "phone", Platform: parley.PlatformFCM,
			Token: fmt.Sprintf("token-%d", i), CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.QueueUserPush(ctx, u.ID, &parley.Push{Kind: parley.PushAdmin, Topic: "admin", NotificationID: fmt.Sprintf("n%d", i),
			Count: 1, Data: parley.PushData{Message: "hello"}, NextAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	return svc, db
}

// TestPushesInFlight checks that the outbox keeps up to PushConcurrency
// provider requests in flight at once, never more, and that a stop lets
// the requests in flight finish and be recorded while the pushes not
// started stay due for the next run.
func TestPushesInFlight(t *testing.T) {
	const limit, pushes = 4, 10
	t.Run("UpToTheLimit", func(t *testing.T) {
		snd := &gatedSender{arrived: make(chan string, pushes), release: make(chan struct{})}
		svc, db := outboxWithPushes(t, snd, limit, pushes)
		done := make(chan error, 1)
		go func() { done <- svc.sendDuePushes(context.Background()) }()
		// The gate opens once limit requests are waiting at it at the same
		// time: one request at a time would never get there.
		for range limit {
			select {
			case <-snd.arrived:
			case <-time.After(10 * time.Second):
				close(snd.release)
				t.Fatalf("only %d requests in flight at once; want %d", snd.most, limit)
			}
		}
		// No request beyond the limit starts while limit are in flight. A
		// correct outbox never starts one, however long this waits; an
		// outbox over its limit is caught whenever its extra request starts
		// within the wait (always, on an idle machine).
		started := limit
		select {
		case id := <-snd.arrived:
			started++
			t.Errorf("request %s started with %d in flight; the limit is %d", id, limit, limit)
		case <-time.After(100 * time.Millisecond):
		}
		close(snd.release)
		for ; started < pushes; started++ {
			<-snd.arrived
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		snd.mu.Lock()
		defer snd.mu.Unlock()
		if snd.most != limit || len(snd.sent) != pushes || len(snd.cancelled) != 0 {
			t.Fatalf("at most %d in flight, %d sent, %d cancelled; want %d, %d, 0", snd.most, len(snd.sent), len(snd.cancelled), limit, pushes)
		}
		if due, err := db.DuePushes(context.Background(), time.Now().Add(time.Hour), 100); err != nil || len(due) != 0 {
			t.Fatalf("%d pushes still due after all were sent (%v)", len(due), err)
		}
	})
	t.Run("StopFinishesWhatIsInFlight", func(t *testing.T) {
		snd := &gatedSender{arrived: make(chan string, pushes), release: make(chan struct{})}
		svc, db := outboxWithPushes(t, snd, limit, pushes)
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- svc.sendDuePushes(ctx) }()
		inFlight := map[string]bool{}
		for range limit {
			select {
			case id := <-snd.arrived:
				inFlight[id] = true
			case <-time.After(10 * time.Second):
				close(snd.release)
				t.Fatalf("%d requests in flight at once; want %d", len(inFlight), limit)
			}
		}
		stop() // the node stops while limit requests wait at the gate
		close(snd.release)
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("run ended with %v; want context.Canceled", err)
		}
		snd.mu.Lock()
		sent := append([]string(nil), snd.sent...)
		snd.mu.Unlock()
		if len(sent) != limit || len(snd.arrived) != 0 {
			t.Fatalf("sent %v, %d more requests started; want the %d in flight and no other", sent, len(snd.arrived), limit)
		}
		for _, id := range sent {
			if !inFlight[id] {
				t.Fatalf("sent %s, which was not in flight at the stop", id)
			}
		}
		// The sent ones are recorded (gone from the outbox); the others are
		// due, unclaimed, for the next holder.
		due, err := db.DuePushes(context.Background(), time.Now(), 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) != pushes-limit {
			t.Fatalf("%d pushes due after the stop; want %d", len(due), pushes-limit)
		}
		for _, p := range due {
			if inFlight[p.NotificationID] {
				t.Fatalf("push %s was sent and is still in the outbox", p.NotificationID)
			}
		}
	})
}
