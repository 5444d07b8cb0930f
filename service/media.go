package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"io"
	"mime"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/jobs"
)

// Media limits besides the file sizes of the domain.
const (
	maxMetadataBytes = 16 << 10 // the encryptedMetadata JSON string
	maxOriginalName  = 255
	maxMimeType      = 127
	maxOpaqueField   = 4 << 10 // iv, thumbnailIv, encryptedKey
	collectBatch     = 100
)

// JobCollectMedia is the leased background job that removes the files
// nothing uses (parley.MediaStore.CollectableMedia).
const JobCollectMedia = "collect-media"

// MediaMetadata is the encryptedMetadata of an upload (API.md §8): what
// the client needs to decrypt the file, opaque to the server, and what
// the server checks (type, MIME type, size).
type MediaMetadata struct {
	FileType     string `json:"fileType"`
	OriginalName string `json:"originalName"`
	Size         int64  `json:"size"`
	MimeType     string `json:"mimeType"`
	IV           string `json:"iv"`
	ThumbnailIV  string `json:"thumbnailIv"`
	EncryptedKey string `json:"encryptedKey"`
}

// UploadResult answers an upload.
type UploadResult struct {
	FileID     string      `json:"fileId"`
	FileType   string      `json:"fileType"`
	MimeType   string      `json:"mimeType"`
	Size       int64       `json:"size"`
	SHA256     string      `json:"sha256"`
	UploadedAt parley.Time `json:"uploadedAt"`
}

// MediaInfo is a file's metadata as GET /api/media/{fileId} shows it:
// never a server path, the URLs of its content instead.
type MediaInfo struct {
	FileID          string      `json:"fileId"`
	FileType        string      `json:"fileType"`
	MimeType        string      `json:"mimeType"`
	Size            int64       `json:"size"`
	SHA256          string      `json:"sha256"`
	OriginalName    string      `json:"originalName"`
	FileIV          string      `json:"fileIv"`
	ThumbIV         string      `json:"thumbIv"`
	EncryptedAESKey string      `json:"encryptedAESKey"`
	UserID          string      `json:"userId"`
	UploadedAt      parley.Time `json:"uploadedAt"`
	// ExpiresAt is when the file is removed unless a message uses it;
	// null once one does.
	ExpiresAt    *parley.Time `json:"expiresAt"`
	URL          string       `json:"url"`
	HasThumbnail bool         `json:"hasThumbnail"`
	ThumbnailURL *string      `json:"thumbnailUrl"`
	ThumbnailSHA string       `json:"thumbnailSha256,omitempty"`
}

// ParseMediaMetadata decodes and checks an upload's encryptedMetadata.
// Errors: EINVALID, ETOOLARGE (a declared size over the type's limit).
func ParseMediaMetadata(raw string) (*MediaMetadata, error) {
	if len(raw) > maxMetadataBytes {
		return nil, parley.Errorf(parley.EINVALID, "encryptedMetadata must be at most %d bytes", maxMetadataBytes)
	}
	var m MediaMetadata
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	if err := dec.Decode(&m); err != nil {
		return nil, parley.Errorf(parley.EINVALID, "encryptedMetadata must be a JSON object with fileType, size and mimeType")
	}
	limit, ok := parley.MediaLimits[m.FileType]
	if !ok {
		return nil, parley.Errorf(parley.EINVALID, "fileType must be one of image, video, audio, document")
	}
	if m.Size <= 0 {
		return nil, parley.Errorf(parley.EINVALID, "size must be the file's size in bytes")
	}
	if m.Size > limit {
		return nil, parley.Errorf(parley.ETOOLARGE, "a %s may be at most %d bytes", m.FileType, limit)
	}
	if err := required("mimeType", m.MimeType); err != nil {
		return nil, err
	}
	if err := maxLen("mimeType", m.MimeType, maxMimeType); err != nil {
		return nil, err
	}
	if mt, params, err := mime.ParseMediaType(m.MimeType); err != nil || len(params) > 0 || mt != m.MimeType {
		return nil, parley.Errorf(parley.EINVALID, "mimeType must be a type/subtype such as image/jpeg")
	}
	if err := maxLen("originalName", m.OriginalName, maxOriginalName); err != nil {
		return nil, err
	}
	for field, v := range map[string]string{"iv": m.IV, "thumbnailIv": m.ThumbnailIV, "encryptedKey": m.EncryptedKey} {
		if err := maxLen(field, v, maxOpaqueField); err != nil {
			return nil, err
		}
	}
	return &m, nil
}

