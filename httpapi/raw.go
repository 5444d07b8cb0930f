package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/parley-chat/parley"
)

// Raw routes are the escape hatch from JSON: a route with raw set instead
// of handle reads its request body and writes its answer itself, for
// streaming uploads and downloads with Range. Everything else is as for
// every route: the caller is authenticated (unless Public), the query is
// checked, the request is logged by Middleware, and an error returned
// before anything was written becomes the usual error envelope.
//
// What differs: decode's 1 MiB limit and the request timeout do not apply
// (a large transfer takes as long as it takes). The route bounds its own
// body (rawBody) and gets idle deadlines instead of one deadline for the
// whole transfer, so a peer that stops sending or reading is cut off after
// RawIdle while a slow but steady one is not.

// RawIdle is how long a raw route's peer may send or read nothing before
// the transfer is cut off.
const RawIdle = 30 * time.Second

// rawDoc describes a raw route's request body or success answer for the
// OpenAPI description, in place of the JSON schemas of In and Out.
type rawDoc struct {
	ContentType string         // e.g. "multipart/form-data", "application/octet-stream"
	Schema      map[string]any // JSON Schema of the body; nil: binary
	Description string
}

// rawBody returns the request body for a raw route to read: reads past
// limit bytes fail with a too_large error (so an upload is refused as soon
// as it is known to be too large), and each read may wait at most RawIdle
// for the peer. A declared Content-Length over limit is refused at once.
func (c *call) rawBody(limit int64) (io.Reader, error) {
	if c.r.ContentLength > limit {
		return nil, errTooLarge(limit)
	}
	return &idleBody{r: http.MaxBytesReader(c.w, c.r.Body, limit), rc: http.NewResponseController(c.w), limit: limit}, nil
}

// rawWriter returns the response writer for a raw route to write to, each
// write of which may wait at most RawIdle for the peer to read.
func (c *call) rawWriter() io.Writer {
	return &idleWriter{w: c.w, rc: http.NewResponseController(c.w)}
}

func errTooLarge(limit int64) error {
	return parley.Errorf(parley.ETOOLARGE, "request body is over %d bytes", limit)
}

type idleBody struct {
	r     io.Reader
	rc    *http.ResponseController
	limit int64
}

func (b *idleBody) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(RawIdle)) // unsupported by test recorders only
	n, err := b.r.Read(p)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = errTooLarge(b.limit)
	}
	return n, err
}

type idleWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (w *idleWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(RawIdle))
	return w.w.Write(p)
}

// serveRaw runs a raw route for an authenticated call.
func serveRaw(ctx context.Context, rt *route, c *call, rec *wroteRecorder) {
	if err := rt.raw(ctx, c); err != nil && !rec.wrote {
		writeError(rec.ResponseWriter, c.r, err)
	}
}

// wroteRecorder notes whether a raw route started its answer, after which
// an error can no longer become an envelope (the connection is dropped by
// the route's failed write instead).
type wroteRecorder struct {
	http.ResponseWriter
	wrote bool
}

func (w *wroteRecorder) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *wroteRecorder) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *wroteRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
