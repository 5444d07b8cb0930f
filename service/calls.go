package service

import (
	"context"
	"encoding/json"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/jobs"
)

// JobMissedCalls is the leased background job that ends the calls that
// rang for parley.CallRingTimeout unanswered.
const JobMissedCalls = "missed-calls"

// Call limits.
const (
	missedBatch      = 100
	defaultTURNTTL   = time.Hour
	defaultCallsTick = 2 * time.Second
	moveAttempts     = 3   // a move lost to a concurrent one is retried on the new state
	maxIDLen         = 128 // user and call ids
)

// The reasons a call ends with (call_ended, call history).
const (
	ReasonHangup   = "hangup"   // a party hung up a live call
	ReasonCanceled = "canceled" // the caller hung up while it rang
	ReasonRejected = "rejected" // the callee declined
	ReasonMissed   = "missed"   // nobody answered in time
	ReasonBusy     = "busy"     // the callee was in another call
)

// ICEConfig is what GET /api/calls/ice-servers hands out.
type ICEConfig struct {
	STUN []string // stun: URLs
	TURN []string // turn:/turns: URLs of a TURN server that checks TURN REST API credentials made with Secret
	// Secret is the secret shared with the TURN server (coturn's
	// static-auth-secret, or the embedded server's).
	Secret string
	TTL    time.Duration // lifetime of a credential; default 1 hour
}

// CallInput starts a call (POST /api/calls/initiate). Seed 001's
// caller_id and receiver_id are accepted for callerId and receiverId.
type CallInput struct {
	CallerID   string `json:"callerId,omitempty"` // optional; must be the caller
	ReceiverID string `json:"receiverId"`
	Type       string `json:"type"` // voice or video
}

// CallStarted answers a call's start: status is "ringing", or "busy" when
// the callee was in another call (the call ended at once). The seed 001
// routes answer call_initiated or video_call_initiated instead of ringing.
type CallStarted struct {
	CallID    string      `json:"callId"`
	Status    string      `json:"status"`
	Type      string      `json:"type"`
	CreatedAt parley.Time `json:"createdAt"`
}

// AnswerInput answers a ringing call. Without callId, the newest call
// still ringing from callerId to the caller is answered (seed 001 names
// calls by their parties). Seed 001's call_id, caller_id and receiver_id
// are accepted too.
type AnswerInput struct {
	CallID     string `json:"callId,omitempty"`
	CallerID   string `json:"callerId,omitempty"`
	ReceiverID string `json:"receiverId,omitempty"` // optional; must be the caller
	Answer     *bool  `json:"answer"`               // true accepts, false declines
}

// AnswerResult answers POST /api/calls/answer: status is call_accepted or
// call_rejected (the seed 001 video route answers video_call_accepted).
type AnswerResult struct {
	CallID string `json:"callId"`
	Status string `json:"status"`
}

// CallIDInput names a call.
type CallIDInput struct {
	CallID string `json:"callId"`
}

// EndResult answers POST /api/calls/end: the call's final state, why, and
// how long it was live, in seconds.
type EndResult struct {
	CallID   string `json:"callId"`
	Status   string `json:"status"`
	Reason   string `json:"reason"`
	Duration int64  `json:"duration"`
}

// SignalInput is a WebRTC signal (an SDP offer or answer, an ICE
// candidate) for the other device of a call: any JSON value of at most
// 64 KiB, relayed as it is and never stored or logged.
type SignalInput struct {
	CallID string          `json:"callId"`
	Signal json.RawMessage `json:"signal"`
}

// SignalResult acknowledges a relayed signal.
type SignalResult struct {
	CallID string `json:"callId"`
	To     string `json:"to"` // the user whose device gets it
}

// CallView is a call as the call history shows it to one of its parties.
type CallView struct {
	CallID     string       `json:"callId"`
	Type       string       `json:"type"`
	Status     string       `json:"status"` // ringing, accepted, ended, rejected, missed, canceled, busy, failed
	Reason     string       `json:"reason,omitempty"`
	Direction  string       `json:"direction"` // outgoing or incoming
	CallerID   string       `json:"callerId"`
	ReceiverID string       `json:"receiverId"`
	PeerID     string       `json:"peerId"` // the other party
	CreatedAt  parley.Time  `json:"createdAt"`
	AnsweredAt *parley.Time `json:"answeredAt"`
	EndedAt    *parley.Time `json:"endedAt"`
	Duration   int64        `json:"duration"` // seconds the call was live
}

