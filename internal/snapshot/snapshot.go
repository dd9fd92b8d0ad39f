// Package snapshot keeps snapshots of sandbox disks: each is an immutable
// record naming a content-addressed layer (the sandbox's upper dir at the
// time, captured as an OCI layer) stacked on the layers it was taken over.
package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/image"
)

// Snapshot is the record of one snapshot.
type Snapshot struct {
	ID      string `json:"id"`
	Sandbox string `json:"sandbox"` // the sandbox it was taken of
	Image   string `json:"image"`
	// Layer is the digest of the snapshot's own layer; Lowers the overlay
	// lower dirs of a sandbox started from it, top (its own layer) first.
	Layer  string   `json:"layer"`
	Lowers []string `json:"lowers"`
	// Depth is how many of Lowers are snapshot layers (set when pushed).
	Depth     int       `json:"depth,omitempty"`
	Env       []string  `json:"env"`
	Size      int64     `json:"size"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// Expired reports whether s's TTL has run out by now.
func (s Snapshot) Expired(now time.Time) bool {
	return !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt)
}

// Store keeps snapshot records and layers under one directory:
//
//	<dir>/records/<id>.json   one snapshot
//	<dir>/layers/...           its layers, an image.Store of layers only
type Store struct {
	dir    string
	layers *image.Store
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, log *slog.Logger) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "records"), 0o700); err != nil {
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	layers, err := image.Open(filepath.Join(dir, "layers"), log)
	if err != nil {
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	return &Store{dir: dir, layers: layers}, nil
}

// FlattenAt is the number of snapshot layers a sandbox's disk may stack:
// a capture that would stack more writes them and the upper dir as one.
const FlattenAt = 8

// CaptureOver stores upper (an overlay upper dir over lowers, top first) as
// a layer and returns its digest, size and the lowers a sandbox with that
// disk stacks: the new layer on lowers or, past FlattenAt snapshot layers,
// one flattened layer on the image's. The caller keeps upper still.
func (s *Store) CaptureOver(ctx context.Context, upper string, lowers []string) (diffID string, size int64, newLowers []string, err error) {
	chain := s.chain(lowers)
	if len(chain) < FlattenAt {
		diffID, dir, size, err := s.Capture(ctx, upper)
		if err != nil {
			return "", 0, nil, err
		}
		return diffID, size, append([]string{dir}, lowers...), nil
	}
	dirs := []string{upper}
	dirs = append(dirs, lowers[:len(chain)]...)
	slices.Reverse(dirs)
	diffID, dir, size, err := s.capture(ctx, func(w io.Writer) error { return WriteFlat(ctx, w, dirs) })
	if err != nil {
		return "", 0, nil, err
	}
	return diffID, size, append([]string{dir}, lowers[len(chain):]...), nil
}

// Capture stores dir (an overlay upper dir) as a layer and returns its
// digest, its unpacked dir and size. The caller keeps dir still meanwhile.
func (s *Store) Capture(ctx context.Context, dir string) (diffID, layerDir string, size int64, err error) {
	return s.capture(ctx, func(w io.Writer) error { return WriteLayer(ctx, w, dir) })
}

func (s *Store) capture(ctx context.Context, write func(io.Writer) error) (diffID, layerDir string, size int64, err error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(write(pw)) }()
	diffID, size, err = s.layers.AddLayer(ctx, pr)
	pr.CloseWithError(errors.New("capture ended")) // unblocks the writer on failure
	if err != nil {
		return "", "", 0, fmt.Errorf("capture: %w", err)
	}
	layerDir, err = s.layers.LayerDir(diffID)
	return diffID, layerDir, size, err
}

var idRe = regexp.MustCompile(`^sn-[0-9a-f]{12}$`)

// NewID returns a fresh snapshot id.
func NewID() string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return "sn-" + hex.EncodeToString(r[:])
}

func (s *Store) path(id string) (string, error) {
	if !idRe.MatchString(id) {
		return "", fmt.Errorf("snapshot id %q: want sn- and 12 hex digits: %w", id, errdefs.ErrInvalidArgument)
	}
	return filepath.Join(s.dir, "records", id+".json"), nil
}

// Put writes rec atomically; once Put returns, the snapshot exists.
func (s *Store) Put(_ context.Context, rec Snapshot) error {
	p, err := s.path(rec.ID)
	if err != nil {
		return err
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write snapshot %s: %w", rec.ID, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write snapshot %s: %w", rec.ID, err)
	}
	return nil
}

// Get returns snapshot id.
func (s *Store) Get(_ context.Context, id string) (Snapshot, error) {
	p, err := s.path(id)
	if err != nil {
		return Snapshot{}, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return Snapshot{}, fmt.Errorf("snapshot %q: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		return Snapshot{}, err
	}
	var rec Snapshot
	if err := json.Unmarshal(b, &rec); err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %q: %w: %w", id, err, errdefs.ErrInternal)
	}
	return rec, nil
}

// List returns every snapshot, oldest first.
func (s *Store) List(ctx context.Context) ([]Snapshot, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "records"))
	if err != nil {
		return nil, err
	}
	var out []Snapshot
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !idRe.MatchString(id) {
			continue
		}
		rec, err := s.Get(ctx, id)
		if err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				continue
			}
			return nil, err
		}
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// Delete removes snapshot id's record; its layers go at the next GC.
func (s *Store) Delete(_ context.Context, id string) error {
	p, err := s.path(id)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("snapshot %q: %w", id, errdefs.ErrNotFound)
		}
		return err
	}
	return nil
}

// GC removes the layers that no snapshot and no dir in inUse (lower dirs
// of existing sandboxes) stands on.
func (s *Store) GC(ctx context.Context, inUse []string) ([]string, error) {
	recs, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	keepDir := map[string]bool{}
	for _, d := range inUse {
		keepDir[d] = true
	}
	for _, r := range recs {
		for _, d := range r.Lowers {
			keepDir[d] = true
		}
	}
	var keep []string
	for d := range keepDir {
		if filepath.Dir(d) == filepath.Join(s.dir, "layers", "layers", "sha256") {
			keep = append(keep, "sha256:"+filepath.Base(d))
		}
	}
	return s.layers.GC(ctx, keep...)
}
