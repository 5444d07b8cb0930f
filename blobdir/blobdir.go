// Package blobdir keeps the bytes of uploaded files in a directory
// (parley.BlobStore). With several nodes the directory must be shared
// storage that every node mounts; otherwise use S3 (package blobs3).
package blobdir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/parley-chat/parley"
)

// Store is a directory of objects. An object is written to a temporary
// file, synced, and renamed into place, so a reader never sees part of one
// and a failed write leaves nothing.
type Store struct {
	dir string
}

// Open returns the store in dir, creating it if needed, and removes the
// temporary files of writes a crash interrupted.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("media directory: %w", err)
	}
	tmp, err := os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil {
		return nil, fmt.Errorf("media directory: %w", err)
	}
	for _, e := range tmp {
		_ = os.Remove(filepath.Join(dir, "tmp", e.Name()))
	}
	return &Store{dir: dir}, nil
}

// path spreads objects over 256 folders by the last two characters of the
// key (ids end in random characters).
func (s *Store) path(key string) (string, error) {
	if !parley.ValidBlobKey(key) {
		return "", parley.Errorf(parley.EINVALID, "invalid object key")
	}
	shard := key
	if len(shard) > 2 {
		shard = shard[len(shard)-2:]
	}
	return filepath.Join(s.dir, shard, key), nil
}

// Put implements parley.BlobStore.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	path, err := s.path(key)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "put-*")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err != nil {
		return err
	}
	if size >= 0 && n != size {
		return fmt.Errorf("blobdir: %d bytes arrived, %d announced", n, size)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	done = true
	if d, err := os.Open(filepath.Dir(path)); err == nil { // make the rename durable
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// ctxReader stops a copy once its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Open implements parley.BlobStore.
func (s *Store) Open(ctx context.Context, key string, off, n int64) (io.ReadCloser, int64, error) {
	path, err := s.path(key)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, parley.Errorf(parley.ENOTFOUND, "object not found")
	} else if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	size := st.Size()
	if off < 0 || off > size {
		f.Close()
		return nil, 0, parley.Errorf(parley.EINVALID, "offset %d is outside the object's %d bytes", off, size)
	}
	if n < 0 || off+n > size {
		n = size - off
	}
	return &section{SectionReader: io.NewSectionReader(f, off, n), f: f}, size, nil
}

type section struct {
	*io.SectionReader
	f *os.File
}

func (s *section) Close() error { return s.f.Close() }

// Delete implements parley.BlobStore.
func (s *Store) Delete(ctx context.Context, key string) error {
	path, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
