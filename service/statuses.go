package service

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/jobs"
)

// Status limits besides those of the domain.
const (
	maxStatusIDLen      = 128
	maxBackgroundColor  = 64
	maxFontStyle        = 64
	purgeBatch          = 100
	maxMissingKeysNamed = 10 // listed in the error about missing keys
)

// JobPurgeStatuses is the leased background job that deletes expired
// statuses with their views and files.
const JobPurgeStatuses = "purge-statuses"

// CreateStatusInput is the body of POST /api/statuses/create (API.md §7).
type CreateStatusInput struct {
	UserID          string   `json:"userId"` // optional; must be the caller
	Type            string   `json:"type"`
	Content         string   `json:"content"` // opaque ciphertext
	MediaID         string   `json:"mediaId"`
	BackgroundColor string   `json:"backgroundColor"`
	FontStyle       string   `json:"fontStyle"`
	VisibleTo       string   `json:"visibleTo"`
	SpecificUsers   []string `json:"specificUsers"`
	ExcludedUsers   []string `json:"excludedUsers"`
	// ExpiresAt is the lifetime in hours, 1 to 24; absent: 24.
	ExpiresAt *int `json:"expiresAt"`
	// EncryptedKeys maps each user who is to see the status (and, for
	// their other devices, the owner) to the status key wrapped for them.
	EncryptedKeys map[string]string `json:"encryptedKeys"`
}

// CreateStatusResult is the answer to creating a status.
type CreateStatusResult struct {
	StatusID  string      `json:"statusId"`
	Type      string      `json:"type"`
	CreatedAt parley.Time `json:"createdAt"`
	ExpiresAt parley.Time `json:"expiresAt"`
}

// StatusView is a status as the caller sees it. A viewer gets only the key
// wrapped for them; the owner gets their own key, every viewer's key, the
// audience and the view count.
type StatusView struct {
	StatusID        string      `json:"statusId"`
	UserID          string      `json:"userId"`
	Type            string      `json:"type"`
	Content         string      `json:"content"`
	MediaID         string      `json:"mediaId"` // "" when none
	BackgroundColor string      `json:"backgroundColor"`
	FontStyle       string      `json:"fontStyle"`
	CreatedAt       parley.Time `json:"createdAt"`
	ExpiresAt       parley.Time `json:"expiresAt"`
	EncryptedKey    string      `json:"encryptedKey"` // the caller's own wrapped key; "" when none
	// ViewedAt is when the caller first viewed it; null before, and always
	// for the owner.
	ViewedAt parley.Time `json:"viewedAt"`
	// Owner only.
	VisibleTo     string            `json:"visibleTo,omitempty"`
	EncryptedKeys map[string]string `json:"encryptedKeys,omitempty"`
	ViewCount     *int              `json:"viewCount,omitempty"`
}

// StatusFeedEntry is one user's statuses in the feed.
type StatusFeedEntry struct {
	UserID      string        `json:"userId"`
	Username    string        `json:"username"`
	Name        string        `json:"name"`
	Avatar      string        `json:"avatar"`
	HasUnviewed bool          `json:"hasUnviewed"`
	LatestAt    parley.Time   `json:"latestAt"` // when their newest status was posted
	Statuses    []*StatusView `json:"statuses"` // newest first
}

// StatusViewerView is one user who viewed a status.
type StatusViewerView struct {
	UserID   string      `json:"userId"`
	Username string      `json:"username"`
	ViewedAt parley.Time `json:"viewedAt"`
}

// StatusViewersResult answers GET /api/statuses/{statusId}/viewers.
type StatusViewersResult struct {
	StatusID  string             `json:"statusId"`
	ViewCount int                `json:"viewCount"`
	Viewers   []StatusViewerView `json:"viewers"` // in the order they viewed it
}

// DeleteStatusInput is the body of POST /api/statuses/delete.
type DeleteStatusInput struct {
	StatusID string `json:"statusId"`
	UserID   string `json:"userId"` // optional; must be the caller
}

// DeleteStatusResult answers a deletion.
type DeleteStatusResult struct {
	StatusID string `json:"statusId"`
}

// statusCreatedEvent is status_created, sent to each user who may see it.
type statusCreatedEvent struct {
	StatusID  string      `json:"statusId"`
	UserID    string      `json:"userId"`
	Type      string      `json:"type"`
	CreatedAt parley.Time `json:"createdAt"`
	ExpiresAt parley.Time `json:"expiresAt"`
}

