package service

import (
	"context"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chat/parley"
)

// Presence is a user's online state as another user may see it.
type Presence struct {
	UserID   string      `json:"userId"`
	Online   bool        `json:"online"`
	LastSeen parley.Time `json:"lastSeen"` // null when hidden by the user's settings
}

// presence tracks who is online. Each node counts the sockets it holds per
// user. Going online is announced at once; going offline only after the
// grace period, so a reconnecting client (page reload, network switch) does
// not flap.
//
// With one node the counts are the whole truth. With several, each node
// also records in the shared store (cfg.SharedPresence) which users it
// holds sockets of, from the first socket until the grace period after the
// last, under a node lease it renews every lease/3. The store decides which
// single node announces each change, and a node that dies stops renewing:
// when its lease ends, whichever node sweeps first takes its users offline.
// Store calls for one user are made by one worker at a time (users are
// spread over presenceWorkers by hash), each time writing the user's
// current local state, so a connect racing the end of a grace period
// cannot leave the store out of step.
//
// Locks: presence.mu and a worker's mu are never held together, nor while
// calling the store or the bus.
type presence struct {
	s      *Service
	shared parley.PresenceStore // nil: one node

	mu     sync.Mutex
	conns  map[string]int
	timers map[string]*time.Timer // pending offline announcements
	closed bool
	// tasks are the announcements running in the background (one node),
	// which close waits for; added to under mu while not closed.
	tasks sync.WaitGroup

	// Set when shared != nil.
	retry   map[string]bool // users whose departure is to be written again (under mu)
	workers [presenceWorkers]*presenceWorker
	stop    chan struct{}
	wg      sync.WaitGroup
	start   sync.Once   // the workers start with the first user queued, not in New
	leased  atomic.Bool // the node holds a lease: joining users is useful
}

// presenceWorkers is how many users' store calls may run at once.
const presenceWorkers = 4

// presenceWorker writes the state of the users queued to it, oldest first;
// a user queued twice is written once, in its latest state.
type presenceWorker struct {
	mu     sync.Mutex
	queued map[string]bool
	order  []string
	wake   chan struct{}
}

func newPresence(s *Service) *presence {
	p := &presence{s: s, shared: s.cfg.SharedPresence, conns: map[string]int{}, timers: map[string]*time.Timer{}}
	if p.shared == nil {
		return p
	}
	p.stop = make(chan struct{})
	for i := range p.workers {
		p.workers[i] = &presenceWorker{queued: map[string]bool{}, wake: make(chan struct{}, 1)}
	}
	// The lease is taken, and renewed, by the background job
	// JobPresenceLease, which the server starts before it serves.
	return p
}

// SocketConnected records a new socket of userID and announces the user
// online if they were offline (on every node).
func (s *Service) SocketConnected(userID string) {
	p := s.presence
	p.mu.Lock()
	p.conns[userID]++
	wasOnline := p.conns[userID] > 1
	if t, ok := p.timers[userID]; ok {
		t.Stop()
		delete(p.timers, userID)
		wasOnline = true // still within the grace period: nobody saw it go
	}
	p.mu.Unlock()
	switch {
	case wasOnline:
	case p.shared != nil:
		p.enqueue(userID)
	default:
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.closed {
			return
		}
		p.tasks.Add(1)
		go func() {
			defer p.tasks.Done()
			s.announcePresence(userID, true, time.Time{})
		}()
	}
}

// SocketDisconnected records a closed socket of userID; when it was the
// last one the user goes offline after the grace period (unless another
// node holds a socket of theirs).
func (s *Service) SocketDisconnected(userID string) {
	p := s.presence
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns[userID] == 0 {
		return
	}
	p.conns[userID]--
	if p.conns[userID] > 0 || p.closed {
		return
	}
	delete(p.conns, userID)
	p.timers[userID] = time.AfterFunc(s.cfg.PresenceGrace, func() {
		p.mu.Lock()
		if p.conns[userID] > 0 || p.timers[userID] == nil {
			p.mu.Unlock()
			return
		}
		delete(p.timers, userID)
		if p.shared != nil {
			p.mu.Unlock()
			p.enqueue(userID)
			return
		}
		p.tasks.Add(1) // not closed: close deletes the timers first
		p.mu.Unlock()
		defer p.tasks.Done()
		s.announcePresence(userID, false, s.now())
	})
}

// holds reports whether this node has a socket of userID, or lost its
// last one less than the grace period ago.
func (p *presence) holds(userID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns[userID] > 0 || p.timers[userID] != nil
}