// Upload is one file being uploaded: the transport streams the parts of
// the request into it as they arrive, then calls Finish, or Abort when
// anything failed (which removes what was stored).
type Upload struct {
	s        *Service
	caller   *parley.Identity
	id       string
	meta     *MediaMetadata
	size     int64
	sum      string
	thumb    int64
	thumbSum string
	stored   []string // blob keys written so far
	done     bool
}

// BeginUpload starts an upload for caller. Errors: EUNAVAILABLE (no media
// storage), ERATELIMITED with code quota_exceeded.
func (s *Service) BeginUpload(ctx context.Context, caller *parley.Identity) (*Upload, error) {
	if s.cfg.Blobs == nil {
		return nil, parley.Errorf(parley.EUNAVAILABLE, "media storage is not configured")
	}
	if err := s.checkQuota(ctx, caller, 0); err != nil {
		return nil, err
	}
	return &Upload{s: s, caller: caller, id: parley.NewID("media")}, nil
}

// checkQuota refuses an upload of more bytes once the caller's unused
// uploads would pass the quota.
func (s *Service) checkQuota(ctx context.Context, caller *parley.Identity, more int64) error {
	used, err := s.store.Media.UnusedMediaBytes(ctx, caller.UserID)
	if err != nil {
		return err
	}
	if used+more > s.cfg.MediaQuota || (more == 0 && used >= s.cfg.MediaQuota) {
		return parley.Errorf(parley.EQUOTA, "upload quota exceeded: %d bytes of files no message uses yet (at most %d); send or wait for them to expire",
			used, s.cfg.MediaQuota)
	}
	return nil
}

// SetMetadata gives the upload its checked encryptedMetadata; with it
// known before the file, the file's own limit applies while streaming.
func (u *Upload) SetMetadata(ctx context.Context, m *MediaMetadata) error {
	if u.meta != nil {
		return parley.Errorf(parley.EINVALID, "encryptedMetadata must be given once")
	}
	u.meta = m
	if u.size == 0 {
		return u.s.checkQuota(ctx, u.caller, m.Size)
	}
	return nil
}

// Limit is how many bytes the file may have: its type's limit once the
// metadata is known, the largest limit before.
func (u *Upload) Limit() int64 {
	if u.meta != nil {
		return parley.MediaLimits[u.meta.FileType]
	}
	return parley.MaxDocumentBytes
}

// PutFile streams the file's bytes to storage, counting and hashing them.
// Errors: ETOOLARGE past Limit, EINVALID for a second file.
func (u *Upload) PutFile(ctx context.Context, r io.Reader) error {
	if u.sum != "" {
		return parley.Errorf(parley.EINVALID, "only one file per upload")
	}
	n, sum, err := u.put(ctx, u.id, r, u.Limit(), "file")
	u.size, u.sum = n, sum
	return err
}

// PutThumbnail streams the thumbnail (at most 256 KiB).
func (u *Upload) PutThumbnail(ctx context.Context, r io.Reader) error {
	if u.thumbSum != "" {
		return parley.Errorf(parley.EINVALID, "only one thumbnail per upload")
	}
	n, sum, err := u.put(ctx, u.id+".thumb", r, parley.MaxThumbnailBytes, "thumbnail")
	u.thumb, u.thumbSum = n, sum
	return err
}

func (u *Upload) put(ctx context.Context, key string, r io.Reader, limit int64, what string) (int64, string, error) {
	u.stored = append(u.stored, key)
	cr := &countingReader{r: r, limit: limit, h: sha256.New(), what: what}
	err := u.s.cfg.Blobs.Put(ctx, key, cr, -1)
	if cr.err != nil {
		err = cr.err // the client's fault (too large, gone) rather than the store's
	}
	if err != nil {
		return 0, "", err
	}
	if cr.n == 0 {
		return 0, "", parley.Errorf(parley.EINVALID, "%s is empty", what)
	}
	return cr.n, hex.EncodeToString(cr.h.Sum(nil)), nil
}