// statusViewedEvent is status_viewed, sent to the owner at a first view.
type statusViewedEvent struct {
	StatusID string      `json:"statusId"`
	ViewerID string      `json:"viewerId"`
	ViewedAt parley.Time `json:"viewedAt"`
}

// checkUserList checks specificUsers or excludedUsers.
func checkUserList(field string, ids []string) error {
	if len(ids) > parley.MaxStatusAudienceList {
		return parley.Errorf(parley.EINVALID, "%s may name at most %d users", field, parley.MaxStatusAudienceList)
	}
	for _, id := range ids {
		if err := required(field+" entries", id); err != nil {
			return err
		}
		if err := maxLen(field+" entries", id, maxStatusIDLen); err != nil {
			return err
		}
	}
	return nil
}

// validateStatus checks a create's fields and returns the status (without
// times) and its lifetime.
func validateStatus(caller *parley.Identity, in *CreateStatusInput) (*parley.Status, time.Duration, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, 0, err
	}
	if !slices.Contains(parley.StatusTypes, in.Type) {
		return nil, 0, parley.Errorf(parley.EINVALID, "type must be one of %s", strings.Join(parley.StatusTypes, ", "))
	}
	if len(in.Content) > parley.MaxContentBytes {
		return nil, 0, parley.Errorf(parley.ETOOLARGE, "content must be at most %d bytes", parley.MaxContentBytes)
	}
	if err := maxLen("content", in.Content, parley.MaxContentBytes); err != nil {
		return nil, 0, err
	}
	if err := validateMediaID(in.MediaID); err != nil {
		return nil, 0, err
	}
	switch {
	case in.Type == parley.StatusTypeText && in.Content == "":
		return nil, 0, parley.Errorf(parley.EINVALID, "content is required for a text status")
	case in.Type == parley.StatusTypeText && in.MediaID != "":
		return nil, 0, parley.Errorf(parley.EINVALID, "a text status carries no mediaId; use type image or video")
	case in.Type != parley.StatusTypeText && in.MediaID == "":
		return nil, 0, parley.Errorf(parley.EINVALID, "mediaId is required for an %s status", in.Type)
	}
	if err := maxLen("backgroundColor", in.BackgroundColor, maxBackgroundColor); err != nil {
		return nil, 0, err
	}
	if err := maxLen("fontStyle", in.FontStyle, maxFontStyle); err != nil {
		return nil, 0, err
	}
	if in.VisibleTo == "" {
		in.VisibleTo = parley.VisibleToAll
	}
	if !slices.Contains(parley.StatusAudiences, in.VisibleTo) {
		return nil, 0, parley.Errorf(parley.EINVALID, "visibleTo must be one of %s", strings.Join(parley.StatusAudiences, ", "))
	}
	if err := checkUserList("specificUsers", in.SpecificUsers); err != nil {
		return nil, 0, err
	}
	if err := checkUserList("excludedUsers", in.ExcludedUsers); err != nil {
		return nil, 0, err
	}
	switch {
	case in.VisibleTo == parley.VisibleToSpecific && len(in.SpecificUsers) == 0:
		return nil, 0, parley.Errorf(parley.EINVALID, "specificUsers must name at least one user when visibleTo is specific")
	case in.VisibleTo != parley.VisibleToSpecific && len(in.SpecificUsers) > 0:
		return nil, 0, parley.Errorf(parley.EINVALID, "specificUsers is only for visibleTo specific")
	case in.VisibleTo != parley.VisibleToExcept && len(in.ExcludedUsers) > 0:
		return nil, 0, parley.Errorf(parley.EINVALID, "excludedUsers is only for visibleTo except")
	}
	hours := parley.DefaultStatusHours
	if in.ExpiresAt != nil {
		hours = *in.ExpiresAt
	}
	if hours < 1 || hours > parley.MaxStatusHours {
		return nil, 0, parley.Errorf(parley.EINVALID, "expiresAt is the lifetime in hours, 1 to %d", parley.MaxStatusHours)
	}
	if len(in.EncryptedKeys) > parley.MaxStatusKeys {
		return nil, 0, parley.Errorf(parley.EINVALID, "encryptedKeys may hold at most %d keys", parley.MaxStatusKeys)
	}
	for id, key := range in.EncryptedKeys {
		if err := maxLen("encryptedKeys user ids", id, maxStatusIDLen); err != nil {
			return nil, 0, err
		}
		if key == "" {
			return nil, 0, parley.Errorf(parley.EINVALID, "encryptedKeys must not hold an empty key")
		}
		if err := maxLen("encryptedKeys entries", key, parley.MaxStatusKeyLen); err != nil {
			return nil, 0, err
		}
	}
	st := &parley.Status{ID: parley.NewID("status"), OwnerID: caller.UserID, Type: in.Type, Content: in.Content, MediaID: in.MediaID,
		BackgroundColor: in.BackgroundColor, FontStyle: in.FontStyle, VisibleTo: in.VisibleTo, OwnerKey: in.EncryptedKeys[caller.UserID]}
	return st, time.Duration(hours) * time.Hour, nil
}

