package server_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apitest"
	"github.com/parley-chat/parley/internal/s3test"
	"github.com/parley-chat/parley/internal/testdb"
	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/jobs"
	"github.com/parley-chat/parley/server"
)

type uploadRes struct {
	FileID, FileType, MimeType, SHA256, UploadedAt string
	Size                                           int64
}

type mediaInfo struct {
	FileID, FileType, MimeType, OriginalName, FileIv, ThumbIv, EncryptedAESKey, UserID, UploadedAt, URL, SHA256 string
	Size                                                                                                        int64
	ExpiresAt, ThumbnailURL                                                                                     *string
	HasThumbnail                                                                                                bool
}

// part is one field of a multipart upload, in order.
type part struct {
	name string
	body io.Reader
}

func metadata(fileType string, size int64) part {
	b, _ := json.Marshal(map[string]any{"fileType": fileType, "originalName": "photo.jpg", "size": size, "mimeType": "image/jpeg",
		"iv": "aXY=", "thumbnailIv": "dGl2", "encryptedKey": "a2V5"})
	return part{"encryptedMetadata", bytes.NewReader(b)}
}

// multipartBody streams parts as a multipart body; a part whose reader
// fails cuts the body off there.
func multipartBody(parts ...part) (io.Reader, string) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		for _, p := range parts {
			var w io.Writer
			var err error
			if p.name == "file" || p.name == "thumbnail" {
				w, err = mw.CreateFormFile(p.name, "blob")
			} else {
				w, err = mw.CreateFormField(p.name)
			}
			if err == nil {
				_, err = io.Copy(w, p.body)
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(mw.Close())
	}()
	return pr, mw.FormDataContentType()
}

// upload posts parts as c and returns the status and envelope.
func upload(t testing.TB, c *apitest.Client, parts ...part) (int, *apitest.Response) {
	t.Helper()
	body, ct := multipartBody(parts...)
	req, _ := http.NewRequest("POST", c.Base+"/api/media/upload", body)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+c.Token)
	res, err := c.HTTP.Do(req)
	if err != nil {
		return 0, nil // the server cut the body off; callers that expect it check
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var env apitest.Response
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatalf("upload: status %d, not an envelope: %q", res.StatusCode, raw)
	}
	return res.StatusCode, &env
}

func mustUpload(t *testing.T, c *apitest.Client, data, thumb []byte) uploadRes {
	t.Helper()
	parts := []part{metadata("image", int64(len(data))), {"file", bytes.NewReader(data)}}
	if thumb != nil {
		parts = append(parts, part{"hasThumbnail", strings.NewReader("true")}, part{"thumbnail", bytes.NewReader(thumb)})
	}
	status, env := upload(t, c, parts...)
	if status != 201 {
		t.Fatalf("upload: %d %+v", status, env)
	}
	var r uploadRes
	env.Decode(t, &r)
	return r
}

// get fetches path as c with extra headers and returns status, headers and body.
func get(t *testing.T, c *apitest.Client, path string, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", c.Base+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.Token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	client := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// TestMedia drives API.md §8 over a directory on every database backend,
// and over S3.
func TestMedia(t *testing.T) {
	t.Parallel()
	for _, backend := range testdb.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testMedia(t, apitest.MustStart(t, backend, nil))
		})
	}
	t.Run("s3", func(t *testing.T) {
		s3 := s3test.Start(t)
		testMedia(t, apitest.MustStart(t, testdb.Backends[0], func(c *server.Config) { c.Media = s3.URL(t, "media") }))
	})
}

