package blob_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/blob"
	"github.com/hutch-sh/hutch/internal/blob/blobtest"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/testutil"
)

func TestDir(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, err := blob.OpenDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// A full disk is resource_exhausted, and leaves nothing behind.
func TestDirFull(t *testing.T) {
	testutil.RequiresRoot(t) // mounts a small tmpfs
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		testutil.Unavailable(t, "mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	s, err := blob.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	err = s.Put(ctx, "layers/big", bytes.NewReader(make([]byte, 2<<20)))
	if !errors.Is(err, errdefs.ErrResourceExhausted) {
		t.Fatalf("put onto a full disk: %v, want resource exhausted", err)
	}
	if keys, _ := s.List(ctx, ""); len(keys) != 0 {
		t.Errorf("keys after a failed put: %v", keys)
	}
	if left, _ := os.ReadDir(dir + "/.tmp"); len(left) != 0 {
		t.Errorf("temp files left: %d", len(left))
	}
}
