package catalog

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/internal/blob"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
	"github.com/hutch-sh/hutch/internal/snapshot"
)

// fixture is a catalog over a real snapshot store and blob directory, with
// the sandbox records held in recs.
type fixture struct {
	c     *Catalog
	st    *snapshot.Store
	recs  []sandbox.Record
	image string // stands in for an image layer
	upper string
}

func newFixture(t *testing.T, withRemote bool) *fixture {
	t.Helper()
	st, err := snapshot.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, image: t.TempDir(), upper: t.TempDir()}
	if err := os.WriteFile(filepath.Join(f.upper, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var remote Remote
	if withRemote {
		bs, err := blob.OpenDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		remote = snapshot.Remote{Local: st, Blobs: bs}
	}
	records := func(context.Context) ([]sandbox.Record, error) { return f.recs, nil }
	f.c = New(slog.New(slog.DiscardHandler), st, remote, records)
	return f
}

func (f *fixture) capture(t *testing.T, ttl time.Duration) snapshot.Snapshot {
	t.Helper()
	rec := sandbox.Record{Name: "src", Image: "default", Lowers: []string{f.image}, Env: []string{"A=1"}}
	snap, err := f.c.Capture(context.Background(), rec, f.upper, ttl, true)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func TestCatalog(t *testing.T) {
	ctx := context.Background()
	t.Run("capture, list, resolve", func(t *testing.T) {
		f := newFixture(t, false)
		snap := f.capture(t, 0)
		if snap.Sandbox != "src" || len(snap.Lowers) != 2 || snap.Lowers[1] != f.image || !snap.ExpiresAt.IsZero() {
			t.Fatalf("snapshot %+v", snap)
		}
		f.recs = []sandbox.Record{{Name: "kid", FromSnapshot: snap.ID}}
		infos, err := f.c.List(ctx, "src")
		if err != nil || len(infos) != 1 || len(infos[0].UsedBy) != 1 || infos[0].UsedBy[0] != "kid" {
			t.Fatalf("List = %+v %v", infos, err)
		}
		if infos, _ := f.c.List(ctx, "other"); len(infos) != 0 {
			t.Errorf("List(other) = %+v, want none", infos)
		}
		root, err := f.c.Resolve(ctx, snap.ID, "")
		if err != nil || root.Image != "default" || len(root.Lowers) != 2 || root.Env[0] != "A=1" {
			t.Fatalf("Resolve = %+v %v", root, err)
		}
	})
	t.Run("errors", func(t *testing.T) {
		f := newFixture(t, false)
		snap := f.capture(t, 0)
		f.recs = []sandbox.Record{{Name: "kid", FromSnapshot: snap.ID}}
		off := New(slog.New(slog.DiscardHandler), nil, nil, nil)
		tests := []struct {
			name string
			err  error
			want error
		}{
			{"off", off.Enabled(), errdefs.ErrFailedPrecondition},
			{"off list", second(off.List(ctx, "")), errdefs.ErrFailedPrecondition},
			{"resolve another image", second(f.c.Resolve(ctx, snap.ID, "other")), errdefs.ErrInvalidArgument},
			{"resolve missing", second(f.c.Resolve(ctx, "sn-000000000000", "")), errdefs.ErrNotFound},
			{"delete in use", f.c.Delete(ctx, snap.ID), errdefs.ErrFailedPrecondition},
			{"delete missing", f.c.Delete(ctx, "sn-000000000000"), errdefs.ErrNotFound},
			{"session without a blob store", f.c.DropSession(ctx, "a"), errdefs.ErrFailedPrecondition},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if !errors.Is(tt.err, tt.want) {
					t.Fatalf("err %v, want %v", tt.err, tt.want)
				}
			})
		}
	})
	t.Run("collect expired", func(t *testing.T) {
		f := newFixture(t, false)
		keep := f.capture(t, 0)
		gone := f.capture(t, time.Nanosecond)
		if err := f.c.Collect(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.st.Get(ctx, gone.ID); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("expired snapshot: %v, want deleted", err)
		}
		if _, err := f.st.Get(ctx, keep.ID); err != nil {
			t.Errorf("kept snapshot: %v", err)
		}
	})
	t.Run("sessions", func(t *testing.T) {
		f := newFixture(t, true)
		snap := f.capture(t, 0)
		if s, err := f.c.LoadSession(ctx, "src"); s != nil || err != nil {
			t.Fatalf("LoadSession before any = %+v %v, want none", s, err)
		}
		rec := sandbox.Record{Name: "src", Image: "default", Ports: map[int]string{80: "tok"}, KeepAlive: true}
		if err := f.c.SaveSession(ctx, "src", SessionOf(rec, snap.ID)); err != nil {
			t.Fatal(err)
		}
		s, err := f.c.LoadSession(ctx, "src")
		if err != nil || s == nil || s.Snapshot != snap.ID || s.Ports[80] != "tok" || !s.KeepAlive {
			t.Fatalf("LoadSession = %+v %v", s, err)
		}
		if err := f.c.DropSession(ctx, "src"); err != nil {
			t.Fatal(err)
		}
		if s, err := f.c.LoadSession(ctx, "src"); s != nil || err != nil {
			t.Fatalf("LoadSession after drop = %+v %v, want none", s, err)
		}
	})
}

func second[T any](_ T, err error) error { return err }
