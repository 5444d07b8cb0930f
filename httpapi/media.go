package httpapi

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/service"
)

// multipartSlack is what an upload's body may hold besides the file and
// the thumbnail: the metadata, the small fields and the part headers.
const multipartSlack = 64 << 10

// presignTTL is how long a redirect to storage (--media-redirect) is valid.
const presignTTL = 5 * time.Minute

func (a *API) mediaRoutes(cfg Config) []route {
	s := a.svc
	return []route{
		{Method: "POST", Path: "/api/media/upload", Status: http.StatusCreated, Out: service.UploadResult{},
			Summary: "Upload an encrypted file, streamed to storage: multipart with encryptedMetadata (before file, so its limit " +
				"applies at once), file and an optional thumbnail. image|video|audio up to 16 MiB, document up to 100 MiB, " +
				"thumbnail up to 256 KiB; 413 as soon as a size is known to be over.",
			RawIn: &rawDoc{ContentType: "multipart/form-data", Description: "the encrypted file and its metadata",
				Schema: map[string]any{"type": "object", "required": []string{"file", "encryptedMetadata"},
					"properties": map[string]any{
						"encryptedMetadata": map[string]any{"type": "string", "description": "JSON: {fileType: image|video|audio|document, " +
							"originalName, size (bytes of file), mimeType, iv, thumbnailIv, encryptedKey}; the server checks fileType, size " +
							"and mimeType and keeps the rest for the client"},
						"file":         map[string]any{"type": "string", "format": "binary", "description": "the encrypted bytes"},
						"thumbnail":    map[string]any{"type": "string", "format": "binary", "description": "the encrypted thumbnail (optional)"},
						"hasThumbnail": map[string]any{"type": "string", "enum": []string{"true", "false"}},
					}}},
			raw: a.upload},
		{Method: "GET", Path: "/api/media/{fileId}", Out: service.MediaInfo{},
			Summary: "A file's metadata, to its uploader and to anyone who can see a message using it (404 to others).",
			handle: func(ctx context.Context, c *call) (any, error) {
				return s.Media(ctx, c.caller, c.r.PathValue("fileId"))
			}},
		{Method: "GET", Path: "/api/media/{fileId}/content", Query: []param{{"thumbnail", "true for the thumbnail's bytes"}},
			Summary: "A file's encrypted bytes, with Range (206, 416), ETag (the sha256) and If-None-Match; " +
				"with --media-redirect a 302 to a short-lived storage URL instead.",
			RawOut: &rawDoc{ContentType: "application/octet-stream", Description: "the encrypted bytes (or the requested ranges)"},
			raw: func(ctx context.Context, c *call) error {
				return a.download(ctx, c, cfg.MediaRedirect)
			}},
	}
}

// upload streams a multipart upload into a service.Upload part by part;
// nothing of it is kept unless it completes.
func (a *API) upload(ctx context.Context, c *call) error {
	mt, params, err := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return parley.Errorf(parley.EUNSUPPORTED, "the body must be multipart/form-data")
	}
	body, err := c.rawBody(parley.MaxDocumentBytes + parley.MaxThumbnailBytes + multipartSlack)
	if err != nil {
		return err
	}
	bctx, cancel := c.bounded(ctx)
	up, err := a.svc.BeginUpload(bctx, c.caller)
	cancel()
	if err != nil {
		return err
	}
	defer up.Abort()
	mr := multipart.NewReader(body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return partError(err)
		}
		switch part.FormName() {
		case "encryptedMetadata":
			raw, err := readField(part, 16<<10)
			if err != nil {
				return err
			}
			meta, err := service.ParseMediaMetadata(raw)
			if err != nil {
				return err
			}
			if c.r.ContentLength > parley.MediaLimits[meta.FileType]+parley.MaxThumbnailBytes+multipartSlack {
				return parley.Errorf(parley.ETOOLARGE, "a %s may be at most %d bytes", meta.FileType, parley.MediaLimits[meta.FileType])
			}
			bctx, cancel := c.bounded(ctx)
			err = up.SetMetadata(bctx, meta)
			cancel()
			if err != nil {
				return err
			}
		case "file":
			if err := up.PutFile(ctx, part); err != nil {
				return err
			}
		case "thumbnail":
			if err := up.PutThumbnail(ctx, part); err != nil {
				return err
			}
		case "hasThumbnail":
			if v, err := readField(part, 8); err != nil {
				return err
			} else if v != "true" && v != "false" {
				return parley.Errorf(parley.EINVALID, "hasThumbnail must be true or false")
			}
		default:
			return parley.Errorf(parley.EINVALID, "unknown field %.64q", part.FormName())
		}
	}
	bctx, cancel = c.bounded(ctx)
	defer cancel()
	res, err := up.Finish(bctx)
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusCreated, res, "File uploaded successfully")
	return nil
}

