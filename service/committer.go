package service

import (
	"context"
	"sync"
	"time"

	"github.com/parley-chat/parley"
)

// maxBatch bounds how many sends one transaction commits.
const maxBatch = 256

// committer is group commit for sends: requests queue while a transaction
// runs, and the next transaction takes all of them at once. One fsync then
// acknowledges many messages, and nothing is acknowledged before its commit.
type committer struct {
	store   parley.MessageStore
	metrics parley.Metrics // batch sizes and durations, messages sent by kind
	timeout time.Duration  // of each batch's transaction
	reqs    chan *commitReq
	done    chan struct{}
	start   sync.Once // the loop starts with the first send, not in New
}

type commitReq struct {
	send *parley.Send
	err  chan error
}

func newCommitter(store parley.MessageStore, m parley.Metrics, timeout time.Duration) *committer {
	return &committer{store: store, metrics: m, timeout: timeout, reqs: make(chan *commitReq, 4*maxBatch), done: make(chan struct{})}
}

// queuedKey is the context key of WithQueued's callback.
type queuedKey struct{}

// WithQueued returns ctx carrying queued, which a send made with it calls
// once its message has its place in the commit queue, before it waits for
// the commit: sends queued in the order of these calls are committed, and
// numbered, in that order. A socket uses it to read its next event while
// the send waits (realtime's pipelined events), without reordering them.
func WithQueued(ctx context.Context, queued func()) context.Context {
	return context.WithValue(ctx, queuedKey{}, queued)
}

// commit queues s and waits until it is committed (or failed).
func (c *committer) commit(ctx context.Context, s *parley.Send) error {
	c.start.Do(func() { go c.loop() })
	r := &commitReq{send: s, err: make(chan error, 1)}
	select {
	case c.reqs <- r:
	case <-ctx.Done():
		return parley.Errorf(parley.EUNAVAILABLE, "server busy, message not sent")
	}
	if queued, ok := ctx.Value(queuedKey{}).(func()); ok {
		queued()
	}
	// Once queued the send will be committed or fail; wait for the verdict
	// even if the client gives up, so the answer never lies.
	return <-r.err
}

func (c *committer) loop() {
	defer close(c.done)
	batch := make([]*commitReq, 0, maxBatch)
	sends := make([]*parley.Send, 0, maxBatch)
	for first := range c.reqs {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-c.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		sends = sends[:0]
		for _, r := range batch {
			sends = append(sends, r.send)
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		start := time.Now()
		err := c.store.SendMessages(ctx, sends)
		cancel()
		c.metrics.CommitBatch(len(sends), time.Since(start))
		if err == nil {
			c.countSent(sends)
		}
		for _, r := range batch {
			r.err <- err
		}
	}
}

// close commits what is queued and stops the loop; call it once no more
// sends can come.
func (c *committer) close() {
	c.start.Do(func() { close(c.done) }) // never started: nothing to wait for
	close(c.reqs)
	<-c.done
}

// countSent reports the new messages of a committed batch by conversation
// kind (repeats and refused sends are not new).
func (c *committer) countSent(sends []*parley.Send) {
	var byKind map[string]int
	for _, s := range sends {
		if s.Err == nil && !s.Duplicate {
			if byKind == nil {
				byKind = map[string]int{}
			}
			byKind[parley.KindOf(s.Message.ConversationID)]++
		}
	}
	for kind, n := range byKind {
		c.metrics.MessagesSent(kind, n)
	}
}