// online reports whether userID is online on this node or, with several
// nodes, on any of them.
func (p *presence) online(ctx context.Context, userID string) (bool, error) {
	if here := p.holds(userID); here || p.shared == nil {
		return here, nil
	}
	return p.shared.IsOnline(ctx, userID)
}

// onlineAmong reports which of ids are online: those with a socket here,
// and with several nodes those the shared store knows online.
func (p *presence) onlineAmong(ctx context.Context, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	var elsewhere []string
	for _, id := range ids {
		if p.holds(id) {
			out[id] = true
		} else if p.shared != nil {
			elsewhere = append(elsewhere, id)
		}
	}
	if len(elsewhere) == 0 {
		return out, nil
	}
	there, err := p.shared.OnlineAmong(ctx, elsewhere)
	for id := range there {
		out[id] = true
	}
	return out, err
}

// enqueue asks userID's worker to write the user's current state.
func (p *presence) enqueue(userID string) {
	p.start.Do(func() {
		for _, w := range p.workers {
			p.wg.Add(1)
			go p.work(w)
		}
	})
	h := fnv.New32a()
	_, _ = h.Write([]byte(userID))
	w := p.workers[h.Sum32()%presenceWorkers]
	w.mu.Lock()
	if !w.queued[userID] {
		w.queued[userID] = true
		w.order = append(w.order, userID)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (p *presence) work(w *presenceWorker) {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case <-w.wake:
		}
		for {
			w.mu.Lock()
			if len(w.order) == 0 {
				w.mu.Unlock()
				break
			}
			userID := w.order[0]
			w.order = w.order[1:]
			delete(w.queued, userID)
			w.mu.Unlock()
			p.write(userID)
			select {
			case <-p.stop:
				return
			default:
			}
		}
	}
}

// write records this node's current state of userID in the shared store
// and announces the change if the store says this node is the one to.
// A failed write is retried by the next heartbeat.
func (p *presence) write(userID string) {
	s := p.s
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := s.now()
	if p.holds(userID) {
		if !p.leased.Load() {
			return // joined again when the lease is back
		}
		came, err := p.shared.JoinPresence(ctx, s.cfg.NodeID, userID, now)
		if err != nil {
			s.log.Error("record presence", "user", userID, "err", err)
			p.leased.Store(false) // the next successful renewal joins every user again
			return
		}
		if came {
			s.announcePresence(userID, true, time.Time{})
		}
		return
	}
	went, err := p.shared.LeavePresence(ctx, s.cfg.NodeID, userID, now)
	if err != nil {
		// The lease keeps the user online until this node renews it and
		// writes the user again, or dies and is swept.
		s.log.Error("record presence", "user", userID, "err", err)
		p.retryLater(userID)
		return
	}
	if went {
		s.announcePresence(userID, false, now)
	}
}

// retryLater remembers a user whose departure could not be written; the
// next heartbeat writes it again.
func (p *presence) retryLater(userID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.retry == nil {
		p.retry = map[string]bool{}
	}
	p.retry[userID] = true
}

// Background jobs of presence with several nodes: every node renews its own
// lease (JobPresenceLease); one node at a time sweeps the users of dead
// nodes (JobPresenceSweep). Both run every third of the lease.
const (
	JobPresenceLease = "presence-lease"
	JobPresenceSweep = "presence-sweep"
)

// renew extends the lease. When the lease had lapsed (this node stalled
// or could not reach the store, and may have been swept) every local user
// is written again. The first renewal (wasLeased false) is not a lapse.
func (p *presence) renew(ctx context.Context) error {
	s := p.s
	now := s.now()
	live, err := p.shared.RenewNodeLease(ctx, s.cfg.NodeID, now, now.Add(s.cfg.PresenceLease))
	if err != nil {
		return err
	}
	wasLeased := p.leased.Swap(true)
	first := !wasLeased
	p.mu.Lock()
	var again []string
	if !live || !wasLeased {
		if !first {
			s.log.Warn("presence lease had lapsed; recording this node's users again", "node", s.cfg.NodeID)
		}
		for id := range p.conns {
			again = append(again, id)
		}
		for id := range p.timers {
			again = append(again, id)
		}
	}
	for id := range p.retry {
		again = append(again, id)
	}
	p.retry = nil
	p.mu.Unlock()
	for _, id := range again {
		p.enqueue(id)
	}
	return nil
}

