// Package image stores container images as content-addressed, unpacked layers shared by all images, and builds, imports and pulls them.
package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// Image is the record of one stored image.
type Image struct {
	Name       string    `json:"name"`
	Digest     string    `json:"digest"`     // manifest digest, or sha256 of the built rootfs tar
	Layers     []string  `json:"layers"`     // diffIDs ("sha256:<hex>" of the uncompressed tar), bottom first
	Env        []string  `json:"env"`        // from the image config
	WorkingDir string    `json:"workingDir"` // from the image config; may be empty
	Source     string    `json:"source"`     // "recipe:<sha256>", "oci-layout:PATH", "docker-archive:PATH", "pull:REF"
	Created    time.Time `json:"created"`
	Size       int64     `json:"size"` // bytes unpacked (regular files, all layers)
}

// Store keeps images under one root directory:
//
//	<root>/layers/sha256/<hex>/       one unpacked layer, complete or absent
//	<root>/layers/sha256/<hex>.json   its metadata (size)
//	<root>/images/<name>.json         one image record
//	<root>/tmp/                       work dirs, renamed into place when complete
//	<root>/lock                       flock held by whoever builds or imports
type Store struct {
	root string
	log  *slog.Logger
}

var nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)

// ValidName reports whether name is acceptable as an image name, with the
// rule in the error.
func ValidName(name string) error {
	if !nameRe.MatchString(name) {
		return fmt.Errorf("image name %q: must match [a-z0-9][a-z0-9._-]{0,127}: %w", name, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Open opens (creating if needed) the store at root.
func Open(root string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("image store %q: %w", root, err)
	}
	for _, d := range []string{"layers/sha256", "images", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("image store %q: %w", root, err)
		}
	}
	// The layer tree must be traversable by overlayfs for any user namespace
	// mapping the runtime may use; the records and tmp stay private.
	for _, d := range []string{"", "layers", "layers/sha256"} {
		if err := os.Chmod(filepath.Join(root, d), 0o711); err != nil {
			return nil, fmt.Errorf("image store %q: %w", root, err)
		}
	}
	s := &Store{root: root, log: log}
	s.cleanTmp()
	return s, nil
}

// Root is the directory the store lives in.
func (s *Store) Root() string { return s.root }

// cleanTmp removes work dirs left by a crashed build or import, unless
// another process is working right now.
func (s *Store) cleanTmp() {
	f, err := os.OpenFile(filepath.Join(s.root, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN) //nolint:errcheck // closing releases it anyway
	ents, _ := os.ReadDir(filepath.Join(s.root, "tmp"))
	for _, e := range ents {
		p := filepath.Join(s.root, "tmp", e.Name())
		if err := removeAll(p); err != nil {
			s.log.Warn("remove stale work dir", "path", p, "err", err)
		}
	}
}

// Get returns the image called name.
func (s *Store) Get(name string) (*Image, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.recordPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("image %q: %w", name, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", name, err)
	}
	var img Image
	if err := json.Unmarshal(b, &img); err != nil {
		return nil, fmt.Errorf("image %q: corrupt record: %w: %w", name, err, errdefs.ErrInternal)
	}
	return &img, nil
}

// List returns every image, sorted by name.
func (s *Store) List() ([]*Image, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "images"))
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var out []*Image
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || ValidName(name) != nil {
			continue // temp files of an in-flight write
		}
		img, err := s.Get(name)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Remove deletes the image record. Its layers stay until GC.
func (s *Store) Remove(name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	err := os.Remove(s.recordPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("image %q: %w", name, errdefs.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("remove image %q: %w", name, err)
	}
	return syncDir(filepath.Join(s.root, "images"))
}

// LowerDirs returns the image's unpacked layer dirs, top layer first, as
// overlayfs wants them in lowerdir.
func (s *Store) LowerDirs(img *Image) []string {
	out := make([]string, 0, len(img.Layers))
	for i := len(img.Layers) - 1; i >= 0; i-- {
		out = append(out, s.layerDir(img.Layers[i]))
	}
	return out
}

// GC removes unpacked layers that no image record references and that are
// not in keep (diffIDs still mounted by sandboxes of removed images). It
// returns the diffIDs it removed.
func (s *Store) GC(ctx context.Context, keep ...string) ([]string, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	used := map[string]bool{}
	for _, k := range keep {
		used[k] = true
	}
	imgs, err := s.List()
	if err != nil {
		return nil, err
	}
	for _, img := range imgs {
		for _, l := range img.Layers {
			used[l] = true
		}
	}
	dir := filepath.Join(s.root, "layers", "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("gc layers: %w", err)
	}
	var removed []string
	for _, e := range ents {
		if !e.IsDir() || !hexRe.MatchString(e.Name()) || used["sha256:"+e.Name()] {
			continue
		}
		// Rename first so a crash never leaves a half-deleted dir that looks complete.
		tmp, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "gc-")
		if err != nil {
			return removed, fmt.Errorf("gc layers: %w", err)
		}
		if err := os.Rename(filepath.Join(dir, e.Name()), filepath.Join(tmp, "layer")); err != nil {
			return removed, fmt.Errorf("gc layer %s: %w", e.Name(), err)
		}
		os.Remove(filepath.Join(dir, e.Name()+".json")) //nolint:errcheck // metadata is optional
		if err := os.RemoveAll(tmp); err != nil {
			return removed, fmt.Errorf("gc layer %s: %w", e.Name(), err)
		}
		removed = append(removed, "sha256:"+e.Name())
		s.log.Info("removed unused layer", "layer", "sha256:"+e.Name())
	}
	return removed, nil
}

var hexRe = regexp.MustCompile(`^[a-f0-9]{64}$`)

func (s *Store) recordPath(name string) string {
	return filepath.Join(s.root, "images", name+".json")
}

// layerDir is where the layer with diffID d lives; d has been validated
// (parseDiffID) before it reaches a record.
func (s *Store) layerDir(d string) string {
	return filepath.Join(s.root, "layers", "sha256", strings.TrimPrefix(d, "sha256:"))
}

func parseDiffID(d string) (hex string, err error) {
	hex, ok := strings.CutPrefix(d, "sha256:")
	if !ok || !hexRe.MatchString(hex) {
		return "", fmt.Errorf("layer digest %q: want sha256:<64 hex>: %w", d, errdefs.ErrInvalidArgument)
	}
	return hex, nil
}

// put writes the record atomically: temp file, fsync, rename, fsync dir.
func (s *Store) put(img *Image) error {
	if err := ValidName(img.Name); err != nil {
		return err
	}
	b, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return fmt.Errorf("image %q: %w", img.Name, err)
	}
	dir := filepath.Join(s.root, "images")
	f, err := os.CreateTemp(dir, ".tmp-"+img.Name+"-")
	if err != nil {
		return fmt.Errorf("write image %q: %w", img.Name, err)
	}
	defer os.Remove(f.Name()) //nolint:errcheck // gone after a successful rename
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write image %q: %w", img.Name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write image %q: %w", img.Name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write image %q: %w", img.Name, err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return fmt.Errorf("write image %q: %w", img.Name, err)
	}
	if err := os.Rename(f.Name(), s.recordPath(img.Name)); err != nil {
		return fmt.Errorf("write image %q: %w", img.Name, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// lock takes the store's flock, so that one process at a time builds or
// imports. It polls so that ctx can cancel the wait.
func (s *Store) lock(ctx context.Context) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(s.root, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("image store lock: %w", err)
	}
	logged := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("image store lock: %w", err)
		}
		if !logged {
			s.log.Info("waiting for another build or import to finish", "lock", f.Name())
			logged = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("image store lock: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return func() { f.Close() }, nil
}
