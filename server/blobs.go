package server

import (
	"context"
	"strings"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/blobdir"
	"github.com/parley-chat/parley/blobs3"
)

// OpenBlobs opens the storage of uploaded files that spec names: a folder,
// or an s3:// URL.
func OpenBlobs(ctx context.Context, spec string) (parley.BlobStore, error) {
	if strings.HasPrefix(spec, "s3://") {
		return openS3(ctx, spec)
	}
	return blobdir.Open(spec)
}

func openS3(ctx context.Context, spec string) (parley.BlobStore, error) {
	o, err := blobs3.ParseURL(spec)
	if err != nil {
		return nil, err
	}
	return blobs3.Open(ctx, o)
}
