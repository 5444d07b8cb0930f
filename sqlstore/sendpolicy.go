package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sort"
	"sync"

	"github.com/parley-chat/parley"
)

// sendPolicy is what the send path knows about one kind of conversation:
// who may post in it and who receives what is posted. The event recorded
// for a new message comes from parley.MessageEvent. A new kind of
// conversation is one more policy in sendPolicies, not another branch in
// sendMessages.
type sendPolicy interface {
	// admit runs in the batch's transaction over the sends to the
	// conversations of its kind (convs in id order, which is the order to
	// take locks in): it sets Err on each send that may not be posted and
	// Recipients (the users to deliver it to) on the others.
	// reads holds what the batch's first round trip read for the policies.
	admit(ctx context.Context, tx *Tx, convs []string, byConv map[string][]*parley.Send, reads *sendReads) error
}

// sendReads is what sendMessages reads with the batch's first statements
// (on PostgreSQL one round trip with BEGIN), for the policies to admit by.
type sendReads struct {
	blocked map[string]bool // pairKey of the direct senders and recipients where either blocked the other
}

// sendPolicies holds the policy of every conversation kind that can be
// sent to.
var sendPolicies = map[string]sendPolicy{
	parley.KindDirect:  directSends{},
	parley.KindGroup:   groupSends{},
	parley.KindChannel: channelSends{},
}

// admit applies each kind's send policy to the batch's sends; a send to a
// conversation of no known kind fails alone with ENOTFOUND.
func (tx *Tx) admit(ctx context.Context, convs []string, byConv map[string][]*parley.Send, reads *sendReads) error {
	byKind := map[string][]string{}
	var kinds []string
	for _, id := range convs {
		kind := parley.KindOf(id)
		if sendPolicies[kind] == nil {
			for _, s := range byConv[id] {
				s.Err = parley.Errorf(parley.ENOTFOUND, "conversation not found")
			}
			continue
		}
		if byKind[kind] == nil {
			kinds = append(kinds, kind)
		}
		byKind[kind] = append(byKind[kind], id)
	}
	sort.Strings(kinds) // every batch takes the locks of the kinds in the same order
	for _, kind := range kinds {
		if err := sendPolicies[kind].admit(ctx, tx, byKind[kind], byConv, reads); err != nil {
			return err
		}
	}
	return nil
}

// directSends is the policy of direct conversations: the sender posts to
// the one recipient the service resolved the conversation from, unless
// either blocked the other (checked in the same transaction, so a block
// committed before the send stops it); both receive the message.
type directSends struct{}

func (directSends) admit(ctx context.Context, tx *Tx, convs []string, byConv map[string][]*parley.Send, reads *sendReads) error {
	for _, id := range convs {
		for _, s := range byConv[id] {
			m := s.Message
			if reads.blocked[pairKey(m.SenderID, m.RecipientID)] {
				s.Err = parley.Errorf(parley.EBLOCKED, "you cannot message this user")
				continue
			}
			s.Recipients = []string{m.RecipientID, m.SenderID}
		}
	}
	return nil
}

// pairKey names the unordered pair of users a and b.
func pairKey(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return a + "\x00" + b
}

// blockedPairs returns the pairs (by pairKey) of the batch's direct senders
// and recipients where either blocked the other. The read is queued
// (Tx.later): the map is complete after the next flush.
func (tx *Tx) blockedPairs(ctx context.Context, batch []*parley.Send) (map[string]bool, error) {
	pairs := newRowSet("text", "text").reserve(2 * len(batch)) // blocker, blocked: both directions of each pair
	asked := map[string]bool{}
	for _, s := range batch {
		m := s.Message
		if m.RecipientID == "" || asked[pairKey(m.SenderID, m.RecipientID)] {
			continue
		}
		asked[pairKey(m.SenderID, m.RecipientID)] = true
		pairs.add(m.SenderID, m.RecipientID)
		pairs.add(m.RecipientID, m.SenderID)
	}
	out := map[string]bool{}
	err := pairs.each(tx.db.dialect, func(table string, args []any) error {
		return tx.later(ctx, `SELECT b.user_id, b.blocked_id FROM `+table+`
			JOIN blocks b ON b.user_id = v.column1 AND b.blocked_id = v.column2`, args, func(s scanner) error {
			var a, b string
			err := s.Scan(&a, &b)
			out[pairKey(a, b)] = true
			return err
		})
	})
	return out, err
}

