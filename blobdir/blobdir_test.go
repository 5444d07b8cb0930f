package blobdir_test

import (
	"testing"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/blobdir"
	"github.com/parley-chat/parley/internal/blobtest"
)

func TestContract(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) parley.BlobStore {
		s, err := blobdir.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// BenchmarkStore: go test -run '^$' -bench Store -benchtime 3x ./blobdir ./blobs3
func BenchmarkStore(b *testing.B) {
	blobtest.Bench(b, func(b *testing.B) parley.BlobStore {
		s, err := blobdir.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		return s
	}, 1, 100)
}
