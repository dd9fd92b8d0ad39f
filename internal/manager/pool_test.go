package manager

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/internal/runtime"
	"github.com/hutch-sh/hutch/internal/sandbox"
	"github.com/hutch-sh/hutch/internal/store"
	"github.com/hutch-sh/hutch/internal/testutil"
)

func TestWarmPoolHandsOutRenamedSandboxes(t *testing.T) {
	testutil.RequiresRoot(t)
	cache := testutil.RequiresImage(t)
	data, err := os.MkdirTemp("", "hp-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(data)
	rc, err := runtime.NewRunc(filepath.Join(data, "runc"), runtime.CgroupParent(sandbox.DaemonTag(data)), slog.New(slog.DiscardHandler))
	if err != nil {
		testutil.Unavailable(t, "runc: %v", err)
	}
	defer rc.Close()
	db, err := store.Open(filepath.Join(data, "hutch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	m, err := New(ctx, slog.New(slog.DiscardHandler), Config{DataDir: data, AgentBinary: agentBin, PoolSize: 1}, rc, defaultImage{cache}, db)
	if err != nil {
		t.Fatal(err)
	}
	// The pool's sandboxes are the dirs no named sandbox has.
	warm := func() []string {
		named := map[string]bool{}
		for _, r := range m.List() {
			named[r.ID] = true
		}
		var ids []string
		ents, _ := os.ReadDir(filepath.Join(data, "sandboxes"))
		for _, e := range ents {
			if !named[e.Name()] {
				ids = append(ids, e.Name())
			}
		}
		return ids
	}
	waitPool := func() {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, func() error {
			if m.pool.Len() < 1 {
				return errors.New("pool not filled")
			}
			return nil
		})
	}
	waitPool()
	ids := warm()
	if len(ids) != 1 {
		t.Fatalf("warm sandboxes %v, want one", ids)
	}
	warmID := ids[0]

	rec, conn, created, err := m.Ensure(ctx, "pooled", sandbox.CreateOptions{})
	if err != nil || !created {
		t.Fatalf("Ensure: created %v err %v", created, err)
	}
	if rec.ID != warmID || rec.Name != "pooled" || rec.State != sandbox.StateRunning || rec.CreatedAt.IsZero() {
		t.Fatalf("record %+v, want the warm sandbox %s named pooled", rec, warmID)
	}
	if got := run(t, conn, `echo "$(hostname) $HOSTNAME"`); got != "pooled pooled\n" {
		t.Fatalf("hostname in a pooled sandbox: %q", got)
	}
	// Another image or instance type never comes from the pool.
	waitPool()
	rec2, _, _, err := m.Ensure(ctx, "big", sandbox.CreateOptions{InstanceType: "standard"})
	if err != nil || rec2.Limits != sandbox.InstanceTypes["standard"] {
		t.Fatalf("standard sandbox: %+v %v", rec2, err)
	}
	if m.pool.Len() != 1 {
		t.Fatal("a standard sandbox was taken from the default pool")
	}
	for _, name := range []string{"pooled", "big"} {
		if err := m.Delete(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	m.Close()
	// Closing removes the pool's sandboxes: nothing is left on disk.
	ents, _ := os.ReadDir(filepath.Join(data, "sandboxes"))
	if len(ents) != 0 {
		t.Fatalf("sandbox dirs left after Close: %v", ents)
	}
	requireNoMounts(t, data)
}
