package service

import (
	"context"
	"encoding/json"
	"time"

	"github.com/parley-chat/parley"
)

// ScheduleInput is the body of POST /api/messages/schedule.
type ScheduleInput struct {
	SendInput
	ScheduledAt TimeInput `json:"scheduledAt"` // ISO 8601 or epoch milliseconds
}

// TimeInput is a time given as an ISO 8601 string or as epoch milliseconds
// (a JSON number or a string of digits).
type TimeInput string

// UnmarshalJSON accepts a JSON string or number.
func (t *TimeInput) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = TimeInput(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return parley.Errorf(parley.EINVALID, "time must be an ISO 8601 string or epoch milliseconds")
	}
	*t = TimeInput(n.String())
	return nil
}

// ScheduledView is a pending scheduled message as its sender sees it.
type ScheduledView struct {
	MessageID       string      `json:"messageId"`
	RecipientID     string      `json:"recipientId"`
	ClientMessageID string      `json:"clientMessageId,omitempty"`
	Content         string      `json:"content"`
	Type            string      `json:"type"`
	ReplyToID       string      `json:"replyToId"`
	Status          string      `json:"status"`
	ScheduledAt     parley.Time `json:"scheduledAt"`
	CreatedAt       parley.Time `json:"createdAt"`
}

// ScheduleResult is the answer to scheduling.
type ScheduleResult struct {
	MessageID   string      `json:"messageId"`
	Status      string      `json:"status"`
	ScheduledAt parley.Time `json:"scheduledAt"`
}

// Schedule stores a message to send at scheduledAt (in the future, at most
// a year ahead). It is stored durably and sent exactly once, even across
// restarts and with several nodes; the message keeps the returned
// messageId. Errors: as SendMessage, EINVALID for the time, ECONFLICT.
func (s *Service) Schedule(ctx context.Context, caller *parley.Identity, in ScheduleInput) (*ScheduleResult, error) {
	if err := checkSelf(caller, in.SenderID, "senderId"); err != nil {
		return nil, err
	}
	at, ok := parley.ParseTime(string(in.ScheduledAt))
	if !ok {
		return nil, parley.Errorf(parley.EINVALID, "scheduledAt must be an ISO 8601 time or epoch milliseconds")
	}
	now := s.now()
	if !at.After(now) {
		return nil, parley.Errorf(parley.EINVALID, "scheduledAt must be in the future")
	}
	if at.Sub(now) > parley.MaxScheduleAhead {
		return nil, parley.Errorf(parley.EINVALID, "scheduledAt must be at most one year ahead")
	}
	if in.ReplyToStatusID != "" {
		return nil, parley.Errorf(parley.EINVALID, "replyToStatusId cannot be scheduled: the status may be gone by then; send the reply now")
	}
	m, err := s.prepareDirect(ctx, caller, in.SendInput) // the same checks as an immediate send
	if err != nil {
		return nil, err
	}
	// An immediate send learns of a block at its commit; a scheduled one is
	// refused now (and checked again when it is sent).
	if blocked, err := s.store.Social.BlockedEither(ctx, caller.UserID, m.RecipientID); err != nil {
		return nil, err
	} else if blocked {
		return nil, parley.Errorf(parley.EBLOCKED, "you cannot message this user")
	}
	if in.ClientMessageID != "" {
		if prev, err := s.store.Scheduled.ScheduledByClientID(ctx, caller.UserID, in.ClientMessageID); err == nil {
			return &ScheduleResult{MessageID: prev.ID, Status: "scheduled", ScheduledAt: parley.Time{Time: prev.ScheduledAt}}, nil
		}
	}
	sc := &parley.Scheduled{ID: m.ID, SenderID: caller.UserID, RecipientID: in.RecipientID, ClientMessageID: in.ClientMessageID,
		Content: m.Content, Type: m.Type, MediaID: m.MediaID, ReplyToID: m.ReplyToID,
		ScheduledAt: at.Truncate(time.Millisecond), CreatedAt: now}
	if err := s.store.Scheduled.CreateScheduled(ctx, sc); err != nil {
		return nil, err
	}
	s.sched.wake()
	return &ScheduleResult{MessageID: sc.ID, Status: "scheduled", ScheduledAt: parley.Time{Time: sc.ScheduledAt}}, nil
}