// sweep takes the users of dead nodes offline; the store hands each user
// to one sweeping node only.
func (p *presence) sweep(ctx context.Context) error {
	s := p.s
	now := s.now()
	went, err := p.shared.SweepPresence(ctx, now)
	if err != nil {
		return err
	}
	if len(went) > 0 {
		s.log.Info("users of a dead node went offline", "users", len(went))
	}
	for _, id := range went {
		s.announcePresence(id, false, now)
	}
	return nil
}

// close stops the timers and, with several nodes, the workers; it then
// shortens this node's lease to the grace period, so that the users whose
// sockets it just closed go offline then unless they reconnected elsewhere.
func (p *presence) close() {
	p.mu.Lock()
	p.closed = true
	for id, t := range p.timers {
		t.Stop()
		delete(p.timers, id)
	}
	p.mu.Unlock()
	p.tasks.Wait()
	if p.shared == nil {
		return
	}
	p.start.Do(func() {}) // no workers start from now on
	close(p.stop)
	p.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := p.s.now()
	if _, err := p.shared.RenewNodeLease(ctx, p.s.cfg.NodeID, now, now.Add(p.s.cfg.PresenceGrace)); err != nil {
		p.s.log.Warn("shorten presence lease", "node", p.s.cfg.NodeID, "err", err)
	}
}

// announcePresence records lastSeen when going offline and sends
// presence_update to the user's audience: with lastSeen to those allowed to
// see it, without to the others.
func (s *Service) announcePresence(userID string, online bool, lastSeen time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !online {
		if err := s.store.Users.SetLastSeen(ctx, userID, lastSeen); err != nil {
			s.log.Error("record last seen", "user", userID, "err", err)
		}
	}
	u, err := s.store.Users.UserByID(ctx, userID)
	if err != nil {
		s.log.Error("presence user", "user", userID, "err", err)
		return
	}
	to, err := s.audience(ctx, userID)
	if err != nil {
		s.log.Error("presence audience", "user", userID, "err", err)
		return
	}
	contacts, err := s.store.Social.Contacts(ctx, userID)
	if err != nil {
		return
	}
	var see, hidden []string
	for _, id := range to {
		if lastSeenVisible(u.Settings.LastSeenVisibility, slices.Contains(contacts, id)) {
			see = append(see, id)
		} else {
			hidden = append(hidden, id)
		}
	}
	if p := s.presence; p.shared != nil {
		// The user may have changed state again meanwhile, on another
		// node; that change is announced by whoever made it.
		if current, err := p.shared.IsOnline(ctx, userID); err == nil && current != online {
			return
		}
	}
	ev := Presence{UserID: userID, Online: online, LastSeen: parley.Time{Time: u.LastSeenAt}}
	s.publish(ctx, parley.EventPresence, ev, see)
	ev.LastSeen = parley.Time{}
	s.publish(ctx, parley.EventPresence, ev, hidden)
}

func lastSeenVisible(visibility string, viewerIsContact bool) bool {
	switch visibility {
	case parley.VisibilityEveryone:
		return true
	case parley.VisibilityContacts:
		return viewerIsContact
	}
	return false
}

// PresenceOf returns a user's presence as the caller may see it: online and
// lastSeen hidden across a block, lastSeen hidden per the user's setting.
// Errors: ENOTFOUND.
func (s *Service) PresenceOf(ctx context.Context, caller *parley.Identity, userID string) (*Presence, error) {
	u, err := s.store.Users.UserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	return s.presenceOf(ctx, caller, u)
}

func (s *Service) presenceOf(ctx context.Context, caller *parley.Identity, u *parley.User) (*Presence, error) {
	p := &Presence{UserID: u.ID}
	online, err := s.presence.online(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	if u.ID == caller.UserID {
		p.Online, p.LastSeen = online, parley.Time{Time: u.LastSeenAt}
		return p, nil
	}
	blocked, err := s.store.Social.BlockedEither(ctx, caller.UserID, u.ID)
	if err != nil || blocked {
		return p, err
	}
	p.Online = online
	visible := u.Settings.LastSeenVisibility == parley.VisibilityEveryone
	if u.Settings.LastSeenVisibility == parley.VisibilityContacts {
		contacts, err := s.store.Social.Contacts(ctx, u.ID)
		if err != nil {
			return nil, err
		}
		visible = slices.Contains(contacts, caller.UserID)
	}
	if visible {
		p.LastSeen = parley.Time{Time: u.LastSeenAt}
	}
	return p, nil
}
