// Package blob stores immutable objects by key in a local directory or an
// S3-compatible object store, behind one interface that both pass one
// conformance suite (blobtest). An object becomes visible only once it is
// complete.
package blob

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// Store keeps objects by key.
type Store interface {
	// Put stores r's bytes under key, replacing what was there; readers
	// see the old object or the whole new one, never part of it.
	Put(ctx context.Context, key string, r io.Reader) error
	// Get opens the object under key; errdefs.ErrNotFound if none.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the keys that start with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
}

var keyRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$`)

// ValidKey reports whether key is a slash-separated path of
// [A-Za-z0-9._-] segments, none empty or starting with a dot.
func ValidKey(key string) error {
	if len(key) > 512 || !keyRe.MatchString(key) {
		return fmt.Errorf("blob key %q: want slash-separated [A-Za-z0-9._-] segments not starting with '.': %w", key, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Open opens the store a location names: a directory path, or
// s3://HOST[:PORT]/BUCKET[/PREFIX] with credentials from the environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; HUTCH_S3_INSECURE=1 for plain
// HTTP).
func Open(ctx context.Context, location string) (Store, error) {
	if !strings.HasPrefix(location, "s3://") {
		return OpenDir(location)
	}
	u, err := url.Parse(location)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("blob store %q: want s3://HOST[:PORT]/BUCKET[/PREFIX]: %w", location, errdefs.ErrInvalidArgument)
	}
	bucket, prefix, _ := strings.Cut(strings.Trim(u.Path, "/"), "/")
	return OpenS3(ctx, S3Config{
		Endpoint:  u.Host,
		Bucket:    bucket,
		Prefix:    prefix,
		AccessKey: os.Getenv("AWS_ACCESS_KEY_ID"),
		SecretKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		Insecure:  os.Getenv("HUTCH_S3_INSECURE") == "1",
	})
}
