package image

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// AddLayer unpacks an uncompressed layer tar whose digest is not known in
// advance (a snapshot being captured) and stores it under the digest of
// what it read. A layer with that digest already stored is kept and the new
// copy dropped. The layer dir appears only once complete.
func (s *Store) AddLayer(ctx context.Context, r io.Reader) (diffID string, size int64, err error) {
	work, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "layer-")
	if err != nil {
		return "", 0, fmt.Errorf("add layer: %w", err)
	}
	defer removeAll(work) //nolint:errcheck // best effort; Open retries stale dirs
	dir := filepath.Join(work, "rootfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", 0, fmt.Errorf("add layer: %w", err)
	}
	h := sha256.New()
	tee := io.TeeReader(r, h)
	size, err = unpackTar(ctx, bufio.NewReaderSize(tee, 1<<20), dir)
	if err != nil {
		return "", 0, fmt.Errorf("add layer: %w", err)
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return "", 0, fmt.Errorf("add layer: %w", err)
	}
	diffID = "sha256:" + hex.EncodeToString(h.Sum(nil))
	if _, err := os.Stat(s.layerDir(diffID)); err == nil {
		return diffID, s.layerSize(diffID[len("sha256:"):]), nil
	}
	if err := s.commitLayer(dir, diffID, size); err != nil {
		return "", 0, err
	}
	return diffID, size, nil
}

// LayerDir returns where the unpacked layer diffID lives.
func (s *Store) LayerDir(diffID string) (string, error) {
	if _, err := parseDiffID(diffID); err != nil {
		return "", err
	}
	return s.layerDir(diffID), nil
}

// EnsureLayer stores the layer tar r as diffID unless it is stored already,
// failing (and storing nothing) when r's content has another digest.
func (s *Store) EnsureLayer(ctx context.Context, diffID string, r io.Reader) (int64, error) {
	return s.ensureLayer(ctx, diffID, func() (io.ReadCloser, error) { return io.NopCloser(r), nil }, nil)
}

// Unpack extracts an uncompressed tar into dir, an empty directory no one
// else writes to, with the same containment as layers: no entry resolves
// outside dir. It returns the bytes of regular files written.
func Unpack(ctx context.Context, r io.Reader, dir string) (int64, error) {
	return unpackTar(ctx, r, dir)
}