// ICEServer is one entry of RTCConfiguration.iceServers.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// The payloads of the call events.
type (
	callIncoming struct {
		CallID     string      `json:"callId"`
		CallerID   string      `json:"callerId"`
		ReceiverID string      `json:"receiverId"`
		Type       string      `json:"type"`
		CreatedAt  parley.Time `json:"createdAt"`
	}
	callAccepted struct {
		CallID     string      `json:"callId"`
		CallerID   string      `json:"callerId"`
		ReceiverID string      `json:"receiverId"`
		Type       string      `json:"type"`
		AnsweredAt parley.Time `json:"answeredAt"`
	}
	callFinished struct { // call_rejected and call_ended
		CallID   string      `json:"callId"`
		Status   string      `json:"status"`
		Reason   string      `json:"reason"`
		Duration int64       `json:"duration"`
		EndedBy  string      `json:"endedBy,omitempty"`
		EndedAt  parley.Time `json:"endedAt"`
	}
	callElsewhere struct {
		CallID string `json:"callId"`
	}
	callSignal struct {
		CallID string          `json:"callId"`
		From   string          `json:"from"`
		Signal json.RawMessage `json:"signal"`
	}
)

// callEvent is one event of a call: published live to to, and recorded
// in the sync log of the users in log.
type callEvent struct {
	name string
	data []byte
	to   []string
	log  []string
}

func newCallEvent(name string, data any, to, log []string) (*callEvent, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	return &callEvent{name: name, data: raw, to: to, log: log}, nil
}

// changes returns the sync-log records of evs.
func callChanges(now time.Time, evs ...*callEvent) []*parley.Change {
	var out []*parley.Change
	for _, ev := range evs {
		for _, u := range ev.log {
			out = append(out, &parley.Change{Event: ev.name, ToUser: u, Payload: ev.data, CreatedAt: now})
		}
	}
	return out
}

// announce publishes evs (after their move committed).
func (s *Service) announce(ctx context.Context, evs ...*callEvent) {
	for _, ev := range evs {
		if len(ev.to) == 0 {
			continue
		}
		if err := s.bus.Publish(ctx, &parley.Event{Name: ev.name, Data: ev.data, To: ev.to}); err != nil {
			s.log.Warn("publish event", "event", ev.name, "err", err)
		}
	}
}

// StartCall rings receiverId's devices (call_incoming to each of their
// sockets, on every node), or, when they are in another live call, ends the
// call at once as busy (call_ended with reason busy to the caller). A
// callee with no connected socket gets a push: the outbox reads the
// call_incoming recorded here from the change log (notify.go).
// Errors: EINVALID, ENOTFOUND (no such user), EBLOCKED (either blocked
// the other), EFORBIDDEN (callerId not the caller).
func (s *Service) StartCall(ctx context.Context, caller *parley.Identity, in CallInput) (*CallStarted, error) {
	if err := checkSelf(caller, in.CallerID, "callerId"); err != nil {
		return nil, err
	}
	if err := required("receiverId", in.ReceiverID); err != nil {
		return nil, err
	}
	if err := maxLen("receiverId", in.ReceiverID, maxIDLen); err != nil {
		return nil, err
	}
	if in.Type != parley.CallVoice && in.Type != parley.CallVideo {
		return nil, parley.Errorf(parley.EINVALID, "type must be voice or video")
	}
	if in.ReceiverID == caller.UserID {
		return nil, parley.Errorf(parley.EINVALID, "receiverId must not be yourself")
	}
	if _, err := s.store.Users.UserByID(ctx, in.ReceiverID); err != nil {
		return nil, err
	}
	if blocked, err := s.store.Social.BlockedEither(ctx, caller.UserID, in.ReceiverID); err != nil {
		return nil, err
	} else if blocked {
		return nil, parley.Errorf(parley.EBLOCKED, "you cannot call this user")
	}
	now := s.now()
	c := &parley.Call{ID: parley.NewID("call"), CallerID: caller.UserID, CalleeID: in.ReceiverID, Type: in.Type,
		State: parley.CallRinging, CallerDevice: caller.DeviceID, CreatedAt: now}
	var evs []*callEvent
	var buildErr error
	err := s.store.Calls.CreateCall(ctx, c, func(c *parley.Call) []*parley.Change {
		var ev *callEvent
		if c.State == parley.CallBusy {
			// The callee is not disturbed: only the caller hears busy.
			ev, buildErr = newCallEvent(parley.EventCallEnded, finished(c, ""), []string{c.CallerID}, []string{c.CallerID})
		} else {
			ev, buildErr = newCallEvent(parley.EventCallIncoming, callIncoming{CallID: c.ID, CallerID: c.CallerID, ReceiverID: c.CalleeID,
				Type: c.Type, CreatedAt: parley.Time{Time: c.CreatedAt}}, []string{c.CalleeID}, []string{c.CalleeID})
		}
		evs = []*callEvent{ev}
		return callChanges(now, evs...)
	})
	if err == nil {
		err = buildErr
	}
	if err != nil {
		return nil, err
	}
	s.announce(ctx, evs...)
	return &CallStarted{CallID: c.ID, Status: c.State, Type: c.Type, CreatedAt: parley.Time{Time: c.CreatedAt}}, nil
}

