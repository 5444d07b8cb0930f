// Package blobtest is the contract every parley.BlobStore keeps, run over
// each implementation (a directory, S3).
package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/parley-chat/parley"
)

// Run checks the contract of the stores newStore returns (a fresh, empty
// one per call).
func Run(t *testing.T, newStore func(t *testing.T) parley.BlobStore) {
	ctx := context.Background()
	t.Run("RoundTrip", func(t *testing.T) {
		s := newStore(t)
		for _, size := range []int{0, 1, 1000, 6 << 20} {
			for _, known := range []bool{true, false} {
				data := random(t, size)
				key := fmt.Sprintf("media_rt%d_%v", size, known)
				n := int64(-1)
				if known {
					n = int64(size)
				}
				if err := s.Put(ctx, key, bytes.NewReader(data), n); err != nil {
					t.Fatalf("put %d bytes (size known %v): %v", size, known, err)
				}
				if got, total := read(t, s, key, 0, -1); !bytes.Equal(got, data) || total != int64(size) {
					t.Fatalf("read back %d of %d bytes (total %d)", len(got), size, total)
				}
			}
		}
	})
	t.Run("Ranges", func(t *testing.T) {
		s := newStore(t)
		data := random(t, 10000)
		must(t, s.Put(ctx, "media_ranges", bytes.NewReader(data), int64(len(data))))
		for _, c := range []struct{ off, n int64 }{{0, 1}, {5, 100}, {9999, 1}, {9990, -1}, {100, 20000}, {10000, -1}} {
			want := data[c.off:]
			if c.n >= 0 && c.n < int64(len(want)) {
				want = want[:c.n]
			}
			if got, total := read(t, s, "media_ranges", c.off, c.n); !bytes.Equal(got, want) || total != 10000 {
				t.Fatalf("range %d+%d: %d bytes, total %d; want %d", c.off, c.n, len(got), total, len(want))
			}
		}
		for _, off := range []int64{10001, -1} {
			if r, _, err := s.Open(ctx, "media_ranges", off, -1); parley.ErrorCode(err) != parley.EINVALID {
				if err == nil {
					r.Close()
				}
				t.Fatalf("offset %d of a 10000-byte object: %v", off, err)
			}
		}
	})
	// Overwrite: a Put on an existing key replaces the object whole; a Put
	// that fails leaves the old object as it was. (Keys are fresh ids, so
	// the service never overwrites; a retried Put may.)
	t.Run("Overwrite", func(t *testing.T) {
		s := newStore(t)
		old, repl := random(t, 3000), random(t, 1000)
		must(t, s.Put(ctx, "media_ow", bytes.NewReader(old), int64(len(old))))
		must(t, s.Put(ctx, "media_ow", bytes.NewReader(repl), -1))
		if got, total := read(t, s, "media_ow", 0, -1); !bytes.Equal(got, repl) || total != int64(len(repl)) {
			t.Fatalf("after an overwrite: %d bytes, total %d; want the %d new ones", len(got), total, len(repl))
		}
		broken := io.MultiReader(bytes.NewReader(random(t, 6<<20)), errReader{})
		if err := s.Put(ctx, "media_ow", broken, -1); err == nil {
			t.Fatal("a put whose reader failed succeeded")
		}
		if got, _ := read(t, s, "media_ow", 0, -1); !bytes.Equal(got, repl) {
			t.Fatalf("a failed overwrite changed the object: %d bytes", len(got))
		}
	})
	// SizeMismatch: a known size is a promise; a reader that gives fewer or
	// more bytes fails the Put and stores nothing.
	t.Run("SizeMismatch", func(t *testing.T) {
		s := newStore(t)
		for _, c := range []struct {
			name       string
			have, said int
		}{{"Short", 1000, 2000}, {"Long", 2000, 1000}, {"LongEmpty", 10, 0}, {"ShortMultipart", 6 << 20, 7 << 20}, {"LongMultipart", 7 << 20, 6 << 20}} {
			key := "media_size" + c.name
			if err := s.Put(ctx, key, bytes.NewReader(random(t, c.have)), int64(c.said)); err == nil {
				t.Fatalf("%s: a put of %d bytes announced as %d succeeded", c.name, c.have, c.said)
			}
			if _, _, err := s.Open(ctx, key, 0, -1); parley.ErrorCode(err) != parley.ENOTFOUND {
				t.Fatalf("%s: after a put of the wrong size: %v", c.name, err)
			}
		}
	})
	t.Run("Missing", func(t *testing.T) {
		s := newStore(t)
		if _, _, err := s.Open(ctx, "media_missing", 0, -1); parley.ErrorCode(err) != parley.ENOTFOUND {
			t.Fatalf("open of a missing key: %v", err)
		}
		must(t, s.Delete(ctx, "media_missing"))
		must(t, s.Put(ctx, "media_del", bytes.NewReader([]byte("x")), 1))
		must(t, s.Delete(ctx, "media_del"))
		must(t, s.Delete(ctx, "media_del"))
		if _, _, err := s.Open(ctx, "media_del", 0, -1); parley.ErrorCode(err) != parley.ENOTFOUND {
			t.Fatalf("open after delete: %v", err)
		}
	})
	// FailedPutLeavesNothing: a reader that errors, or a context cancelled
	// midway, in a one-part and in a multipart upload, with the size known
	// and not.
	t.Run("FailedPutLeavesNothing", func(t *testing.T) {
		s := newStore(t)
		for _, total := range []int{200 << 10, 12 << 20} {
			for _, known := range []bool{true, false} {
				size := int64(-1)
				if known {
					size = int64(total)
				}
				key := fmt.Sprintf("media_broken%d_%v", total, known)
				broken := io.MultiReader(bytes.NewReader(random(t, total/2)), errReader{})
				if err := s.Put(ctx, key, broken, size); err == nil {
					t.Fatalf("%s: a put whose reader failed succeeded", key)
				}
				if _, _, err := s.Open(ctx, key, 0, -1); parley.ErrorCode(err) != parley.ENOTFOUND {
					t.Fatalf("%s: after a failed put: %v", key, err)
				}
				key = fmt.Sprintf("media_cancelled%d_%v", total, known)
				cctx, cancel := context.WithCancel(ctx)
				r := &cancelAfter{r: bytes.NewReader(random(t, total)), n: total / 2, cancel: cancel}
				err := s.Put(cctx, key, r, size)
				cancel()
				if err == nil {
					t.Fatalf("%s: a cancelled put succeeded", key)
				}
				if _, _, err := s.Open(ctx, key, 0, -1); parley.ErrorCode(err) != parley.ENOTFOUND {
					t.Fatalf("%s: after a cancelled put: %v", key, err)
				}
			}
		}
	})
	t.Run("InvalidKeys", func(t *testing.T) {
		s := newStore(t)
		long := strings.Repeat("k", 128)
		must(t, s.Put(ctx, long, bytes.NewReader([]byte("x")), 1))
		if got, _ := read(t, s, long, 0, -1); string(got) != "x" {
			t.Fatalf("128-byte key read back %q", got)
		}
		for _, key := range []string{"", "..", "../x", "a/b", `a\b`, "/abs", ".hidden", "sp ace", "nul\x00", "é", long + "k"} {
			if err := s.Put(ctx, key, bytes.NewReader([]byte("x")), 1); parley.ErrorCode(err) != parley.EINVALID {
				t.Fatalf("put under key %q: %v", key, err)
			}
			if r, _, err := s.Open(ctx, key, 0, -1); parley.ErrorCode(err) != parley.EINVALID {
				if err == nil {
					r.Close()
				}
				t.Fatalf("open of key %q: %v", key, err)
			}
			if err := s.Delete(ctx, key); parley.ErrorCode(err) != parley.EINVALID {
				t.Fatalf("delete of key %q: %v", key, err)
			}
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				data := bytes.Repeat([]byte{byte(i)}, 200<<10)
				key := fmt.Sprintf("media_c%d", i)
				if err := s.Put(ctx, key, bytes.NewReader(data), -1); err != nil {
					errs <- err
					return
				}
				r, _, err := s.Open(ctx, key, 0, -1)
				if err != nil {
					errs <- err
					return
				}
				defer r.Close()
				got, err := io.ReadAll(r)
				if err == nil && !bytes.Equal(got, data) {
					err = fmt.Errorf("%s read back wrong", key)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	})
}

func read(t *testing.T, s parley.BlobStore, key string, off, n int64) ([]byte, int64) {
	t.Helper()
	r, total, err := s.Open(context.Background(), key, off, n)
	if err != nil {
		t.Fatalf("open %s at %d+%d: %v", key, off, n, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b, total
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("client went away") }

// cancelAfter cancels its context once n bytes were read, as a request
// whose client disconnects mid-upload.
type cancelAfter struct {
	r      io.Reader
	n      int
	read   int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.read >= c.n {
		c.cancel()
	}
	n, err := c.r.Read(p)
	c.read += n
	return n, err
}