// groupSends is the policy of groups: members post (only admins when the
// group says so) and every member at the moment of the commit receives,
// read under the group's lock so that a message never reaches a member
// removed before it committed.
type groupSends struct{}

func (groupSends) admit(ctx context.Context, tx *Tx, convs []string, byConv map[string][]*parley.Send, _ *sendReads) error {
	return admitMembers(ctx, tx, parley.KindGroup, convs, byConv)
}

// channelSends is the policy of community channels: the channel's readers
// post (only the community's admins in an announcement channel) and every
// reader at the moment of the commit receives, exactly as in groups. A
// pending or removed community member is no reader: ENOTFOUND.
type channelSends struct{}

func (channelSends) admit(ctx context.Context, tx *Tx, convs []string, byConv map[string][]*parley.Send, _ *sendReads) error {
	return admitMembers(ctx, tx, parley.KindChannel, convs, byConv)
}

// admitMembers admits the sends of conversations whose members receive.
func admitMembers(ctx context.Context, tx *Tx, kind string, convs []string, byConv map[string][]*parley.Send) error {
	for _, id := range convs {
		st, err := tx.memberSendState(ctx, kind, id)
		if err != nil {
			return err
		}
		for _, s := range byConv[id] {
			if s.Err = st.check(s.Message.SenderID); s.Err == nil {
				s.Recipients, s.Audience = st.members, st
			}
		}
	}
	return nil
}

// groupSendState is what a batch of sends needs to know about a group or
// channel, read once per batch under the conversation's lock.
type groupSendState struct {
	kind       string
	version    int64
	onlyAdmins bool
	members    []string
	roles      map[string]string
}

// onlyAdminsQuery reads, per kind, whether only admins may post.
var onlyAdminsQuery = map[string]string{
	parley.KindGroup:   `SELECT only_admins_send FROM group_chats WHERE conversation_id = ?`,
	parley.KindChannel: `SELECT type = 'announcement' FROM channels WHERE conversation_id = ?`,
}

// Has reports whether userID is a member: st is its sends' Audience.
func (st *groupSendState) Has(userID string) bool {
	_, ok := st.roles[userID]
	return ok
}

func (tx *Tx) memberSendState(ctx context.Context, kind, convID string) (*groupSendState, error) {
	// The lock: a no-op update (PostgreSQL locks the row; SQLite has one
	// writer anyway), reading the version of the membership under it.
	var version int64
	err := tx.queryRow(ctx, `UPDATE conversations SET last_seq = last_seq WHERE id = ? AND kind = ? RETURNING members_version`,
		convID, kind).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		return &groupSendState{kind: kind, roles: map[string]string{}}, nil // none such: every send to it fails alone
	} else if err != nil {
		return nil, err
	}
	if st := tx.db.groups.get(convID, version); st != nil {
		return st, nil
	}
	st := &groupSendState{kind: kind, version: version, roles: map[string]string{}}
	err = tx.queryRow(ctx, onlyAdminsQuery[kind], convID).Scan(&st.onlyAdmins)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	} else if err != nil {
		return nil, err
	}
	if st.members, st.roles, err = tx.memberRoles(ctx, convID); err != nil {
		return nil, err
	}
	tx.db.groups.put(convID, st)
	return st, nil
}

// groupCache keeps each group's send state with the members_version it was
// read at. A send re-reads the version under the group's lock, so a cached
// state is used only while no membership change committed since, on any
// node. Cached states are never modified.
type groupCache struct {
	mu sync.Mutex
	m  map[string]*groupSendState
}

const maxCachedGroups = 4096

func (c *groupCache) get(convID string, version int64) *groupSendState {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.m[convID]; st != nil && st.version == version {
		return st
	}
	return nil
}

func (c *groupCache) put(convID string, st *groupSendState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedGroups {
		c.m = map[string]*groupSendState{} // start over rather than track recency
	}
	c.m[convID] = st
}

// check reports why sender may not send to the group, or nil.
func (st *groupSendState) check(sender string) error {
	role, ok := st.roles[sender]
	if !ok {
		return parley.Errorf(parley.ENOTFOUND, "%s not found", st.kind)
	}
	if st.onlyAdmins && role != parley.RoleAdmin && st.kind == parley.KindChannel {
		return parley.Errorf(parley.EFORBIDDEN, "only admins can post in announcement channels")
	}
	if st.onlyAdmins && role != parley.RoleAdmin {
		return parley.Errorf(parley.EFORBIDDEN, "only admins can send messages to this group")
	}
	return nil
}
