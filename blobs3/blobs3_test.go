package blobs3_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

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