// statusAudience returns who a new status goes to: the owner's contacts
// that no block separates from them, narrowed by visibleTo, each with the
// key wrapped for them. For specific, a listed contact without a key is an
// error naming them; for all and except, a contact without a key is not
// sent the status (the client wraps a key for each one it means).
func (s *Service) statusAudience(ctx context.Context, owner string, in *CreateStatusInput) ([]parley.StatusViewer, error) {
	contacts, err := s.store.Social.Contacts(ctx, owner)
	if err != nil {
		return nil, err
	}
	blocked, err := s.store.Social.BlockedEitherWay(ctx, owner)
	if err != nil {
		return nil, err
	}
	skip := map[string]bool{owner: true}
	for _, id := range blocked {
		skip[id] = true
	}
	var want map[string]bool // specific: the listed users
	switch in.VisibleTo {
	case parley.VisibleToSpecific:
		want = map[string]bool{}
		for _, id := range in.SpecificUsers {
			want[id] = true
		}
	case parley.VisibleToExcept:
		for _, id := range in.ExcludedUsers {
			skip[id] = true
		}
	}
	var out []parley.StatusViewer
	var missing []string
	for _, id := range contacts {
		if skip[id] || (want != nil && !want[id]) {
			continue
		}
		skip[id] = true // contacts are unique, but be sure
		key, ok := in.EncryptedKeys[id]
		if !ok {
			if want != nil {
				missing = append(missing, id)
			}
			continue
		}
		out = append(out, parley.StatusViewer{UserID: id, EncryptedKey: key})
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		named := missing[:min(len(missing), maxMissingKeysNamed)]
		more := ""
		if len(missing) > len(named) {
			more = fmt.Sprintf(" and %d more", len(missing)-len(named))
		}
		return nil, parley.Errorf(parley.EINVALID, "encryptedKeys has no key for %d of specificUsers: %s%s",
			len(missing), strings.Join(named, ", "), more)
	}
	return out, nil
}

// CreateStatus posts a status for the caller's contacts as visibleTo says
// (see statusAudience) and sends status_created to each of them, on their
// sockets and in their sync log. Errors: EFORBIDDEN (userId not the
// caller), EINVALID, ETOOLARGE, ECONFLICT (too many live statuses).
func (s *Service) CreateStatus(ctx context.Context, caller *parley.Identity, in CreateStatusInput) (*CreateStatusResult, error) {
	st, life, err := validateStatus(caller, &in)
	if err != nil {
		return nil, err
	}
	if st.MediaID != "" {
		if err := s.checkMediaOwner(ctx, caller, st.MediaID); err != nil {
			return nil, err
		}
	}
	viewers, err := s.statusAudience(ctx, caller.UserID, &in)
	if err != nil {
		return nil, err
	}
	now := s.now()
	st.CreatedAt, st.ExpiresAt = now, now.Add(life)
	ev := statusCreatedEvent{StatusID: st.ID, UserID: st.OwnerID, Type: st.Type, CreatedAt: parley.Time{Time: st.CreatedAt},
		ExpiresAt: parley.Time{Time: st.ExpiresAt}}
	ch, err := s.encodeChange(st.ID, 0, parley.EventStatusCreated, st.ID, ev, now)
	if err != nil {
		return nil, err
	}
	changes := make([]*parley.Change, len(viewers))
	to := make([]string, len(viewers))
	for i, v := range viewers {
		c := *ch
		c.ToUser = v.UserID
		changes[i], to[i] = &c, v.UserID
	}
	if err := s.store.Statuses.CreateStatus(ctx, st, viewers, changes...); err != nil {
		return nil, err
	}
	s.publishChange(ctx, ch, to)
	return &CreateStatusResult{StatusID: st.ID, Type: st.Type, CreatedAt: ev.CreatedAt, ExpiresAt: ev.ExpiresAt}, nil
}

