// Package blobs3 keeps the bytes of uploaded files in an S3-compatible
// bucket (parley.BlobStore), through minio-go: AWS S3, MinIO, SeaweedFS,
// versitygw, Ceph and the like. Every node of a cluster reaches the same
// bucket, so a file uploaded through one node downloads through any.
package blobs3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/parley-chat/parley"
)

// partSize is the size of the parts of a multipart upload, the smallest S3
// allows: an upload of unknown length holds one part in memory at a time.
const partSize = 5 << 20

// Options name a bucket and how to reach it.
type Options struct {
	Endpoint  string // host:port
	Region    string
	Bucket    string
	Prefix    string // prepended to every key, e.g. "parley/"
	AccessKey string
	SecretKey string
	Secure    bool // https; default true unless the URL says secure=false
}

// ParseURL reads s3://BUCKET/PREFIX?endpoint=HOST:PORT&region=R&secure=false.
// The credentials come from access_key and secret_key in the query when
// given (tests), else from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
// Without endpoint, AWS S3 itself (s3.amazonaws.com) is used.
func ParseURL(spec string) (Options, error) {
	u, err := url.Parse(spec)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return Options{}, errors.New("media URL must look like s3://BUCKET/PREFIX?endpoint=HOST:PORT&region=REGION")
	}
	q := u.Query()
	o := Options{Bucket: u.Host, Prefix: strings.TrimPrefix(u.Path, "/"), Endpoint: q.Get("endpoint"), Region: q.Get("region"),
		AccessKey: q.Get("access_key"), SecretKey: q.Get("secret_key"), Secure: q.Get("secure") != "false"}
	if o.Endpoint == "" {
		o.Endpoint = "s3.amazonaws.com"
	}
	if o.Prefix != "" && !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	if o.AccessKey == "" {
		o.AccessKey, o.SecretKey = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	}
	if o.AccessKey == "" || o.SecretKey == "" {
		return Options{}, errors.New("S3 credentials missing: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	return o, nil
}

// Store is a bucket (and key prefix) of an S3-compatible server.
type Store struct {
	c      *minio.Client
	bucket string
	prefix string
}

// Open connects to the bucket and checks that it exists.
func Open(ctx context.Context, o Options) (*Store, error) {
	c, err := minio.New(o.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(o.AccessKey, o.SecretKey, ""),
		Secure: o.Secure, Region: o.Region})
	if err != nil {
		return nil, fmt.Errorf("S3: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ok, err := c.BucketExists(ctx, o.Bucket)
	if err != nil {
		return nil, fmt.Errorf("S3 bucket %s at %s: %w", o.Bucket, o.Endpoint, err)
	}
	if !ok {
		return nil, fmt.Errorf("S3 bucket %s does not exist at %s", o.Bucket, o.Endpoint)
	}
	return &Store{c: c, bucket: o.Bucket, prefix: o.Prefix}, nil
}

func (s *Store) name(key string) (string, error) {
	if !parley.ValidBlobKey(key) {
		return "", parley.Errorf(parley.EINVALID, "invalid object key")
	}
	return s.prefix + key, nil
}

// Put implements parley.BlobStore. The bytes always go up as a multipart
// upload in parts of partSize, each read whole into memory before it is
// sent, and the upload is completed only once r has ended. So a reader
// that fails never leaves a truncated object (versitygw, for one, stores
// what arrived of a plain PUT whose connection broke), and an upload that
// fails midway is one S3 does not show as an object; minio-go aborts it,
// removing its parts, even when ctx was cancelled. Each part is sent with
// its length, so the server refuses a part cut short. A known size is
// checked, not trusted: a reader that ends early or goes on past it fails
// the Put.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	name, err := s.name(key)
	if err != nil {
		return err
	}
	if size >= 0 {
		r = &exactReader{r: r, left: size}
	}
	_, err = s.c.PutObject(ctx, s.bucket, name, r, -1, minio.PutObjectOptions{ContentType: "application/octet-stream",
		PartSize: partSize, NumThreads: 1, DisableContentSha256: true})
	return err
}

// exactReader yields the bytes of r and fails unless there are exactly
// left of them.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left == 0 {
		// The announced bytes were all read: r must end here.
		var one [1]byte
		for {
			n, err := e.r.Read(one[:])
			if n > 0 {
				return 0, errors.New("blobs3: the reader has more bytes than announced")
			}
			if err == io.EOF {
				return 0, io.EOF
			} else if err != nil {
				return 0, err
			}
		}
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, fmt.Errorf("blobs3: the reader ended %d bytes short of the announced size", e.left)
	} else if err == io.EOF {
		err = nil // checked at the next Read
	}
	return n, err
}

// Open implements parley.BlobStore.
func (s *Store) Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, int64, error) {
	name, err := s.name(key)
	if err != nil {
		return nil, 0, err
	}
	info, err := s.c.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return nil, 0, notFound(err)
	}
	size := info.Size
	if off < 0 || off > size {
		return nil, 0, parley.Errorf(parley.EINVALID, "offset %d is outside the object's %d bytes", off, size)
	}
	if n < 0 || off+n > size {
		n = size - off
	}
	if n == 0 {
		return io.NopCloser(strings.NewReader("")), size, nil
	}
	opts := minio.GetObjectOptions{}
	if err := opts.SetRange(off, off+n-1); err != nil {
		return nil, 0, err
	}
	// The ETag pins the version that was measured.
	if err := opts.SetMatchETag(info.ETag); err != nil {
		return nil, 0, err
	}
	obj, err := s.c.GetObject(ctx, s.bucket, name, opts)
	if err != nil {
		return nil, 0, notFound(err)
	}
	return obj, size, nil
}

// Delete implements parley.BlobStore.
func (s *Store) Delete(ctx context.Context, key string) error {
	name, err := s.name(key)
	if err != nil {
		return err
	}
	return s.c.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{})
}

// URL implements parley.BlobURLer: a presigned GET valid for ttl.
func (s *Store) URL(ctx context.Context, key string, ttl time.Duration) (string, error) {
	name, err := s.name(key)
	if err != nil {
		return "", err
	}
	u, err := s.c.PresignedGetObject(ctx, s.bucket, name, ttl, url.Values{})
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

func notFound(err error) error {
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchKey", "NotFound":
		return parley.Errorf(parley.ENOTFOUND, "object not found")
	}
	return err
}