// readField reads a small form field of at most limit bytes.
func readField(part *multipart.Part, limit int64) (string, error) {
	b, err := io.ReadAll(io.LimitReader(part, limit+1))
	if err != nil {
		return "", partError(err)
	}
	if int64(len(b)) > limit {
		return "", parley.Errorf(parley.EINVALID, "field %s must be at most %d bytes", part.FormName(), limit)
	}
	return string(b), nil
}

// partError keeps the body's own errors (too large) and calls anything
// else malformed.
func partError(err error) error {
	var pe *parley.Error
	if errors.As(err, &pe) {
		return err
	}
	return parley.Errorf(parley.EINVALID, "malformed multipart body")
}

// download serves a file's bytes with Range and ETag, or redirects to
// storage when asked to and able.
func (a *API) download(ctx context.Context, c *call, redirect bool) error {
	thumb := false
	switch c.r.URL.Query().Get("thumbnail") {
	case "", "false":
	case "true":
		thumb = true
	default:
		return parley.Errorf(parley.EINVALID, "thumbnail must be true or false")
	}
	bctx, cancel := c.bounded(ctx)
	content, err := a.svc.MediaContentOf(bctx, c.caller, c.r.PathValue("fileId"), thumb)
	if err == nil && redirect {
		var url string
		if url, err = content.URL(bctx, presignTTL); err == nil && url != "" {
			cancel()
			c.w.Header().Set("Cache-Control", "private, no-store")
			http.Redirect(c.w, c.r, url, http.StatusFound)
			return nil
		}
	}
	cancel()
	if err != nil {
		return err
	}
	h := c.w.Header()
	h.Set("Content-Type", "application/octet-stream") // ciphertext, whatever it was
	h.Set("ETag", `"`+content.SHA256+`"`)
	h.Set("Cache-Control", "private")
	h.Set("X-Content-Type-Options", "nosniff")
	rs := &blobSeeker{ctx: ctx, c: content}
	defer rs.Close()
	if c.r.Header.Get("Range") == "" && c.r.Header.Get("If-None-Match") == "" {
		// Open before the status is written, so a missing object is a 500
		// envelope rather than a cut-off 200.
		if err := rs.open(); err != nil {
			return err
		}
	}
	http.ServeContent(&idleResponse{ResponseWriter: c.w, rc: http.NewResponseController(c.w)}, c.r, "", time.Time{}, rs)
	return nil
}

// blobSeeker is the io.ReadSeeker that http.ServeContent wants, over a
// blob opened at the offset of the first read after each seek.
type blobSeeker struct {
	ctx context.Context
	c   *service.MediaContent
	pos int64
	r   io.ReadCloser
}

func (b *blobSeeker) open() error {
	r, err := b.c.Open(b.ctx, b.pos, -1)
	b.r = r
	return err
}

func (b *blobSeeker) Read(p []byte) (int, error) {
	if b.pos >= b.c.Size {
		return 0, io.EOF
	}
	if b.r == nil {
		if err := b.open(); err != nil {
			return 0, err
		}
	}
	n, err := b.r.Read(p)
	b.pos += int64(n)
	return n, err
}

func (b *blobSeeker) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += b.pos
	case io.SeekEnd:
		off += b.c.Size
	}
	if off < 0 {
		return 0, errors.New("seek before the start")
	}
	if off != b.pos && b.r != nil {
		b.r.Close()
		b.r = nil
	}
	b.pos = off
	return off, nil
}

func (b *blobSeeker) Close() {
	if b.r != nil {
		b.r.Close()
	}
}

// idleResponse gives each write of a download RawIdle to reach the peer.
type idleResponse struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (w *idleResponse) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(RawIdle))
	return w.ResponseWriter.Write(p)
}