// statusView builds what the caller sees of a status: a viewer's view with
// their key and first view, or (owner) the owner's, with their own key,
// every viewer's key from viewers, the audience and the view count.
func statusView(st *parley.Status, key string, viewedAt time.Time, viewers []parley.StatusViewer, owner bool) *StatusView {
	v := &StatusView{StatusID: st.ID, UserID: st.OwnerID, Type: st.Type, Content: st.Content, MediaID: st.MediaID,
		BackgroundColor: st.BackgroundColor, FontStyle: st.FontStyle, CreatedAt: parley.Time{Time: st.CreatedAt},
		ExpiresAt: parley.Time{Time: st.ExpiresAt}, EncryptedKey: key, ViewedAt: parley.Time{Time: viewedAt}}
	if owner {
		v.EncryptedKey = st.OwnerKey
		v.VisibleTo = st.VisibleTo
		v.EncryptedKeys = map[string]string{}
		if st.OwnerKey != "" {
			v.EncryptedKeys[st.OwnerID] = st.OwnerKey
		}
		n := 0
		for _, w := range viewers {
			v.EncryptedKeys[w.UserID] = w.EncryptedKey
			if !w.ViewedAt.IsZero() {
				n++
			}
		}
		v.ViewCount = &n
	}
	return v
}

// ownStatusViews returns the owner's views of their statuses, with every
// key and view count, read with one question for all of them.
func (s *Service) ownStatusViews(ctx context.Context, list []*parley.StatusFor) ([]*StatusView, error) {
	ids := make([]string, len(list))
	for i, x := range list {
		ids[i] = x.Status.ID
	}
	viewers, err := s.store.Statuses.StatusViewers(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]*StatusView, len(list))
	for i, x := range list {
		out[i] = statusView(x.Status, "", time.Time{}, viewers[x.Status.ID], true)
	}
	return out, nil
}

// checkStatusID checks the form of a status id.
func checkStatusID(id string) error {
	if err := required("statusId", id); err != nil {
		return err
	}
	return maxLen("statusId", id, maxStatusIDLen)
}

// UserStatuses returns the statuses of userID that the caller may see,
// newest first: every unexpired one (with every key) for the owner, none
// for anyone who may not see them (whether or not the user exists).
// Errors: EINVALID.
func (s *Service) UserStatuses(ctx context.Context, caller *parley.Identity, userID string) ([]*StatusView, error) {
	if err := maxLen("userId", userID, maxStatusIDLen); err != nil {
		return nil, err
	}
	list, err := s.store.Statuses.StatusesOf(ctx, userID, caller.UserID, s.now())
	if err != nil {
		return nil, err
	}
	if userID == caller.UserID {
		return s.ownStatusViews(ctx, list)
	}
	out := make([]*StatusView, len(list))
	for i, x := range list {
		out[i] = statusView(x.Status, x.Key, x.ViewedAt, nil, false)
	}
	return out, nil
}

// Status returns one status. A viewer's first read records their view
// (once, however often they read) and sends status_viewed to the owner;
// the owner's reads record nothing. Errors: EINVALID, ENOTFOUND (expired,
// unknown, or not for the caller).
func (s *Service) Status(ctx context.Context, caller *parley.Identity, id string) (*StatusView, error) {
	if err := checkStatusID(id); err != nil {
		return nil, err
	}
	now := s.now()
	seen, err := s.store.Statuses.VisibleStatus(ctx, id, caller.UserID, now)
	if parley.ErrorCode(err) == parley.ENOTFOUND {
		st, err := s.ownLiveStatus(ctx, caller, id, now)
		if err != nil {
			return nil, err
		}
		views, err := s.ownStatusViews(ctx, []*parley.StatusFor{{Status: st}})
		if err != nil {
			return nil, err
		}
		return views[0], nil
	} else if err != nil {
		return nil, err
	}
	if seen.ViewedAt.IsZero() {
		ev := statusViewedEvent{StatusID: id, ViewerID: caller.UserID, ViewedAt: parley.Time{Time: now}}
		ch, err := s.encodeChange(id, 0, parley.EventStatusViewed, id, ev, now)
		if err != nil {
			return nil, err
		}
		ch.ToUser = seen.Status.OwnerID
		first, err := s.store.Statuses.RecordStatusView(ctx, id, caller.UserID, now, ch)
		if err != nil {
			return nil, err
		}
		if first {
			s.publishChange(ctx, ch, []string{seen.Status.OwnerID})
			seen.ViewedAt = now
		} else if again, err := s.store.Statuses.VisibleStatus(ctx, id, caller.UserID, now); err == nil {
			seen.ViewedAt = again.ViewedAt // another request of the caller's recorded it first
		}
	}
	return statusView(seen.Status, seen.Key, seen.ViewedAt, nil, false), nil
}