// countingReader counts and hashes what passes and fails past limit.
type countingReader struct {
	r     io.Reader
	n     int64
	limit int64
	h     hash.Hash
	what  string
	err   error // the error of the reader (not of the store)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.limit {
		c.err = parley.Errorf(parley.ETOOLARGE, "%s is over %d bytes", c.what, c.limit)
		return 0, c.err
	}
	c.h.Write(p[:n])
	if err != nil && !errors.Is(err, io.EOF) {
		c.err = err
		var pe *parley.Error
		if !errors.As(err, &pe) {
			c.err = parley.Errorf(parley.EINVALID, "the upload was cut off")
		}
	}
	return n, err
}

// Finish checks the upload is whole (metadata, file, declared size) and
// records it. Errors: EINVALID, EQUOTA; on any error call Abort.
func (u *Upload) Finish(ctx context.Context) (*UploadResult, error) {
	switch {
	case u.meta == nil:
		return nil, parley.Errorf(parley.EINVALID, "encryptedMetadata is required")
	case u.sum == "":
		return nil, parley.Errorf(parley.EINVALID, "file is required")
	case u.size != u.meta.Size:
		return nil, parley.Errorf(parley.EINVALID, "size is %d but %d bytes arrived", u.meta.Size, u.size)
	}
	if err := u.s.checkQuota(ctx, u.caller, u.size+u.thumb); err != nil {
		return nil, err
	}
	m := &parley.Media{ID: u.id, OwnerID: u.caller.UserID, FileType: u.meta.FileType, MimeType: u.meta.MimeType,
		OriginalName: u.meta.OriginalName, Size: u.size, SHA256: u.sum, FileIV: u.meta.IV, ThumbIV: u.meta.ThumbnailIV,
		EncryptedKey: u.meta.EncryptedKey, ThumbSize: u.thumb, ThumbSHA256: u.thumbSum, UploadedAt: u.s.now()}
	if err := u.s.store.Media.CreateMedia(ctx, m); err != nil {
		return nil, err
	}
	u.done = true
	return &UploadResult{FileID: m.ID, FileType: m.FileType, MimeType: m.MimeType, Size: m.Size, SHA256: m.SHA256,
		UploadedAt: parley.Time{Time: m.UploadedAt}}, nil
}

// Abort removes what an unfinished upload stored. It is a no-op after a
// successful Finish.
func (u *Upload) Abort() {
	if u.done {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), u.s.cfg.StoreTimeout)
	defer cancel()
	for _, key := range u.stored {
		if err := u.s.cfg.Blobs.Delete(ctx, key); err != nil {
			u.s.log.Warn("remove aborted upload", "key", key, "err", err)
		}
	}
}

// readableMedia returns a file the caller may read, or ENOTFOUND.
func (s *Service) readableMedia(ctx context.Context, caller *parley.Identity, id string) (*parley.Media, error) {
	if err := maxLen("fileId", id, 128); err != nil {
		return nil, err
	}
	m, err := s.store.Media.MediaByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.OwnerID != caller.UserID {
		ok, err := s.store.Media.CanReadMedia(ctx, id, caller.UserID)
		if err == nil && !ok {
			ok, err = s.store.Statuses.CanReadStatusMedia(ctx, id, caller.UserID, s.now())
		}
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, parley.Errorf(parley.ENOTFOUND, "file not found")
		}
	}
	return m, nil
}

