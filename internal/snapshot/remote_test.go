package snapshot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/internal/blob"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// pushed captures an upper dir holding extra, snapshots and pushes it.
func pushed(t *testing.T, extra string) (*Store, blob.Store, Snapshot) {
	t.Helper()
	src := upper(t)
	if err := os.WriteFile(filepath.Join(src, "extra"), []byte(extra), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	layer, dir, _, err := st.Capture(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	image := t.TempDir() // stands in for an image layer on this node
	snap := Snapshot{ID: NewID(), Layer: layer, Lowers: []string{dir, image}, CreatedAt: time.Now()}
	if err := st.Put(ctx, snap); err != nil {
		t.Fatal(err)
	}
	bs, err := blob.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Push(ctx, bs, snap.ID); err != nil {
		t.Fatal(err)
	}
	return st, bs, snap
}

func TestPushPull(t *testing.T) {
	ctx := context.Background()
	_, bs, snap := pushed(t, "x")
	fresh, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fresh.Pull(ctx, bs, snap.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Lowers[1] != snap.Lowers[1] || got.Lowers[0] == snap.Lowers[0] || got.Depth != 1 {
		t.Fatalf("pulled lowers %v (depth %d), want a local layer over %s", got.Lowers, got.Depth, snap.Lowers[1])
	}
	if b, err := os.ReadFile(filepath.Join(got.Lowers[0], "workspace/hard")); err != nil || string(b) != "alpha" {
		t.Errorf("pulled layer: %q %v", b, err)
	}
	if again, err := fresh.Get(ctx, snap.ID); err != nil || again.Lowers[0] != got.Lowers[0] {
		t.Errorf("pulled record: %+v %v", again, err)
	}
}

func TestPullBadInput(t *testing.T) {
	_, bs, snap := pushed(t, "x")
	ctx := context.Background()
	fresh, _ := Open(t.TempDir(), nil)
	if _, err := fresh.Pull(ctx, bs, "sn-000000000000"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("pull of a missing snapshot: %v, want not found", err)
	}
	if _, err := fresh.Pull(ctx, bs, "../../x"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("pull of a malformed id: %v, want invalid argument", err)
	}
	// A layer whose bytes do not match its digest: refused, nothing kept.
	keys, _ := bs.List(ctx, "layers/")
	_, bs2, _ := pushed(t, "other content")
	keys2, _ := bs2.List(ctx, "layers/")
	rc, _ := bs2.Get(ctx, keys2[0])
	if err := bs.Put(ctx, keys[0], rc); err != nil { // snap's key, another layer's bytes
		t.Fatal(err)
	}
	rc.Close()
	if _, err := fresh.Pull(ctx, bs, snap.ID); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("pull of a corrupt layer: %v, want failed precondition", err)
	}
	if _, err := fresh.Get(ctx, snap.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("a failed pull left the snapshot: %v", err)
	}
	if removed, _ := fresh.GC(ctx, nil); len(removed) != 0 {
		t.Errorf("a failed pull left layers: %v", removed)
	}
}

func TestPushInterruptedLeavesNoSnapshot(t *testing.T) {
	st, _, snap := pushed(t, "x")
	bs, _ := blob.OpenDir(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := st.Push(ctx, bs, snap.ID); err == nil {
		t.Fatal("push with a cancelled context succeeded")
	}
	if keys, _ := bs.List(context.Background(), ""); len(keys) != 0 {
		t.Errorf("an interrupted push left %v", keys)
	}
}
