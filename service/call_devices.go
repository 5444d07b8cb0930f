package service

// A call is between two devices (the caller's, and the callee's that
// answered). When one of them loses its last socket it has a grace period
// (Config.CallLostGrace) to reconnect, on any node, before the call ends:
// connection_lost for a live call, failed for a call still ringing whose
// caller's device is gone.
//
// Which node sees what: each node counts the sockets it holds per device.
// When a device's last socket on a node closes, that node marks the
// device lost in its live calls in the database (MarkDeviceLost), with the
// time, unless a mark is already there, and tells the other nodes
// (eventCallDeviceLost). A node that holds a socket of that device, or
// gets a first socket of it, clears the mark (ClearDeviceLost). So a
// device that reconnected on node B before node A noticed its old socket
// die (a ping timeout comes tens of seconds later) is cleared again by B
// as soon as A marks it. The lost-calls job, leased, ends the calls still
// marked past the grace period with one update conditioned on the state
// and on the mark, so a reconnect that clears it first keeps the call, and
// each call ends once.
//
// A node that dies marks nothing: the same job also marks, in live calls,
// the parties who are online on no node (presence drops a dead node's
// users when its lease ends), and a one-node restart is seen the same way.
//
// Lock order: callDevices.mu is taken alone, never while calling the
// store or the bus.

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/parley-chat/parley"
)

// JobLostCalls is the leased background job that ends the calls whose
// device stayed without a socket past Config.CallLostGrace.
const JobLostCalls = "lost-calls"

// The reasons of calls ended by a lost connection.
const (
	ReasonConnectionLost = "connection_lost" // a device of a live call did not reconnect in time
	ReasonFailed         = "failed"          // the caller's device of a ringing call did not reconnect in time
)

const (
	defaultCallLostGrace = 20 * time.Second
	lostBatch            = 100
	offlineBatch         = 500
	// eventCallDeviceLost tells every node that a device was marked lost
	// in its calls: a node holding a socket of it clears the mark. Its
	// name starts with "_": transports never send it to clients.
	eventCallDeviceLost = "_call_device_lost"
)

// callDevice names one signed-in device of a user.
type callDevice struct{ user, device string }

// callDevices counts this node's sockets per device and writes each
// device's state into its calls, one device at a time on one worker;
// a device queued twice is written once, in its state then.
type callDevices struct {
	s *Service

	mu      sync.Mutex
	sockets map[callDevice]int
	queued  map[callDevice]bool
	order   []callDevice
	closed  bool

	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	start sync.Once
	unsub func() // the bus subscription, set by addCallJobs
}

