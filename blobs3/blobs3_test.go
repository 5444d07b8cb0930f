package blobs3_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/blobs3"
	"github.com/parley-chat/parley/internal/blobtest"
	"github.com/parley-chat/parley/internal/s3test"
)

func open(t *testing.T, srv *s3test.Server) *blobs3.Store {
	t.Helper()
	o, err := blobs3.ParseURL(srv.URL(t, "parley"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := blobs3.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestContract runs the blob store contract against a real S3 server.
func TestContract(t *testing.T) {
	srv := s3test.Start(t)
	blobtest.Run(t, func(t *testing.T) parley.BlobStore { return open(t, srv) })
}

// TestPresignedURL: the URL downloads the object without credentials.
func TestPresignedURL(t *testing.T) {
	srv := s3test.Start(t)
	s := open(t, srv)
	ctx := context.Background()
	if err := s.Put(ctx, "media_url", strings.NewReader("ciphertext"), -1); err != nil {
		t.Fatal(err)
	}
	u, err := s.URL(ctx, "media_url", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || string(body) != "ciphertext" {
		t.Fatalf("presigned GET: %d %q", res.StatusCode, body)
	}
}

// TestFailedPutLeavesNoParts: a multipart upload that fails after its
// first part was sent (a reader error, a cancelled context) is aborted, so
// its parts do not linger in the bucket unseen.
func TestFailedPutLeavesNoParts(t *testing.T) {
	srv := s3test.Start(t)
	spec := srv.URL(t, "parley")
	o, err := blobs3.ParseURL(spec)
	if err != nil {
		t.Fatal(err)
	}
	s, err := blobs3.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	c, err := minio.NewCore(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3test.AccessKey, s3test.SecretKey, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	incomplete := func() []string {
		t.Helper()
		var keys []string
		for u := range c.ListIncompleteUploads(ctx, o.Bucket, "", true) {
			if u.Err != nil {
				t.Fatal(u.Err)
			}
			keys = append(keys, u.Key)
		}
		return keys
	}
	// The listing sees an upload left open, so an empty one below means
	// the failed Puts aborted theirs.
	id, err := c.NewMultipartUpload(ctx, o.Bucket, "open", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if keys := incomplete(); len(keys) != 1 {
		t.Fatalf("incomplete uploads with one open: %q", keys)
	}
	if err := c.AbortMultipartUpload(ctx, o.Bucket, "open", id); err != nil {
		t.Fatal(err)
	}

	twoParts := func() io.Reader { return io.LimitReader(zeros{}, 7<<20) }
	if err := s.Put(ctx, "media_broken", io.MultiReader(twoParts(), failing{}), -1); err == nil {
		t.Fatal("a put whose reader failed succeeded")
	}
	cctx, cancel := context.WithCancel(ctx)
	if err := s.Put(cctx, "media_cancelled", io.MultiReader(twoParts(), cancelling(cancel)), -1); err == nil {
		t.Fatal("a cancelled put succeeded")
	}
	if keys := incomplete(); len(keys) != 0 {
		t.Fatalf("failed puts left incomplete uploads: %q", keys)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("client went away") }

// cancelling cancels the Put's context when it is read, then fails as the
// request body of a gone client does.
type cancelling func()

func (c cancelling) Read([]byte) (int, error) { c(); return 0, context.Canceled }

func TestParseURL(t *testing.T) {
	o, err := blobs3.ParseURL("s3://bucket/some/prefix?endpoint=127.0.0.1:9000&region=eu-west-1&secure=false&access_key=a&secret_key=b")
	if err != nil {
		t.Fatal(err)
	}
	if o.Bucket != "bucket" || o.Prefix != "some/prefix/" || o.Endpoint != "127.0.0.1:9000" || o.Region != "eu-west-1" || o.Secure || o.AccessKey != "a" {
		t.Fatalf("%+v", o)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	for _, bad := range []string{"http://bucket/x", "s3:///x", "s3://bucket/x"} {
		if _, err := blobs3.ParseURL(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// BenchmarkStore: go test -run '^$' -bench Store -benchtime 3x ./blobdir ./blobs3
func BenchmarkStore(b *testing.B) {
	srv := s3test.Start(b)
	blobtest.Bench(b, func(b *testing.B) parley.BlobStore {
		o, err := blobs3.ParseURL(srv.URL(b, "parley"))
		if err != nil {
			b.Fatal(err)
		}
		s, err := blobs3.Open(context.Background(), o)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}, 1, 100)
}
