package httpapi

import (
	"context"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/service"
)

// callRoutes are the call routes of API.md §9, with seed 001's voice and
// video spellings.
func (a *API) callRoutes() []route {
	s := a.svc
	// seedStart is a seed 001 initiate route: the type comes from the path
	// and a ringing call answers the seed's status string.
	seedStart := func(typ, status string) func(context.Context, *call) (any, error) {
		return func(ctx context.Context, c *call) (any, error) {
			var in service.CallInput
			if err := c.body(&in); err != nil {
				return nil, err
			}
			if in.Type != "" && in.Type != typ {
				return nil, parley.Errorf(parley.EINVALID, "type must be %s on this route", typ)
			}
			in.Type = typ
			out, err := s.StartCall(ctx, c.caller, in)
			if err != nil {
				return nil, err
			}
			if out.Status == parley.CallRinging {
				out.Status = status
			}
			return withMessage{out, "Call initiated"}, nil
		}
	}
	seedAnswer := func(accepted string) func(context.Context, *call) (any, error) {
		return func(ctx context.Context, c *call) (any, error) {
			var in service.AnswerInput
			if err := c.body(&in); err != nil {
				return nil, err
			}
			out, err := s.AnswerCall(ctx, c.caller, in)
			if err != nil {
				return nil, err
			}
			if out.Status == "call_accepted" {
				out.Status = accepted
			}
			return withMessage{out, answerMessage(out)}, nil
		}
	}
	const initiated = "Ring receiverId's devices (call_incoming on each of their sockets); status busy, ended at once, when they are in another call. " +
		"403 blocked when either blocked the other. Unanswered calls end as missed after 45 s; a call whose caller's device has no socket " +
		"for 20 s while it rings ends as failed, and a live call one of whose two devices has none for 20 s ends with reason connection_lost."
	const answered = "Accept (answer: true) or decline a ringing call on this device; the first device to answer wins, the callee's " +
		"other devices get call_answered_elsewhere, and 409 answers a device that came second. Without callId (seed 001), answers the newest " +
		"call still ringing from callerId (caller_id)."
	return []route{
		{Method: "POST", Path: "/api/calls/initiate", In: service.CallInput{}, Out: service.CallStarted{}, Summary: "Start a voice or video call. " + initiated,
			handle: withBodyMessage(s.StartCall, text[*service.CallStarted]("Call initiated"))},
		{Method: "POST", Path: "/api/calls/voice/initiate", In: service.CallInput{}, Out: service.CallStarted{},
			Summary: "Seed 001: start a voice call (caller_id, receiver_id accepted); status call_initiated while it rings. " + initiated,
			handle:  seedStart(parley.CallVoice, "call_initiated")},
		{Method: "POST", Path: "/api/calls/video/initiate", In: service.CallInput{}, Out: service.CallStarted{},
			Summary: "Seed 001: start a video call (caller_id, receiver_id accepted); status video_call_initiated while it rings. " + initiated,
			handle:  seedStart(parley.CallVideo, "video_call_initiated")},
		{Method: "POST", Path: "/api/calls/answer", In: service.AnswerInput{}, Out: service.AnswerResult{},
			Summary: answered + " Status call_accepted or call_rejected.",
			handle:  withBodyMessage(s.AnswerCall, answerMessage)},
		{Method: "POST", Path: "/api/calls/voice/answer", In: service.AnswerInput{}, Out: service.AnswerResult{},
			Summary: "Seed 001: " + answered + " Status call_accepted or call_rejected.", handle: seedAnswer("call_accepted")},
		{Method: "POST", Path: "/api/calls/video/answer", In: service.AnswerInput{}, Out: service.AnswerResult{},
			Summary: "Seed 001: " + answered + " Status video_call_accepted or call_rejected.", handle: seedAnswer("video_call_accepted")},
		{Method: "POST", Path: "/api/calls/end", In: service.CallIDInput{}, Out: service.EndResult{},
			Summary: "Hang up: a live call ends (reason hangup), a ringing one is canceled by its caller or declined by its callee; " +
				"call_ended (call_rejected for a decline) goes to both parties with the reason and duration. 409 once it is over.",
			handle: withBodyMessage(s.EndCall, text[*service.EndResult]("Call ended"))},
		{Method: "POST", Path: "/api/calls/signal", In: service.SignalInput{}, Out: service.SignalResult{},
			Summary: "Relay a WebRTC signal (any JSON, at most 64 KiB, never stored) as call_signal {callId, from, signal}: while the call " +
				"rings from the device that placed it to every device of the callee, once live between its two devices only. " +
				"404 to non-parties, 403 from other devices, 409 once the call is over, 413 when too large.",
			handle: withBody(s.Signal)},
		{Method: "GET", Path: "/api/calls/history", Query: []param{{"limit", "page size, 1-200 (default 50)"},
			{"before", "only calls started before this time (epoch ms or ISO 8601)"}}, Out: []service.CallView{},
			Summary: "The caller's calls, newest first, with state (ringing, accepted, ended, rejected, missed, canceled, busy, failed), " +
				"reason, type, duration and the other party.",
			handle: func(ctx context.Context, c *call) (any, error) {
				limit, err := queryInt(c.r, "limit", service.DefaultPageSize, 1, service.MaxPageSize)
				if err != nil {
					return nil, err
				}
				var before time.Time
				if b := c.r.URL.Query().Get("before"); b != "" {
					t, ok := parley.ParseTime(b)
					if !ok {
						return nil, parley.Errorf(parley.EINVALID, "before must be epoch milliseconds or an ISO 8601 time")
					}
					before = t
				}
				return s.CallHistory(ctx, c.caller, limit, before)
			}},
		{Method: "GET", Path: "/api/calls/ice-servers", Out: []service.ICEServer{},
			Summary: "The STUN and TURN servers for RTCPeerConnection's iceServers, with a short-lived TURN credential of the caller " +
				"(TURN REST API: username expiry:userId, credential base64 HMAC-SHA1). Empty when none is configured.",
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.ICEServers(ctx, c.caller), nil
			}},
	}
}

// answerMessage is the seed's message for an answer.
func answerMessage(r *service.AnswerResult) string {
	if r.Status == "call_rejected" {
		return "Call rejected"
	}
	return "Call accepted"
}
