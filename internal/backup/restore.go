package backup

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"

	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/image"
)

// Restore replaces the contents of dir (the backup's own dir when "") in
// the sandbox whose root is mounted at root with the backup's: what was
// written there since is gone, and restoring twice gives the same tree.
// The archive is unpacked beside dir and checked against its digest
// first, so a missing or corrupt backup changes nothing. It returns the
// number of entries at the top of dir.
func (s *Store) Restore(ctx context.Context, root, id, dir string) (int, error) {
	b, err := s.Get(ctx, id)
	if err != nil {
		return 0, err
	}
	if dir == "" {
		dir = b.Dir
	}
	if err := ValidDir(dir); err != nil {
		return 0, err
	}
	dst, err := inside(root, dir)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return 0, fmt.Errorf("restore into %s: %w", dir, err)
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	tmp := filepath.Join(filepath.Dir(dst), ".hutch-restore-"+hex.EncodeToString(r[:]))
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return 0, fmt.Errorf("restore into %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp) //nolint:errcheck // empty after a successful restore
	if err := s.unpack(ctx, b, tmp); err != nil {
		return 0, err
	}
	// Verified: now swap the contents. Entries are moved one by one (a
	// directory from an image layer cannot be renamed on overlayfs).
	old, err := os.ReadDir(dst)
	if err != nil {
		return 0, err
	}
	for _, e := range old {
		if err := os.RemoveAll(filepath.Join(dst, e.Name())); err != nil {
			return 0, fmt.Errorf("restore into %s: clear %s: %w", dir, e.Name(), err)
		}
	}
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		if err := os.Rename(filepath.Join(tmp, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return 0, fmt.Errorf("restore into %s: %w", dir, err)
		}
	}
	return len(ents), nil
}

func (s *Store) unpack(ctx context.Context, b Backup, into string) error {
	dataKey, _, _ := keys(b.ID)
	rc, err := s.bs.Get(ctx, dataKey)
	if err != nil {
		return fmt.Errorf("backup %s: %w", b.ID, err)
	}
	defer rc.Close()
	zr, err := zstd.NewReader(rc)
	if err != nil {
		return err
	}
	defer zr.Close()
	h := sha256.New()
	tee := io.TeeReader(zr, h)
	if _, err := image.Unpack(ctx, tee, into); err != nil {
		return fmt.Errorf("backup %s is corrupt: %w: %w", b.ID, err, errdefs.ErrFailedPrecondition)
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return fmt.Errorf("backup %s is corrupt: %w: %w", b.ID, err, errdefs.ErrFailedPrecondition)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != b.Digest {
		return fmt.Errorf("backup %s is corrupt: content has digest %s, want %s: %w", b.ID, got, b.Digest, errdefs.ErrFailedPrecondition)
	}
	return nil
}