func testMedia(t *testing.T, srv *server.Server) {
	ann := apitest.Register(t, srv.URL(), apitest.Unique("ann"))
	bob := apitest.Register(t, srv.URL(), apitest.Unique("bob"))
	cat := apitest.Register(t, srv.URL(), apitest.Unique("cat"))
	data, thumb := randomBytes(300<<10), randomBytes(2000)
	up := mustUpload(t, ann, data, thumb)
	sum := sha256.Sum256(data)
	if up.SHA256 != hex.EncodeToString(sum[:]) || up.Size != int64(len(data)) || up.FileType != "image" || up.MimeType != "image/jpeg" {
		t.Fatalf("upload answer %+v", up)
	}
	var info mediaInfo
	ann.Must(t, 200, "GET", "/api/media/"+up.FileID, nil).Decode(t, &info)
	if info.UserID != ann.UserID || info.URL != "/api/media/"+up.FileID+"/content" || info.ThumbnailURL == nil || !info.HasThumbnail ||
		info.ExpiresAt == nil || info.FileIv != "aXY=" || info.EncryptedAESKey != "a2V5" || info.OriginalName != "photo.jpg" {
		t.Fatalf("metadata %+v", info)
	}
	content := "/api/media/" + up.FileID + "/content"

	t.Run("Download", func(t *testing.T) {
		status, h, body := get(t, ann, content, nil)
		if status != 200 || !bytes.Equal(body, data) || h.Get("ETag") != `"`+up.SHA256+`"` ||
			h.Get("Content-Type") != "application/octet-stream" || h.Get("Content-Length") != fmt.Sprint(len(data)) {
			t.Fatalf("download: %d, %d bytes, headers %v", status, len(body), h)
		}
		if status, _, body := get(t, ann, content, map[string]string{"Range": "bytes=10-19"}); status != 206 || !bytes.Equal(body, data[10:20]) {
			t.Fatalf("range: %d %d bytes", status, len(body))
		}
		status, h, body = get(t, ann, content, map[string]string{"Range": "bytes=0-4,100-104"})
		if status != 206 || !strings.HasPrefix(h.Get("Content-Type"), "multipart/byteranges") ||
			!bytes.Contains(body, data[0:5]) || !bytes.Contains(body, data[100:105]) {
			t.Fatalf("multi-range: %d %s", status, h.Get("Content-Type"))
		}
		if status, _, _ := get(t, ann, content, map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(data)+10)}); status != 416 {
			t.Fatalf("unsatisfiable range: %d", status)
		}
		if status, _, _ := get(t, ann, content, map[string]string{"If-None-Match": `"` + up.SHA256 + `"`}); status != 304 {
			t.Fatalf("If-None-Match: %d", status)
		}
		if status, _, body := get(t, ann, content+"?thumbnail=true", nil); status != 200 || !bytes.Equal(body, thumb) {
			t.Fatalf("thumbnail: %d %d bytes", status, len(body))
		}
	})

	t.Run("Access", func(t *testing.T) {
		// Before any message uses it, only the uploader sees it.
		if r := bob.Do(t, "GET", "/api/media/"+up.FileID, nil); r.Status != 404 {
			t.Fatalf("stranger reads metadata: %d", r.Status)
		}
		if status, _, _ := get(t, bob, content, nil); status != 404 {
			t.Fatalf("stranger downloads: %d", status)
		}
		// Someone else's file in a send is refused.
		r := bob.Do(t, "POST", "/api/messages/send", map[string]any{"recipientId": ann.UserID, "encryptedContent": "c", "type": "image",
			"mediaId": up.FileID})
		if r.Status != 400 || r.Error.Code != "invalid_argument" {
			t.Fatalf("send of another's file: %d %s", r.Status, r.Error.Code)
		}
		send(t, ann, bob, "c", map[string]any{"type": "image", "mediaId": up.FileID})
		var seen mediaInfo
		bob.Must(t, 200, "GET", "/api/media/"+up.FileID, nil).Decode(t, &seen)
		if seen.ExpiresAt != nil {
			t.Fatalf("a used file still expires: %v", *seen.ExpiresAt)
		}
		if status, _, body := get(t, bob, content, nil); status != 200 || !bytes.Equal(body, data) {
			t.Fatalf("recipient downloads: %d", status)
		}
		if status, _, _ := get(t, cat, content, nil); status != 404 {
			t.Fatalf("outsider downloads: %d", status)
		}
		if r := cat.Do(t, "GET", "/api/media/media_doesnotexist", nil); r.Status != 404 {
			t.Fatalf("unknown file: %d", r.Status)
		}
		// A profile picture: only the uploader's own image, then public.
		if r := cat.Do(t, "PUT", "/api/users/me/profile", map[string]any{"avatar": up.FileID}); r.Status != 400 {
			t.Fatalf("someone else's file as avatar: %d", r.Status)
		}
		pic := mustUpload(t, cat, randomBytes(5000), nil)
		cat.Must(t, 200, "PUT", "/api/users/me/profile", map[string]any{"avatar": pic.FileID})
		if status, _, body := get(t, bob, "/api/media/"+pic.FileID+"/content", nil); status != 200 || len(body) != 5000 {
			t.Fatalf("another user downloads a profile picture: %d", status)
		}
	})

	t.Run("Refused", func(t *testing.T) {
		cases := []struct {
			name   string
			parts  []part
			status int
			code   string
		}{
			{"declared over the limit", []part{metadata("image", 17<<20), {"file", bytes.NewReader(data)}}, 413, "too_large"},
			{"size mismatch", []part{metadata("image", 10), {"file", bytes.NewReader(data)}}, 400, "invalid_argument"},
			{"no metadata", []part{{"file", bytes.NewReader(data)}}, 400, "invalid_argument"},
			{"no file", []part{metadata("image", 10)}, 400, "invalid_argument"},
			{"unknown type", []part{metadata("movie", 10), {"file", bytes.NewReader(data[:10])}}, 400, "invalid_argument"},
			{"thumbnail too large", []part{metadata("image", 10), {"file", bytes.NewReader(data[:10])},
				{"thumbnail", bytes.NewReader(data[:257<<10])}}, 413, "too_large"},
			{"unknown field", []part{{"virus", strings.NewReader("x")}}, 400, "invalid_argument"},
		}
		for _, c := range cases {
			status, env := upload(t, ann, c.parts...)
			if status != c.status || env.Error.Code != c.code {
				t.Errorf("%s: %d %s (%s), want %d %s", c.name, status, env.Error.Code, env.Error.Message, c.status, c.code)
			}
		}
		r := ann.Do(t, "POST", "/api/media/upload", map[string]string{"file": "x"})
		if r.Status != 415 {
			t.Errorf("JSON upload: %d", r.Status)
		}
		// Counted over the limit: the metadata claims a small file.
		status, env := upload(t, ann, metadata("image", 100), part{"file", io.LimitReader(zeros{}, 17<<20)})
		if status != 0 && (status != 413 || env.Error.Code != "too_large") {
			t.Errorf("counted over the limit: %d %+v", status, env)
		}
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// failAfter yields n bytes and then fails, as a client that disconnects.
type failAfter struct{ n int }

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := min(len(p), f.n)
	clear(p[:n])
	f.n -= n
	return n, nil
}

// countFiles counts the objects of a directory store.
func countFiles(t *testing.T, dir string) int {
	n := 0
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// TestMediaLeavesNothing: an upload cut off midway, refused or over quota
// leaves no bytes in storage; an unused file is collected after 24 hours.
func TestMediaLeavesNothing(t *testing.T) {
	clock := jobs.NewFake(time.Now())
	srv := apitest.MustStart(t, testdb.Backends[0], func(c *server.Config) {
		c.Clock = clock
		c.MediaQuota = 1 << 20
	})
	dir := filepath.Join(srv.DataDir(), "media")
	ann := apitest.Register(t, srv.URL(), apitest.Unique("ann"))
	wait := func(what string, ok func() bool) { waitUntil(t, what, ok) }
	upload(t, ann, metadata("image", 500<<10), part{"file", &failAfter{200 << 10}})
	wait("a cut-off upload is removed", func() bool { return countFiles(t, dir) == 0 })
	// Refused after the file was stored: the size does not match, the
	// thumbnail is too large.
	if status, _ := upload(t, ann, metadata("image", 10), part{"file", bytes.NewReader(randomBytes(1000))}); status != 400 {
		t.Fatalf("size mismatch: %d", status)
	}
	if status, _ := upload(t, ann, metadata("image", 1000), part{"file", bytes.NewReader(randomBytes(1000))},
		part{"thumbnail", bytes.NewReader(randomBytes(300 << 10))}); status != 413 {
		t.Fatalf("thumbnail too large: %d", status)
	}
	if n := countFiles(t, dir); n != 0 {
		t.Fatalf("%d files left by refused uploads", n)
	}

	first := mustUpload(t, ann, randomBytes(600<<10), nil)
	status, env := upload(t, ann, metadata("image", 600<<10), part{"file", bytes.NewReader(randomBytes(600 << 10))})
	if status != 413 || env.Error.Code != "quota_exceeded" {
		t.Fatalf("over the quota: %d %+v", status, env)
	}
	if n := countFiles(t, dir); n != 1 {
		t.Fatalf("%d files after a refused upload, want 1", n)
	}
	// Unused for 24 hours: collected, bytes and metadata.
	ann.Must(t, 200, "GET", "/api/media/"+first.FileID, nil)
	clock.Advance(25 * time.Hour)
	wait("an unused file is collected", func() bool { return countFiles(t, dir) == 0 })
	if r := ann.Do(t, "GET", "/api/media/"+first.FileID, nil); r.Status != 404 {
		t.Fatalf("collected file's metadata: %d", r.Status)
	}
	// The quota is free again.
	mustUpload(t, ann, randomBytes(600<<10), nil)
}

// TestMediaDeletedMessage: a file whose only message is deleted for
// everyone is collected at the next run, without waiting 24 hours.
func TestMediaDeletedMessage(t *testing.T) {
	clock := jobs.NewFake(time.Now())
	srv := apitest.MustStart(t, testdb.Backends[0], func(c *server.Config) { c.Clock = clock })
	dir := filepath.Join(srv.DataDir(), "media")
	ann := apitest.Register(t, srv.URL(), apitest.Unique("ann"))
	bob := apitest.Register(t, srv.URL(), apitest.Unique("bob"))
	up := mustUpload(t, ann, randomBytes(1000), nil)
	msg := send(t, ann, bob, "c", map[string]any{"type": "image", "mediaId": up.FileID})
	clock.Advance(25 * time.Hour) // used: stays
	ann.Must(t, 200, "GET", "/api/media/"+up.FileID, nil)
	ann.Must(t, 200, "POST", "/api/messages/delete", map[string]any{"messageId": msg.MessageID, "deleteForEveryone": true})
	clock.Advance(11 * time.Minute)
	waitUntil(t, "the file of a message deleted for everyone is collected", func() bool { return countFiles(t, dir) == 0 })
	if status, _, _ := get(t, bob, "/api/media/"+up.FileID+"/content", nil); status != 404 {
		t.Fatalf("download after collection: %d", status)
	}
}

// TestMediaCluster: with S3 storage, a file uploaded through one node
// downloads through another (and a presigned redirect works).
func TestMediaCluster(t *testing.T) {
	dsn := testdb.DSN(t, "postgres")
	nats := testenv.NATSURL(t)
	s3 := s3test.Start(t)
	media := s3.URL(t, "cluster")
	a := apitest.MustStart(t, "postgres", func(c *server.Config) { c.DB, c.Bus, c.Media = dsn, nats, media })
	b := apitest.MustStart(t, "postgres", func(c *server.Config) { c.DB, c.Bus, c.Media, c.MediaRedirect = dsn, nats, media, true })
	ann := apitest.Register(t, a.URL(), apitest.Unique("ann"))
	data := randomBytes(70 << 10)
	up := mustUpload(t, ann, data, nil)
	viaB := *ann
	viaB.Base = b.URL()
	status, h, _ := get(t, &viaB, "/api/media/"+up.FileID+"/content", nil)
	if status != 302 || h.Get("Location") == "" {
		t.Fatalf("redirect from node B: %d %v", status, h)
	}
	res, err := http.Get(h.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("presigned download: %d, %d bytes", res.StatusCode, len(body))
	}
	viaA := *ann
	if status, _, body := get(t, &viaA, "/api/media/"+up.FileID+"/content", map[string]string{"Range": "bytes=5-9"}); status != 206 || !bytes.Equal(body, data[5:10]) {
		t.Fatalf("range through node A: %d", status)
	}
}

// TestMediaCancelledSchedule: a file kept for a pending scheduled message
// past its 24 hours is collected once that message is cancelled.
func TestMediaCancelledSchedule(t *testing.T) {
	clock := jobs.NewFake(time.Now())
	srv := apitest.MustStart(t, testdb.Backends[0], func(c *server.Config) { c.Clock = clock })
	dir := filepath.Join(srv.DataDir(), "media")
	ann := apitest.Register(t, srv.URL(), apitest.Unique("ann"))
	bob := apitest.Register(t, srv.URL(), apitest.Unique("bob"))
	up := mustUpload(t, ann, randomBytes(1000), nil)
	probe := mustUpload(t, ann, randomBytes(1000), nil) // unused: collected by the same pass
	var sched struct{ MessageID string }
	ann.Must(t, 201, "POST", "/api/messages/schedule", map[string]any{"recipientId": bob.UserID, "encryptedContent": "later",
		"type": "image", "mediaId": up.FileID, "scheduledAt": clock.Now().Add(7 * 24 * time.Hour).UnixMilli()}).Decode(t, &sched)
	clock.Advance(25 * time.Hour)
	// A barrier: once the probe is gone, the collection has looked at
	// both files; the pending message's file stays.
	waitUntil(t, "the unused probe file is collected", func() bool { return ann.Do(t, "GET", "/api/media/"+probe.FileID, nil).Status == 404 })
	ann.Must(t, 200, "GET", "/api/media/"+up.FileID, nil)
	ann.Must(t, 200, "POST", "/api/messages/scheduled/cancel", map[string]any{"messageId": sched.MessageID})
	clock.Advance(11 * time.Minute)
	waitUntil(t, "the file of a cancelled scheduled message is collected", func() bool { return countFiles(t, dir) == 0 })
}

// waitUntil polls ok (a background job's effect, which no event
// announces) for up to 10 s.
func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after 10 s", what)
		}
	}
}
