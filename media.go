package parley

import (
	"context"
	"io"
	"strings"
	"time"
)

// Media file types and their size limits (API.md §8, seed 002).
const (
	MaxMediaBytes     = 16 << 20  // image, video, audio
	MaxDocumentBytes  = 100 << 20 // document
	MaxThumbnailBytes = 256 << 10
	// MediaGrace is how long an uploaded file may stay unused by any
	// message before it is collected.
	MediaGrace = 24 * time.Hour
)

// MediaLimits gives the size limit of each file type.
var MediaLimits = map[string]int64{
	"image":    MaxMediaBytes,
	"video":    MaxMediaBytes,
	"audio":    MaxMediaBytes,
	"document": MaxDocumentBytes,
}

// Media is an uploaded file. Its bytes are ciphertext the server cannot
// read, kept in a BlobStore under ID (and the thumbnail under ID+".thumb");
// the keys and ivs that decrypt it are opaque strings of the client.
type Media struct {
	ID           string
	OwnerID      string
	FileType     string
	MimeType     string
	OriginalName string
	Size         int64
	SHA256       string // hex, of the stored (encrypted) bytes
	FileIV       string
	ThumbIV      string
	EncryptedKey string
	ThumbSize    int64 // 0: no thumbnail
	ThumbSHA256  string
	UploadedAt   time.Time
	UsedAt       time.Time // when a message first used it; zero: not yet
}

// MediaStore persists the metadata of uploaded files.
type MediaStore interface {
	// CreateMedia stores a new file's metadata.
	CreateMedia(ctx context.Context, m *Media) error
	// MediaByID returns a file's metadata, or ENOTFOUND.
	MediaByID(ctx context.Context, id string) (*Media, error)
	// CanReadMedia reports whether userID may read the file: they uploaded
	// it, or they can see a message that uses it.
	CanReadMedia(ctx context.Context, id, userID string) (bool, error)
	// UnusedMediaBytes sums the sizes of the files ownerID uploaded that no
	// message uses yet (the quota of unused uploads).
	UnusedMediaBytes(ctx context.Context, ownerID string) (int64, error)
	// CollectableMedia lists up to limit files that may be unused by now:
	// uploaded MediaGrace before now and not used since, or used by a
	// message since deleted.
	CollectableMedia(ctx context.Context, now time.Time, limit int) ([]*Media, error)
	// DeleteMediaIfUnused deletes a file's metadata if, checked again under
	// the file's lock, no message or pending scheduled message uses it; it
	// reports whether it did. A send that uses the file either committed
	// before (and the file stays) or fails after (its mediaId names no
	// file).
	DeleteMediaIfUnused(ctx context.Context, id string, now time.Time) (bool, error)
}

// IsMediaID reports whether s names an uploaded file (rather than, for a
// profile's avatar, a URL).
func IsMediaID(s string) bool { return strings.HasPrefix(s, "media_") }

// ValidBlobKey reports whether key may name an object of a BlobStore: 1 to
// 128 of [A-Za-z0-9._-], not starting with a dot.
func ValidBlobKey(key string) bool {
	if key == "" || len(key) > 128 || key[0] == '.' {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// BlobStore keeps immutable opaque objects (the bytes of uploaded files):
// a directory, or an S3-compatible bucket.
type BlobStore interface {
	// Put stores r's bytes under key (size is -1 when unknown; a known
	// size is checked, and a reader giving fewer or more bytes fails the
	// Put). A failed or cancelled Put leaves no object under key, or the
	// one that was there; a Put on an existing key replaces it whole.
	// EINVALID for a key ValidBlobKey refuses.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Open returns a reader of n bytes from offset off (n < 0: to the end)
	// of the object, and the object's total size; ENOTFOUND when missing,
	// EINVALID for an invalid key or an offset outside the object.
	Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, int64, error)
	// Delete removes the object; a missing key is not an error, an
	// invalid one is EINVALID.
	Delete(ctx context.Context, key string) error
}

// BlobURLer is a BlobStore that can hand out a short-lived URL from which
// a client downloads an object directly (S3 presigned URLs).
type BlobURLer interface {
	URL(ctx context.Context, key string, ttl time.Duration) (string, error)
}