// Media returns a file's metadata to its uploader and to anyone who can
// see a message or a status using it. Errors: ENOTFOUND.
func (s *Service) Media(ctx context.Context, caller *parley.Identity, id string) (*MediaInfo, error) {
	m, err := s.readableMedia(ctx, caller, id)
	if err != nil {
		return nil, err
	}
	v := &MediaInfo{FileID: m.ID, FileType: m.FileType, MimeType: m.MimeType, Size: m.Size, SHA256: m.SHA256,
		OriginalName: m.OriginalName, FileIV: m.FileIV, ThumbIV: m.ThumbIV, EncryptedAESKey: m.EncryptedKey, UserID: m.OwnerID,
		UploadedAt: parley.Time{Time: m.UploadedAt}, URL: "/api/media/" + m.ID + "/content", HasThumbnail: m.ThumbSize > 0,
		ThumbnailSHA: m.ThumbSHA256}
	if m.UsedAt.IsZero() {
		v.ExpiresAt = &parley.Time{Time: m.UploadedAt.Add(parley.MediaGrace)}
	}
	if m.ThumbSize > 0 {
		u := v.URL + "?thumbnail=true"
		v.ThumbnailURL = &u
	}
	return v, nil
}

// MediaContent is what a download needs: the size and checksum of the
// bytes, and how to read a range of them.
type MediaContent struct {
	Size   int64
	SHA256 string
	key    string
	blobs  parley.BlobStore
}

// Open returns n bytes of the content from off (n < 0: to the end).
func (c *MediaContent) Open(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	r, _, err := c.blobs.Open(ctx, c.key, off, n)
	return r, err
}

// URL returns a short-lived URL to download the content from storage
// directly, or "" when the storage cannot hand one out.
func (c *MediaContent) URL(ctx context.Context, ttl time.Duration) (string, error) {
	if u, ok := c.blobs.(parley.BlobURLer); ok {
		return u.URL(ctx, c.key, ttl)
	}
	return "", nil
}

// MediaContentOf returns the content of a file (or of its thumbnail) the
// caller may read. Errors: ENOTFOUND.
func (s *Service) MediaContentOf(ctx context.Context, caller *parley.Identity, id string, thumbnail bool) (*MediaContent, error) {
	if s.cfg.Blobs == nil {
		return nil, parley.Errorf(parley.ENOTFOUND, "file not found")
	}
	m, err := s.readableMedia(ctx, caller, id)
	if err != nil {
		return nil, err
	}
	c := &MediaContent{Size: m.Size, SHA256: m.SHA256, key: m.ID, blobs: s.cfg.Blobs}
	if thumbnail {
		if m.ThumbSize == 0 {
			return nil, parley.Errorf(parley.ENOTFOUND, "this file has no thumbnail")
		}
		c.Size, c.SHA256, c.key = m.ThumbSize, m.ThumbSHA256, m.ID+".thumb"
	}
	return c, nil
}

// checkMediaOwner is the early check of a send's (or scheduled message's)
// mediaId: it must name a file the sender uploaded. The commit checks it
// again in its transaction.
func (s *Service) checkMediaOwner(ctx context.Context, caller *parley.Identity, id string) error {
	if id == "" {
		return nil
	}
	m, err := s.store.Media.MediaByID(ctx, id)
	if parley.ErrorCode(err) == parley.ENOTFOUND || (err == nil && m.OwnerID != caller.UserID) {
		return parley.Errorf(parley.EINVALID, "mediaId does not name a file you uploaded")
	}
	return err
}

// collectMedia removes the files nothing uses any more, their metadata
// first: a blob without metadata is unreachable, never the reverse.
func (s *Service) collectMedia(ctx context.Context) error {
	for {
		now := s.now()
		list, err := s.store.Media.CollectableMedia(ctx, now, collectBatch)
		if err != nil || len(list) == 0 {
			return err
		}
		for _, m := range list {
			gone, err := s.store.Media.DeleteMediaIfUnused(ctx, m.ID, now)
			if err != nil {
				return err
			}
			if !gone {
				continue
			}
			for _, key := range []string{m.ID, m.ID + ".thumb"} {
				if err := s.cfg.Blobs.Delete(ctx, key); err != nil {
					s.log.Warn("remove collected file", "key", key, "err", err)
				}
			}
		}
		if len(list) < collectBatch {
			return nil
		}
	}
}

// addMediaJobs registers the collection of unused files.
func (s *Service) addMediaJobs(r *jobs.Runner) {
	if s.cfg.Blobs == nil {
		return
	}
	r.Add(jobs.Job{Name: JobCollectMedia, Every: s.cfg.MediaCollectEvery, Leased: true, Timeout: 5 * time.Minute, Run: s.collectMedia})
}
