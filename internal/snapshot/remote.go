package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/hutch-sh/hutch/internal/blob"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// Snapshots in a blob store: each layer of a snapshot's own chain as
// layers/sha256/<hex>.tar.zst (an OCI layer tar, zstd-compressed, streamed
// both ways and checked against its digest on the way in), then the record
// as snapshots/<id>.json. The record is written last, so a snapshot whose
// upload broke off is not visible; a layer is written whole or not at all.

func layerKey(diffID string) string {
	return "layers/sha256/" + strings.TrimPrefix(diffID, "sha256:") + ".tar.zst"
}

func recordKey(id string) string { return "snapshots/" + id + ".json" }

// chain returns the digests of the snapshot layers at the top of lowers,
// top first: the lowers that live in this store.
func (s *Store) chain(lowers []string) []string {
	root := filepath.Join(s.dir, "layers", "layers", "sha256")
	var out []string
	for _, d := range lowers {
		if filepath.Dir(d) != root {
			break
		}
		out = append(out, "sha256:"+filepath.Base(d))
	}
	return out
}

// Push uploads snapshot id and the layers it stands on that bs lacks.
func (s *Store) Push(ctx context.Context, bs blob.Store, id string) error {
	snap, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	chain := s.chain(snap.Lowers)
	snap.Depth = len(chain)
	for i, diffID := range chain {
		if rc, err := bs.Get(ctx, layerKey(diffID)); err == nil {
			rc.Close()
			continue
		} else if !errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("push snapshot %s: %w", id, err)
		}
		if err := pushLayer(ctx, bs, diffID, snap.Lowers[i]); err != nil {
			return fmt.Errorf("push snapshot %s: %w", id, err)
		}
	}
	b, err := json.Marshal(snap)
	if err != nil {
		return err
	}
	if err := bs.Put(ctx, recordKey(id), strings.NewReader(string(b))); err != nil {
		return fmt.Errorf("push snapshot %s: %w", id, err)
	}
	return nil
}

func pushLayer(ctx context.Context, bs blob.Store, diffID, dir string) error {
	pr, pw := io.Pipe()
	go func() {
		zw, err := zstd.NewWriter(pw, zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		err = WriteLayer(ctx, zw, dir)
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
		pw.CloseWithError(err)
	}()
	err := bs.Put(ctx, layerKey(diffID), pr)
	pr.CloseWithError(errors.New("upload ended"))
	return err
}

// Pull downloads snapshot id from bs into this store, with the layers it
// stands on that are not here yet. The image layers under them must be in
// this node's image store already.
func (s *Store) Pull(ctx context.Context, bs blob.Store, id string) (Snapshot, error) {
	if _, err := s.path(id); err != nil {
		return Snapshot{}, err
	}
	rc, err := bs.Get(ctx, recordKey(id))
	if err != nil {
		return Snapshot{}, fmt.Errorf("pull snapshot %s: %w", id, err)
	}
	var snap Snapshot
	err = json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&snap)
	rc.Close()
	if err != nil || snap.ID != id {
		return Snapshot{}, fmt.Errorf("pull snapshot %s: bad record (%v): %w", id, err, errdefs.ErrFailedPrecondition)
	}
	if snap.Depth < 0 || snap.Depth > len(snap.Lowers) {
		return Snapshot{}, fmt.Errorf("pull snapshot %s: bad record (depth %d): %w", id, snap.Depth, errdefs.ErrFailedPrecondition)
	}
	// Its own layers are the top Depth lowers, named by digest wherever
	// the node that pushed it kept them.
	var chain []string
	for _, d := range snap.Lowers[:snap.Depth] {
		chain = append(chain, "sha256:"+filepath.Base(d))
	}
	lowers := make([]string, 0, len(snap.Lowers))
	for _, diffID := range chain {
		if err := s.pullLayer(ctx, bs, diffID); err != nil {
			return Snapshot{}, fmt.Errorf("pull snapshot %s: %w", id, err)
		}
		d, err := s.layers.LayerDir(diffID)
		if err != nil {
			return Snapshot{}, err
		}
		lowers = append(lowers, d)
	}
	for _, d := range snap.Lowers[len(chain):] {
		if _, err := os.Stat(d); err != nil {
			return Snapshot{}, fmt.Errorf("pull snapshot %s: image %q is not on this node (layer %s): %w", id, snap.Image, d, errdefs.ErrFailedPrecondition)
		}
		lowers = append(lowers, d)
	}
	snap.Lowers = lowers
	if err := s.Put(ctx, snap); err != nil {
		return Snapshot{}, err
	}
	return snap, nil
}

func (s *Store) pullLayer(ctx context.Context, bs blob.Store, diffID string) error {
	if d, err := s.layers.LayerDir(diffID); err != nil {
		return err
	} else if _, err := os.Stat(d); err == nil {
		return nil
	}
	rc, err := bs.Get(ctx, layerKey(diffID))
	if err != nil {
		return err
	}
	defer rc.Close()
	zr, err := zstd.NewReader(rc)
	if err != nil {
		return err
	}
	defer zr.Close()
	if _, err := s.layers.EnsureLayer(ctx, diffID, zr); err != nil {
		if errors.Is(err, errdefs.ErrInvalidArgument) {
			return fmt.Errorf("layer %s in the blob store is corrupt: %w: %w", diffID, err, errdefs.ErrFailedPrecondition)
		}
		return err
	}
	return nil
}

// Remote is a snapshot store together with the blob store its snapshots
// are pushed to and pulled from.
type Remote struct {
	Local *Store
	Blobs blob.Store
}

// Push uploads snapshot id.
func (r Remote) Push(ctx context.Context, id string) error { return r.Local.Push(ctx, r.Blobs, id) }

// Pull downloads snapshot id.
func (r Remote) Pull(ctx context.Context, id string) (Snapshot, error) {
	return r.Local.Pull(ctx, r.Blobs, id)
}

// Forget deletes snapshot id's record from the blob store; its layers stay
// for other snapshots that share them.
func (r Remote) Forget(ctx context.Context, id string) error {
	if _, err := r.Local.path(id); err != nil {
		return err
	}
	return r.Blobs.Delete(ctx, recordKey(id))
}

func sessionKey(name string) string { return "sessions/" + name + ".json" }

// SaveSession stores v as what a sandbox called name needs to wake on
// another node.
func (r Remote) SaveSession(ctx context.Context, name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return r.Blobs.Put(ctx, sessionKey(name), strings.NewReader(string(b)))
}

// LoadSession reads what SaveSession stored for name into v;
// errdefs.ErrNotFound if nothing was.
func (r Remote) LoadSession(ctx context.Context, name string, v any) error {
	rc, err := r.Blobs.Get(ctx, sessionKey(name))
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("session of %s: %w: %w", name, err, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// DropSession forgets name's session.
func (r Remote) DropSession(ctx context.Context, name string) error {
	return r.Blobs.Delete(ctx, sessionKey(name))
}