// ScheduledMessages lists the caller's pending scheduled messages by time.
func (s *Service) ScheduledMessages(ctx context.Context, caller *parley.Identity) ([]*ScheduledView, error) {
	list, err := s.store.Scheduled.PendingScheduled(ctx, caller.UserID)
	if err != nil {
		return nil, err
	}
	out := make([]*ScheduledView, 0, len(list))
	for _, x := range list {
		out = append(out, &ScheduledView{MessageID: x.ID, RecipientID: x.RecipientID, ClientMessageID: x.ClientMessageID, Content: x.Content,
			Type: x.Type, ReplyToID: x.ReplyToID, Status: "scheduled", ScheduledAt: parley.Time{Time: x.ScheduledAt},
			CreatedAt: parley.Time{Time: x.CreatedAt}})
	}
	return out, nil
}

// CancelScheduled cancels one of the caller's pending scheduled messages.
// Errors: EINVALID, ENOTFOUND (unknown, someone else's, or already sent).
func (s *Service) CancelScheduled(ctx context.Context, caller *parley.Identity, messageID string) error {
	if err := required("messageId", messageID); err != nil {
		return err
	}
	return s.store.Scheduled.CancelScheduled(ctx, caller.UserID, messageID)
}

// scheduler sends due scheduled messages, as the leased background job
// JobScheduled (so one node at a time looks for due messages). Each node
// also leases the due messages before sending them, and the sent message's
// clientMessageId is derived from the scheduled id, so even a lease that
// expires mid-send (a node that stalled) cannot store the message twice.
type scheduler struct {
	s    *Service
	node string
}

// JobScheduled is the name of the background job that sends due scheduled
// messages.
const JobScheduled = "scheduled-messages"

func newScheduler(s *Service, node string) *scheduler {
	if node == "" {
		node = parley.NewID("node")
	}
	return &scheduler{s: s, node: node}
}

// wake asks for a run now rather than at the next tick, for a message due
// soon.
func (sc *scheduler) wake() {
	if r := sc.s.runner.Load(); r != nil {
		r.Kick(JobScheduled)
	}
}

// runDue sends every due message it can lease. It returns the error that
// stopped it when the store failed.
func (sc *scheduler) runDue(parent context.Context) error {
	for {
		if err := parent.Err(); err != nil {
			return nil // stopping
		}
		ctx, cancel := context.WithTimeout(parent, sc.s.cfg.StoreTimeout)
		now := sc.s.now()
		due, err := sc.s.store.Scheduled.ClaimDue(ctx, sc.node, now, now.Add(time.Minute), 100)
		if err != nil {
			cancel()
			return err
		}
		for _, x := range due {
			if ok, err := sc.s.store.Scheduled.StartScheduled(ctx, x.ID); err != nil || !ok {
				continue // cancelled in the meantime, or retried when the lease ends
			}
			status := "sent"
			if err := sc.s.dispatch(ctx, x); err != nil {
				sc.s.log.Warn("scheduled message not sent", "id", x.ID, "err", err)
				status = "failed"
				if parley.ErrorCode(err) == parley.EINTERNAL || parley.ErrorCode(err) == parley.EUNAVAILABLE {
					cancel()
					return err // leave it leased; it is retried when the lease ends
				}
			}
			if status == "sent" {
				sc.s.cfg.Metrics.SchedulerLag(sc.s.now().Sub(x.ScheduledAt))
			}
			if err := sc.s.store.Scheduled.FinishScheduled(ctx, x.ID, status); err != nil {
				sc.s.log.Error("finish scheduled message", "id", x.ID, "err", err)
			}
		}
		cancel()
		if len(due) < 100 {
			return nil
		}
	}
}

// dispatch sends a scheduled message as its sender, now.
func (s *Service) dispatch(ctx context.Context, x *parley.Scheduled) error {
	caller := &parley.Identity{UserID: x.SenderID}
	m, err := s.prepareDirect(ctx, caller, SendInput{RecipientID: x.RecipientID, EncryptedContent: x.Content, Type: x.Type,
		MediaID: x.MediaID, ReplyToID: x.ReplyToID})
	if err != nil {
		return err
	}
	m.ID, m.ClientMessageID = x.ID, "sched:"+x.ID
	_, err = s.commitDirect(ctx, m)
	return err
}