// finished is the payload of call_rejected and call_ended for c.
func finished(c *parley.Call, endedBy string) callFinished {
	return callFinished{CallID: c.ID, Status: c.State, Reason: c.Reason, Duration: int64(c.Duration() / time.Second),
		EndedBy: endedBy, EndedAt: parley.Time{Time: c.EndedAt}}
}

// partyCall reads a call the caller takes part in; anyone else gets 404.
func (s *Service) partyCall(ctx context.Context, caller *parley.Identity, id string) (*parley.Call, error) {
	if err := required("callId", id); err != nil {
		return nil, err
	}
	if err := maxLen("callId", id, maxIDLen); err != nil {
		return nil, err
	}
	c, err := s.store.Calls.CallByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.CallerID != caller.UserID && c.CalleeID != caller.UserID {
		return nil, parley.Errorf(parley.ENOTFOUND, "call not found")
	}
	return c, nil
}

// AnswerCall accepts or declines a ringing call on the caller's device.
// The first device to answer wins: accepting sends call_accepted to the
// caller and to that device and call_answered_elsewhere to the callee's
// other devices; declining sends call_rejected to both parties. Errors:
// EINVALID, ENOTFOUND (no such call of the caller, or none ringing from
// callerId), EFORBIDDEN (the caller placed the call, or receiverId is not
// the caller), ECONFLICT (it no longer rings: answered elsewhere, ended).
func (s *Service) AnswerCall(ctx context.Context, caller *parley.Identity, in AnswerInput) (*AnswerResult, error) {
	if err := checkSelf(caller, in.ReceiverID, "receiverId"); err != nil {
		return nil, err
	}
	if in.Answer == nil {
		return nil, parley.Errorf(parley.EINVALID, "answer must be true (accept) or false (decline)")
	}
	var c *parley.Call
	var err error
	if in.CallID == "" && in.CallerID != "" {
		if err := maxLen("callerId", in.CallerID, maxIDLen); err != nil {
			return nil, err
		}
		c, err = s.store.Calls.RingingCall(ctx, in.CallerID, caller.UserID)
	} else {
		c, err = s.partyCall(ctx, caller, in.CallID)
	}
	if err != nil {
		return nil, err
	}
	if c.CalleeID != caller.UserID {
		return nil, parley.Errorf(parley.EFORBIDDEN, "only the person called answers a call")
	}
	if c.State != parley.CallRinging {
		return nil, notRinging(c)
	}
	now := s.now()
	var evs []*callEvent
	status := "call_rejected"
	if *in.Answer {
		status = "call_accepted"
		c.State, c.CalleeDevice, c.AnsweredAt = parley.CallAccepted, caller.DeviceID, now
		accepted := callAccepted{CallID: c.ID, CallerID: c.CallerID, ReceiverID: c.CalleeID, Type: c.Type, AnsweredAt: parley.Time{Time: now}}
		a, err := newCallEvent(parley.EventCallAccepted, accepted,
			[]string{c.CallerID, parley.DeviceAddress(c.CalleeID, caller.DeviceID)}, []string{c.CallerID, c.CalleeID})
		if err != nil {
			return nil, err
		}
		e, err := newCallEvent(parley.EventCallAnsweredElsewhere, callElsewhere{CallID: c.ID},
			[]string{parley.OtherDevicesAddress(c.CalleeID, caller.DeviceID)}, nil)
		if err != nil {
			return nil, err
		}
		evs = []*callEvent{a, e}
	} else {
		c.State, c.Reason, c.EndedAt = parley.CallRejected, ReasonRejected, now
		r, err := newCallEvent(parley.EventCallRejected, finished(c, caller.UserID), []string{c.CallerID, c.CalleeID},
			[]string{c.CallerID, c.CalleeID})
		if err != nil {
			return nil, err
		}
		evs = []*callEvent{r}
	}
	won, err := s.store.Calls.MoveCall(ctx, c, parley.CallRinging, callChanges(now, evs...)...)
	if err != nil {
		return nil, err
	}
	if !won {
		c, err = s.store.Calls.CallByID(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		return nil, notRinging(c)
	}
	s.announce(ctx, evs...)
	return &AnswerResult{CallID: c.ID, Status: status}, nil
}

// notRinging is the error of answering c once it stopped ringing.
func notRinging(c *parley.Call) error {
	if c.State == parley.CallAccepted {
		return parley.Errorf(parley.ECONFLICT, "the call was answered on another device")
	}
	return parley.Errorf(parley.ECONFLICT, "the call is no longer ringing (%s)", c.State)
}

// EndCall hangs up: a live call ends (reason hangup), a ringing one is
// canceled by its caller or declined by its callee. Both parties get
// call_ended (call_rejected for a decline) with the reason and how long the
// call was live. Errors: EINVALID, ENOTFOUND, ECONFLICT (already over).
func (s *Service) EndCall(ctx context.Context, caller *parley.Identity, in CallIDInput) (*EndResult, error) {
	c, err := s.partyCall(ctx, caller, in.CallID)
	if err != nil {
		return nil, err
	}
	for range moveAttempts {
		if !c.Live() {
			return nil, parley.Errorf(parley.ECONFLICT, "the call is already over (%s)", c.State)
		}
		from, now := c.State, s.now()
		event := parley.EventCallEnded
		switch {
		case from == parley.CallAccepted:
			c.State, c.Reason = parley.CallEnded, ReasonHangup
		case caller.UserID == c.CallerID:
			c.State, c.Reason = parley.CallCanceled, ReasonCanceled
		default:
			c.State, c.Reason, event = parley.CallRejected, ReasonRejected, parley.EventCallRejected
		}
		c.EndedAt = now
		ev, err := newCallEvent(event, finished(c, caller.UserID), []string{c.CallerID, c.CalleeID}, []string{c.CallerID, c.CalleeID})
		if err != nil {
			return nil, err
		}
		won, err := s.store.Calls.MoveCall(ctx, c, from, callChanges(now, ev)...)
		if err != nil {
			return nil, err
		}
		if won {
			s.announce(ctx, ev)
			return &EndResult{CallID: c.ID, Status: c.State, Reason: c.Reason, Duration: int64(c.Duration() / time.Second)}, nil
		}
		// Another move came first (the callee answered as the caller
		// hung up, say): act on the state it left.
		if c, err = s.store.Calls.CallByID(ctx, c.ID); err != nil {
			return nil, err
		}
	}
	return nil, parley.Errorf(parley.ECONFLICT, "the call is changing; try again")
}

// Signal relays a WebRTC signal to the other device of a call, as
// call_signal {callId, from, signal}. While the call rings, the device that
// placed it may signal every device of the callee (one of them will
// answer); once it is live, only its two devices signal each other.
// Errors: EINVALID, ETOOLARGE (signal over 64 KiB), ENOTFOUND (not a party),
// EFORBIDDEN (another device than the call's, or the callee before
// answering), ECONFLICT (the call is over).
func (s *Service) Signal(ctx context.Context, caller *parley.Identity, in SignalInput) (*SignalResult, error) {
	if len(in.Signal) > parley.MaxSignalBytes {
		return nil, parley.Errorf(parley.ETOOLARGE, "signal must be at most %d bytes", parley.MaxSignalBytes)
	}
	if len(in.Signal) == 0 || string(in.Signal) == "null" {
		return nil, parley.Errorf(parley.EINVALID, "signal is required")
	}
	c, err := s.partyCall(ctx, caller, in.CallID)
	if err != nil {
		return nil, err
	}
	if !c.Live() {
		return nil, parley.Errorf(parley.ECONFLICT, "the call is over (%s)", c.State)
	}
	var to, toUser string
	switch {
	case caller.UserID == c.CallerID:
		if caller.DeviceID != c.CallerDevice {
			return nil, parley.Errorf(parley.EFORBIDDEN, "only the device that placed the call signals in it")
		}
		toUser = c.CalleeID
		to = c.CalleeID
		if c.State == parley.CallAccepted {
			to = parley.DeviceAddress(c.CalleeID, c.CalleeDevice)
		}
	default:
		if c.State != parley.CallAccepted {
			return nil, parley.Errorf(parley.EFORBIDDEN, "answer the call before signalling in it")
		}
		if caller.DeviceID != c.CalleeDevice {
			return nil, parley.Errorf(parley.EFORBIDDEN, "the call was answered on another device")
		}
		toUser = c.CallerID
		to = parley.DeviceAddress(c.CallerID, c.CallerDevice)
	}
	raw, err := json.Marshal(callSignal{CallID: c.ID, From: caller.UserID, Signal: in.Signal})
	if err != nil {
		return nil, parley.Errorf(parley.EINVALID, "signal must be JSON")
	}
	if err := s.bus.Publish(ctx, &parley.Event{Name: parley.EventCallSignal, Data: raw, To: []string{to}}); err != nil {
		return nil, parley.Errorf(parley.EUNAVAILABLE, "the signal could not be relayed; try again")
	}
	return &SignalResult{CallID: c.ID, To: toUser}, nil
}

// CallHistory lists the caller's calls, newest first, created before
// before (zero: now). Errors: none of the caller's making.
func (s *Service) CallHistory(ctx context.Context, caller *parley.Identity, limit int, before time.Time) ([]*CallView, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	if before.IsZero() {
		before = s.now().Add(time.Millisecond)
	}
	list, err := s.store.Calls.CallHistory(ctx, caller.UserID, before, min(limit, MaxPageSize))
	if err != nil {
		return nil, err
	}
	out := make([]*CallView, 0, len(list))
	for _, c := range list {
		v := &CallView{CallID: c.ID, Type: c.Type, Status: c.State, Reason: c.Reason, Direction: "incoming", CallerID: c.CallerID,
			ReceiverID: c.CalleeID, PeerID: c.Other(caller.UserID), CreatedAt: parley.Time{Time: c.CreatedAt},
			Duration: int64(c.Duration() / time.Second)}
		if c.CallerID == caller.UserID {
			v.Direction = "outgoing"
		}
		if !c.AnsweredAt.IsZero() {
			v.AnsweredAt = &parley.Time{Time: c.AnsweredAt}
		}
		if !c.EndedAt.IsZero() {
			v.EndedAt = &parley.Time{Time: c.EndedAt}
		}
		out = append(out, v)
	}
	return out, nil
}

// ICEServers returns the STUN and TURN servers a client uses for its calls,
// with a TURN credential for the caller valid for Config.ICE.TTL. Empty
// when none is configured (peers then connect directly or not at all).
func (s *Service) ICEServers(ctx context.Context, caller *parley.Identity) []ICEServer {
	out := []ICEServer{}
	ice := s.cfg.ICE
	if len(ice.STUN) > 0 {
		out = append(out, ICEServer{URLs: ice.STUN})
	}
	if len(ice.TURN) > 0 && ice.Secret != "" {
		ttl := ice.TTL
		if ttl <= 0 {
			ttl = defaultTURNTTL
		}
		name := parley.TURNUsername(s.now().Add(ttl), caller.UserID)
		out = append(out, ICEServer{URLs: ice.TURN, Username: name, Credential: parley.TURNCredential(ice.Secret, name)})
	}
	return out
}

// addCallJobs registers the jobs that end unanswered calls and calls that
// lost a device's connection (call_devices.go), and listens to the other
// nodes' lost devices.
func (s *Service) addCallJobs(r *jobs.Runner) {
	every := s.cfg.CallsTick
	if every <= 0 {
		every = defaultCallsTick
	}
	r.Add(jobs.Job{Name: JobMissedCalls, Every: every, Leased: true, Timeout: time.Minute, Run: s.endMissedCalls})
	r.Add(jobs.Job{Name: JobLostCalls, Every: every, Leased: true, Timeout: time.Minute, Run: s.endLostCalls})
	s.callDevices.unsub = s.bus.Subscribe(s.callDevices.onBusEvent)
}

// endMissedCalls moves the calls that rang for parley.CallRingTimeout to
// missed and tells both parties (call_ended, reason missed). The move is
// conditional on the call still ringing, so a call answered meanwhile, or
// moved by another node whose lease lapsed, is left alone: each call is
// missed once.
func (s *Service) endMissedCalls(ctx context.Context) error {
	for {
		now := s.now()
		due, err := s.store.Calls.RingingSince(ctx, now.Add(-parley.CallRingTimeout), missedBatch)
		if err != nil {
			return err
		}
		for _, c := range due {
			c.State, c.Reason, c.EndedAt = parley.CallMissed, ReasonMissed, now
			ev, err := newCallEvent(parley.EventCallEnded, finished(c, ""), []string{c.CallerID, c.CalleeID}, []string{c.CallerID, c.CalleeID})
			if err != nil {
				return err
			}
			won, err := s.store.Calls.MoveCall(ctx, c, parley.CallRinging, callChanges(now, ev)...)
			if err != nil {
				return err
			}
			if won {
				s.announce(ctx, ev)
			}
		}
		if len(due) < missedBatch {
			return nil
		}
	}
}
