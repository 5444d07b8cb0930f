package parley

import (
	"context"
	"time"
)

// Status limits (API.md §7).
const (
	// MaxStatusAudienceList bounds specificUsers and excludedUsers.
	MaxStatusAudienceList = 1024
	// MaxStatusKeys bounds the entries of encryptedKeys (the owner's
	// contacts it may name, plus the owner).
	MaxStatusKeys = 4096
	// MaxStatusKeyLen bounds one wrapped key.
	MaxStatusKeyLen = 4096
	// MaxLiveStatuses bounds the unexpired statuses one user has at once.
	MaxLiveStatuses = 100
	// MaxStatusHours and DefaultStatusHours bound a status's lifetime.
	MaxStatusHours     = 24
	DefaultStatusHours = 24
)

// Status types and audiences.
const (
	StatusTypeText  = "text"
	StatusTypeImage = "image"
	StatusTypeVideo = "video"

	VisibleToAll      = "all"      // the owner's contacts
	VisibleToSpecific = "specific" // the contacts among specificUsers
	VisibleToExcept   = "except"   // the contacts not among excludedUsers
)

// StatusTypes and StatusAudiences are the closed sets of a status's type
// and visibleTo.
var (
	StatusTypes     = []string{StatusTypeText, StatusTypeImage, StatusTypeVideo}
	StatusAudiences = []string{VisibleToAll, VisibleToSpecific, VisibleToExcept}
)

// Status is a 24-hour story. Content is opaque ciphertext; each viewer
// decrypts it with their own wrapped key (StatusViewer.EncryptedKey).
type Status struct {
	ID              string
	OwnerID         string
	Type            string
	Content         string
	MediaID         string
	BackgroundColor string
	FontStyle       string
	VisibleTo       string
	OwnerKey        string // the key the owner wrapped for themselves; "" when none
	CreatedAt       time.Time
	ExpiresAt       time.Time // never shown from this instant on
}

// StatusViewer is one user a status was sent to, with the key wrapped for
// them and when they first viewed it (zero: not yet).
type StatusViewer struct {
	UserID       string
	EncryptedKey string
	ViewedAt     time.Time
}

// StatusFor is a status as one viewer sees it: the status, their own key
// and when they first viewed it.
type StatusFor struct {
	Status   *Status
	Key      string
	ViewedAt time.Time
}

// StatusStore persists statuses, who they were sent to and who viewed them.
//
// A viewer may see a status while it is unexpired, they were sent it (a
// StatusViewer row), they are still among the owner's contacts and neither
// blocked the other: every read below applies that rule in its query.
type StatusStore interface {
	// CreateStatus stores st with its viewers and marks its media used;
	// changes (status_created for each viewer) are appended in the same
	// transaction. EINVALID when st.MediaID names no image or video the
	// owner uploaded; ECONFLICT when the owner already has MaxLiveStatuses
	// unexpired statuses.
	CreateStatus(ctx context.Context, st *Status, viewers []StatusViewer, changes ...*Change) error
	// StatusByID returns a status whatever its expiry, or ENOTFOUND.
	StatusByID(ctx context.Context, id string) (*Status, error)
	// VisibleStatus returns the status as viewerID may see it at now, or
	// ENOTFOUND when they may not.
	VisibleStatus(ctx context.Context, id, viewerID string, now time.Time) (*StatusFor, error)
	// StatusesOf returns ownerID's unexpired statuses that viewerID may see
	// at now, newest first (every one, with no key, when viewerID is the
	// owner).
	StatusesOf(ctx context.Context, ownerID, viewerID string, now time.Time) ([]*StatusFor, error)
	// StatusFeed returns every unexpired status of other users that
	// viewerID may see at now, in any order.
	StatusFeed(ctx context.Context, viewerID string, now time.Time) ([]*StatusFor, error)
	// StatusViewers lists the viewers of each of the statuses ids (all of
	// them, viewed or not), by status id, each list in the order they
	// viewed it, unviewed last.
	StatusViewers(ctx context.Context, ids []string) (map[string][]StatusViewer, error)
	// CanReadStatusMedia reports whether userID may see, at now, a status
	// that uses the file mediaID (and so may read the file).
	CanReadStatusMedia(ctx context.Context, mediaID, userID string, now time.Time) (bool, error)
	// RecordStatusView records viewerID's first view at now and appends ch
	// in the same transaction; it reports whether this was the first view
	// (a repeated view changes nothing and appends nothing).
	RecordStatusView(ctx context.Context, id, viewerID string, now time.Time, ch *Change) (bool, error)
	// DeleteStatus deletes a status of ownerID with its viewers and its
	// sync-log entries, and marks its media for collection at once; it
	// returns the deleted status, or ENOTFOUND.
	DeleteStatus(ctx context.Context, id, ownerID string) (*Status, error)
	// DeleteExpiredStatuses deletes up to limit statuses expired at now, as
	// DeleteStatus does, and returns them.
	DeleteExpiredStatuses(ctx context.Context, now time.Time, limit int) ([]*Status, error)
}