// ownLiveStatus returns the caller's own unexpired status, or ENOTFOUND.
func (s *Service) ownLiveStatus(ctx context.Context, caller *parley.Identity, id string, now time.Time) (*parley.Status, error) {
	st, err := s.store.Statuses.StatusByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if st.OwnerID != caller.UserID || !now.Before(st.ExpiresAt) {
		return nil, parley.Errorf(parley.ENOTFOUND, "status not found")
	}
	return st, nil
}

// StatusFeed returns the statuses of other users that the caller may see,
// grouped by user, the user with the most recent status first; each
// user's statuses newest first, with hasUnviewed when the caller has not
// viewed one of them.
func (s *Service) StatusFeed(ctx context.Context, caller *parley.Identity) ([]*StatusFeedEntry, error) {
	list, err := s.store.Statuses.StatusFeed(ctx, caller.UserID, s.now())
	if err != nil {
		return nil, err
	}
	byUser := map[string]*StatusFeedEntry{}
	var owners []string
	for _, x := range list {
		e := byUser[x.Status.OwnerID]
		if e == nil {
			e = &StatusFeedEntry{UserID: x.Status.OwnerID}
			byUser[e.UserID] = e
			owners = append(owners, e.UserID)
		}
		e.Statuses = append(e.Statuses, statusView(x.Status, x.Key, x.ViewedAt, nil, false))
		e.HasUnviewed = e.HasUnviewed || x.ViewedAt.IsZero()
	}
	out := make([]*StatusFeedEntry, 0, len(owners))
	if len(owners) == 0 {
		return out, nil
	}
	users, err := s.store.Users.UsersByIDs(ctx, owners)
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		e := byUser[u.ID]
		e.Username, e.Name, e.Avatar = u.Username, u.Name, u.Avatar
	}
	for _, id := range owners {
		e := byUser[id]
		sort.Slice(e.Statuses, func(i, j int) bool { return newerStatus(e.Statuses[i], e.Statuses[j]) })
		e.LatestAt = e.Statuses[0].CreatedAt
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].LatestAt.Equal(out[j].LatestAt.Time) {
			return out[i].LatestAt.After(out[j].LatestAt.Time)
		}
		return out[i].UserID < out[j].UserID
	})
	return out, nil
}

func newerStatus(a, b *StatusView) bool {
	if !a.CreatedAt.Equal(b.CreatedAt.Time) {
		return a.CreatedAt.After(b.CreatedAt.Time)
	}
	return a.StatusID > b.StatusID
}

// StatusViewers lists who viewed one of the caller's statuses, in the
// order they viewed it. Errors: EINVALID, EFORBIDDEN (a viewer of the
// status who is not its owner), ENOTFOUND (anyone else, or expired).
func (s *Service) StatusViewers(ctx context.Context, caller *parley.Identity, id string) (*StatusViewersResult, error) {
	if err := checkStatusID(id); err != nil {
		return nil, err
	}
	now := s.now()
	st, err := s.ownLiveStatus(ctx, caller, id, now)
	if parley.ErrorCode(err) == parley.ENOTFOUND {
		if _, err := s.store.Statuses.VisibleStatus(ctx, id, caller.UserID, now); err == nil {
			return nil, parley.Errorf(parley.EFORBIDDEN, "only the owner of a status sees its viewers")
		}
		return nil, parley.Errorf(parley.ENOTFOUND, "status not found")
	} else if err != nil {
		return nil, err
	}
	all, err := s.store.Statuses.StatusViewers(ctx, []string{st.ID})
	if err != nil {
		return nil, err
	}
	res := &StatusViewersResult{StatusID: st.ID, Viewers: []StatusViewerView{}}
	var ids []string
	for _, v := range all[st.ID] {
		if !v.ViewedAt.IsZero() {
			ids = append(ids, v.UserID)
			res.Viewers = append(res.Viewers, StatusViewerView{UserID: v.UserID, ViewedAt: parley.Time{Time: v.ViewedAt}})
		}
	}
	res.ViewCount = len(res.Viewers)
	if len(ids) > 0 {
		users, err := s.store.Users.UsersByIDs(ctx, ids)
		if err != nil {
			return nil, err
		}
		names := map[string]string{}
		for _, u := range users {
			names[u.ID] = u.Username
		}
		for i := range res.Viewers {
			res.Viewers[i].Username = names[res.Viewers[i].UserID]
		}
	}
	return res, nil
}

