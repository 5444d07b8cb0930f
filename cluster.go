package parley

import (
	"context"
	"time"
)

// PresenceStore is what several nodes serving one set of users share to
// make presence global. Each node records the users it holds sockets of,
// under a lease it renews; the records of a node whose lease ended count
// for nothing and are swept. A user is online while a live node records
// them. Each change of a user's state (came online, went offline) is
// reported to exactly one caller across all nodes, so it is announced once.
type PresenceStore interface {
	// RenewNodeLease extends node's lease to until. It reports false when
	// the node held no live lease (its first call, or the lease ran out and
	// its users may have been swept): the node must then join its users again.
	RenewNodeLease(ctx context.Context, node string, now, until time.Time) (bool, error)
	// JoinPresence records that node holds sockets of userID and reports
	// whether the user was offline everywhere until now.
	JoinPresence(ctx context.Context, node, userID string, now time.Time) (cameOnline bool, err error)
	// LeavePresence records that node holds no socket of userID any more
	// and reports whether the user is thereby offline everywhere.
	LeavePresence(ctx context.Context, node, userID string, now time.Time) (wentOffline bool, err error)
	// SweepPresence drops the records of nodes whose lease ended at or
	// before now and returns the users thereby offline everywhere.
	SweepPresence(ctx context.Context, now time.Time) (wentOffline []string, err error)
	// IsOnline reports whether a live node records userID.
	IsOnline(ctx context.Context, userID string) (bool, error)
	// OnlineAmong returns which of ids are online.
	OnlineAmong(ctx context.Context, ids []string) (map[string]bool, error)
}

// RateStore keeps token buckets every node shares, so that a rate limit
// holds across nodes whichever node a request reaches.
type RateStore interface {
	// TakeToken takes one token from the bucket named key, which holds at
	// most burst tokens and refills at perMinute tokens a minute (a new
	// bucket is full). When it is empty it reports how long until the
	// next token.
	TakeToken(ctx context.Context, key string, now time.Time, perMinute, burst int) (ok bool, wait time.Duration, err error)
	// PruneTokens forgets buckets untouched since before; a bucket idle for
	// long enough to refill is the same as a new one.
	PruneTokens(ctx context.Context, before time.Time) error
}