func newCallDevices(s *Service) *callDevices {
	return &callDevices{s: s, sockets: map[callDevice]int{}, queued: map[callDevice]bool{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// DeviceSocketOpened records a socket of the caller's device on this
// node; the first one clears the device's lost marks in its calls.
func (s *Service) DeviceSocketOpened(id *parley.Identity) {
	d := s.callDevices
	if id.DeviceID == "" {
		return
	}
	k := callDevice{id.UserID, id.DeviceID}
	d.mu.Lock()
	d.sockets[k]++
	first := d.sockets[k] == 1
	d.mu.Unlock()
	if first {
		d.enqueue(k)
	}
}

// DeviceSocketClosed records that a socket of the caller's device closed;
// after the last one on this node, the device is marked lost in its calls
// (and cleared again by any node that still holds a socket of it).
func (s *Service) DeviceSocketClosed(id *parley.Identity) {
	d := s.callDevices
	if id.DeviceID == "" {
		return
	}
	k := callDevice{id.UserID, id.DeviceID}
	d.mu.Lock()
	if d.sockets[k] == 0 {
		d.mu.Unlock()
		return
	}
	d.sockets[k]--
	last := d.sockets[k] == 0
	if last {
		delete(d.sockets, k)
	}
	d.mu.Unlock()
	if last {
		d.enqueue(k)
	}
}

// holds reports whether this node has a socket of k.
func (d *callDevices) holds(k callDevice) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sockets[k] > 0
}

func (d *callDevices) enqueue(k callDevice) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	if !d.queued[k] {
		d.queued[k] = true
		d.order = append(d.order, k)
	}
	d.mu.Unlock()
	d.start.Do(func() { go d.work() })
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// work writes queued devices until close, then what is still queued, for
// at most StoreTimeout in all: a node closing thousands of sockets at
// shutdown does not hold up its exit for them (a live call whose party is
// then online nowhere is marked by the lost-calls job anyway).
func (d *callDevices) work() {
	defer close(d.done)
	for {
		select {
		case <-d.stop:
			ctx, cancel := context.WithTimeout(context.Background(), d.s.cfg.StoreTimeout)
			defer cancel()
			d.drain(ctx)
			return
		case <-d.wake:
		}
		d.drain(context.Background())
	}
}

// drain writes the queued devices, oldest first, until none is left or
// ctx ends.
func (d *callDevices) drain(ctx context.Context) {
	for ctx.Err() == nil {
		d.mu.Lock()
		if len(d.order) == 0 {
			d.mu.Unlock()
			return
		}
		k := d.order[0]
		d.order = d.order[1:]
		delete(d.queued, k)
		d.mu.Unlock()
		d.write(ctx, k)
	}
}

// write records k's current state on this node in its calls: cleared when
// this node holds a socket of it, marked lost otherwise. Most sockets come
// and go with no call of theirs live, so the calls are read first (a read
// on the live-call indexes, which takes no write lock) and written only
// when that changes something. A mark another node commits after the read
// is announced by it, and this node then writes k again.
func (d *callDevices) write(ctx context.Context, k callDevice) {
	s := d.s
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StoreTimeout)
	defer cancel()
	calls, err := s.store.Calls.LiveCallsOf(ctx, k.user)
	if err != nil {
		s.log.Error("read a call device's calls", "user", k.user, "err", err)
		return
	}
	held := d.holds(k)
	change := false
	for _, c := range calls {
		switch {
		case c.CallerID == k.user && c.CallerDevice == k.device:
			change = change || held != c.CallerLostAt.IsZero()
		case c.CalleeID == k.user && c.CalleeDevice == k.device:
			change = change || held != c.CalleeLostAt.IsZero()
		}
	}
	if !change {
		return
	}
	if held {
		if err := s.store.Calls.ClearDeviceLost(ctx, k.user, k.device); err != nil {
			s.log.Error("clear a call device's lost mark", "user", k.user, "err", err)
		}
		return
	}
	n, err := s.store.Calls.MarkDeviceLost(ctx, k.user, k.device, s.now())
	if err != nil {
		s.log.Error("mark a call device lost", "user", k.user, "err", err)
		return
	}
	if n > 0 {
		d.announceLost(ctx, k)
	}
}

// announceLost tells every node that k was marked lost, so that one that
// holds a socket of it clears the mark.
func (d *callDevices) announceLost(ctx context.Context, k callDevice) {
	raw, err := json.Marshal(deviceLost{UserID: k.user, DeviceID: k.device})
	if err != nil {
		return
	}
	// Not for users: for the nodes that may hold a socket of the device.
	if err := d.s.bus.Publish(ctx, &parley.Event{Name: eventCallDeviceLost, Data: raw}); err != nil {
		// A node that missed it closes its sockets on the bus gap; the
		// device then reconnects and clears the mark.
		d.s.log.Warn("publish event", "event", eventCallDeviceLost, "err", err)
	}
}

// deviceLost is the data of eventCallDeviceLost.
type deviceLost struct {
	UserID   string `json:"userId"`
	DeviceID string `json:"deviceId"`
}

// onBusEvent clears the mark another node just made if this node holds
// a socket of the device.
func (d *callDevices) onBusEvent(ev *parley.Event) {
	if ev.Name != eventCallDeviceLost {
		return
	}
	var l deviceLost
	if json.Unmarshal(ev.Data, &l) != nil || l.DeviceID == "" {
		return
	}
	if k := (callDevice{l.UserID, l.DeviceID}); d.holds(k) {
		d.enqueue(k)
	}
}

// close stops taking devices, writes those still queued and stops the
// worker.
func (d *callDevices) close() {
	if d.unsub != nil {
		d.unsub()
	}
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	started := true
	d.start.Do(func() { started = false })
	if !started {
		return
	}
	close(d.stop)
	<-d.done
}

// RingingFor returns call_incoming, as every socket of the caller's user
// got it when the call started, for each call still ringing for that user:
// what a socket that connects while a call rings is sent, so that it rings
// too. A socket that connects as a call starts may get it twice.
func (s *Service) RingingFor(ctx context.Context, id *parley.Identity) ([]*parley.Event, error) {
	calls, err := s.store.Calls.LiveCallsOf(ctx, id.UserID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out []*parley.Event
	for _, c := range calls {
		if c.CalleeID != id.UserID || c.State != parley.CallRinging || !now.Before(c.CreatedAt.Add(parley.CallRingTimeout)) {
			continue
		}
		raw, err := json.Marshal(callIncoming{CallID: c.ID, CallerID: c.CallerID, ReceiverID: c.CalleeID, Type: c.Type,
			CreatedAt: parley.Time{Time: c.CreatedAt}})
		if err != nil {
			return nil, err
		}
		out = append(out, &parley.Event{Name: parley.EventCallIncoming, Data: raw, To: []string{id.UserID}})
	}
	return out, nil
}

// endLostCalls marks the parties of live calls who are online nowhere,
// then ends the calls with a device lost for longer than the grace
// period: a live one as ended (connection_lost), a ringing one as failed.
// Both parties get call_ended. The move is conditioned on the state and
// on the mark, so each call ends once and a device that reconnected
// meanwhile keeps its call.
func (s *Service) endLostCalls(ctx context.Context) error {
	if err := s.markOfflineParties(ctx); err != nil {
		return err
	}
	for {
		now := s.now()
		since := now.Add(-s.cfg.CallLostGrace)
		due, err := s.store.Calls.LostSince(ctx, since, lostBatch)
		if err != nil {
			return err
		}
		won := 0
		for _, c := range due {
			from := c.State
			if from == parley.CallAccepted {
				c.State, c.Reason = parley.CallEnded, ReasonConnectionLost
			} else {
				c.State, c.Reason = parley.CallFailed, ReasonFailed
			}
			c.EndedAt = now
			ev, err := newCallEvent(parley.EventCallEnded, finished(c, ""), []string{c.CallerID, c.CalleeID}, []string{c.CallerID, c.CalleeID})
			if err != nil {
				return err
			}
			ok, err := s.store.Calls.EndLostCall(ctx, c, from, since, callChanges(now, ev)...)
			if err != nil {
				return err
			}
			if ok {
				won++
				s.announce(ctx, ev)
			}
		}
		// A full batch none of which moved (all reconnected or ended
		// meanwhile) is left to the next run rather than read again.
		if len(due) < lostBatch || won == 0 {
			return nil
		}
	}
}

// markOfflineParties marks lost, in every live call, the parties online
// on no node who are not marked yet: the devices of a node that died (or
// of this one before a restart) that nobody marked when their sockets went.
func (s *Service) markOfflineParties(ctx context.Context) error {
	after := ""
	for {
		calls, err := s.store.Calls.CallsIn(ctx, parley.CallAccepted, after, offlineBatch)
		if err != nil {
			return err
		}
		if len(calls) == 0 {
			return nil
		}
		after = calls[len(calls)-1].ID
		var ids []string
		for _, c := range calls {
			if c.CallerLostAt.IsZero() {
				ids = append(ids, c.CallerID)
			}
			if c.CalleeLostAt.IsZero() {
				ids = append(ids, c.CalleeID)
			}
		}
		if len(ids) > 0 {
			online, err := s.presence.onlineAmong(ctx, ids)
			if err != nil {
				return err
			}
			now := s.now()
			for _, c := range calls {
				parties := []struct {
					k    callDevice
					lost time.Time
				}{{callDevice{c.CallerID, c.CallerDevice}, c.CallerLostAt}, {callDevice{c.CalleeID, c.CalleeDevice}, c.CalleeLostAt}}
				for _, p := range parties {
					if online[p.k.user] || !p.lost.IsZero() {
						continue
					}
					marked, err := s.store.Calls.MarkPartyLost(ctx, c.ID, p.k.user, parley.CallAccepted, now)
					if err != nil {
						return err
					}
					if marked {
						// Presence may not have recorded yet a socket
						// that just connected on some node: that node
						// clears the mark.
						s.callDevices.announceLost(ctx, p.k)
					}
				}
			}
		}
		if len(calls) < offlineBatch {
			return nil
		}
	}
}