// DeleteStatus deletes one of the caller's statuses with its views, and
// its file at once (unless a message uses it too). Errors: EINVALID,
// EFORBIDDEN (userId not the caller, or a viewer who is not the owner),
// ENOTFOUND.
func (s *Service) DeleteStatus(ctx context.Context, caller *parley.Identity, in DeleteStatusInput) (*DeleteStatusResult, error) {
	if err := checkSelf(caller, in.UserID, "userId"); err != nil {
		return nil, err
	}
	if err := checkStatusID(in.StatusID); err != nil {
		return nil, err
	}
	st, err := s.store.Statuses.DeleteStatus(ctx, in.StatusID, caller.UserID)
	if parley.ErrorCode(err) == parley.ENOTFOUND {
		if _, err := s.store.Statuses.VisibleStatus(ctx, in.StatusID, caller.UserID, s.now()); err == nil {
			return nil, parley.Errorf(parley.EFORBIDDEN, "only the owner of a status may delete it")
		}
		return nil, err
	} else if err != nil {
		return nil, err
	}
	if st.MediaID != "" {
		if err := s.removeUnusedFile(ctx, st.MediaID); err != nil {
			// The status is gone; the collector removes the file later.
			s.log.Warn("remove the file of a deleted status", "status", st.ID, "err", err)
		}
	}
	return &DeleteStatusResult{StatusID: st.ID}, nil
}

// removeUnusedFile deletes a file's metadata and then its bytes, if
// nothing uses it any more (the store checks, under the file's lock).
func (s *Service) removeUnusedFile(ctx context.Context, id string) error {
	gone, err := s.store.Media.DeleteMediaIfUnused(ctx, id, s.now())
	if err != nil || !gone || s.cfg.Blobs == nil {
		return err
	}
	for _, key := range []string{id, id + ".thumb"} {
		if err := s.cfg.Blobs.Delete(ctx, key); err != nil {
			s.log.Warn("remove the file of a status", "key", key, "err", err)
		}
	}
	return nil
}

// purgeStatuses deletes the statuses expired by now, with their views,
// sync-log entries and files.
func (s *Service) purgeStatuses(ctx context.Context) error {
	for {
		list, err := s.store.Statuses.DeleteExpiredStatuses(ctx, s.now(), purgeBatch)
		if err != nil || len(list) == 0 {
			return err
		}
		for _, st := range list {
			if st.MediaID == "" {
				continue
			}
			if err := s.removeUnusedFile(ctx, st.MediaID); err != nil {
				return err // its check_after is set: the collector finishes it
			}
		}
		if len(list) < purgeBatch {
			return nil
		}
	}
}

// addStatusJobs registers the purge of expired statuses.
func (s *Service) addStatusJobs(r *jobs.Runner) {
	r.Add(jobs.Job{Name: JobPurgeStatuses, Every: s.cfg.StatusPurgeEvery, Leased: true, Timeout: 5 * time.Minute, Run: s.purgeStatuses})
}

// checkStatusReply checks a direct message's replyToStatusId: a status of
// the recipient that the sender may see now. Errors: EINVALID.
func (s *Service) checkStatusReply(ctx context.Context, caller *parley.Identity, statusID, recipientID string) error {
	if statusID == "" {
		return nil
	}
	if err := maxLen("replyToStatusId", statusID, maxStatusIDLen); err != nil {
		return err
	}
	seen, err := s.store.Statuses.VisibleStatus(ctx, statusID, caller.UserID, s.now())
	if parley.ErrorCode(err) == parley.ENOTFOUND || (err == nil && seen.Status.OwnerID != recipientID) {
		return parley.Errorf(parley.EINVALID, "replyToStatusId must name a status of the recipient that you can see")
	}
	return err
}
