package service

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/parley-chat/parley"
)

// Presence is a user's online state as another user may see it.
type Presence struct {
	UserID   string      `json:"userId"`
	Online   bool        `json:"online"`
	LastSeen parley.Time `json:"lastSeen"` // null when hidden by the user's settings
}

// presence counts each user's connected sockets on this node. Going online
// is announced at once; going offline only after the grace period, so a
// reconnecting client (page reload, network switch) does not flap.
type presence struct {
	s      *Service
	mu     sync.Mutex
	conns  map[string]int
	timers map[string]*time.Timer // pending offline announcements
	closed bool
}

func newPresence(s *Service) *presence {
	return &presence{s: s, conns: map[string]int{}, timers: map[string]*time.Timer{}}
}

// SocketConnected records a new socket of userID and announces the user
// online if they were offline.
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
	if !wasOnline {
		go s.announcePresence(userID, true, time.Time{})
	}
}

// SocketDisconnected records a closed socket of userID; when it was the
// last one the user goes offline after the grace period.
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
		p.mu.Unlock()
		s.announcePresence(userID, false, s.now())
	})
}

// online reports whether userID has a socket, or lost its last one less
// than the grace period ago.
func (p *presence) online(userID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns[userID] > 0 || p.timers[userID] != nil
}

func (p *presence) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for id, t := range p.timers {
		t.Stop()
		delete(p.timers, id)
	}
}

// announcePresence records lastSeen when going offline and sends
// presence_update to the user's audience: with lastSeen to those allowed to
// see it, without to the others.
func (s *Service) announcePresence(userID string, online bool, lastSeen time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !online {
		if err := s.store.SetLastSeen(ctx, userID, lastSeen); err != nil {
			s.log.Error("record last seen", "user", userID, "err", err)
		}
	}
	u, err := s.store.UserByID(ctx, userID)
	if err != nil {
		s.log.Error("presence user", "user", userID, "err", err)
		return
	}
	to, err := s.audience(ctx, userID)
	if err != nil {
		s.log.Error("presence audience", "user", userID, "err", err)
		return
	}
	contacts, err := s.store.Contacts(ctx, userID)
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
	ev := Presence{UserID: userID, Online: online, LastSeen: parley.Time{Time: u.LastSeenAt}}
	s.publish(ctx, "presence_update", ev, see)
	ev.LastSeen = parley.Time{}
	s.publish(ctx, "presence_update", ev, hidden)
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
	u, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	return s.presenceOf(ctx, caller, u)
}

func (s *Service) presenceOf(ctx context.Context, caller *parley.Identity, u *parley.User) (*Presence, error) {
	p := &Presence{UserID: u.ID}
	if u.ID == caller.UserID {
		p.Online, p.LastSeen = s.presence.online(u.ID), parley.Time{Time: u.LastSeenAt}
		return p, nil
	}
	blocked, err := s.store.BlockedEither(ctx, caller.UserID, u.ID)
	if err != nil || blocked {
		return p, err
	}
	p.Online = s.presence.online(u.ID)
	visible := u.Settings.LastSeenVisibility == parley.VisibilityEveryone
	if u.Settings.LastSeenVisibility == parley.VisibilityContacts {
		contacts, err := s.store.Contacts(ctx, u.ID)
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
