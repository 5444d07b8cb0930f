// Package s3test runs a real S3-compatible server for tests: versitygw
// with its POSIX backend in a temporary folder, on a free loopback port.
// `make test` installs versitygw (go install); without it the S3 suites
// skip, or fail in CI.
package s3test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/parley-chat/parley/internal/testenv"
)

// Credentials of the test server's root account.
const (
	AccessKey = "parleytest"
	SecretKey = "parleytestsecret"
)

// Server is a running versitygw.
type Server struct {
	Endpoint string // host:port
	client   *minio.Client
}

var buckets atomic.Int64

// Binary returns the path of versitygw: on PATH or in GOPATH/bin.
func Binary() string {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Start runs a server for tb, stopped when tb ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin := Binary()
	if bin == "" {
		testenv.Unavailable(tb, "versitygw is not installed (make test installs it: go install github.com/versity/versitygw/cmd/versitygw)")
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	root := tb.TempDir()
	cmd := exec.Command(bin, "--port", addr, "posix", "--sidecar", tb.TempDir(), root)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey)
	logf, err := os.Create(filepath.Join(tb.TempDir(), "versitygw.log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start versitygw: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/")
		if err == nil {
			res.Body.Close()
			break
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logf.Name())
			tb.Fatalf("versitygw exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("versitygw did not answer on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(AccessKey, SecretKey, ""), Region: "us-east-1"})
	if err != nil {
		tb.Fatal(err)
	}
	return &Server{Endpoint: addr, client: c}
}

// NewBucket creates a bucket of a unique name and returns it.
func (s *Server) NewBucket(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("parley-test-%d-%d", os.Getpid(), buckets.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		tb.Fatalf("create bucket: %v", err)
	}
	return name
}

// URL returns the --media value of a new bucket (and key prefix).
func (s *Server) URL(tb testing.TB, prefix string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=%s&region=us-east-1&secure=false&access_key=%s&secret_key=%s",
		s.NewBucket(tb), prefix, s.Endpoint, AccessKey, SecretKey)
}
