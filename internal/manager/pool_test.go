package manager

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/internal/runtime"
	"github.com/hutch-sh/hutch/internal/sandbox"
	"github.com/hutch-sh/hutch/internal/store"
)

func TestWarmPoolHandsOutRenamedSandboxes(t *testing.T) {
	requiresRoot(t)
	if _, err := os.Stat(filepath.Join(cacheDir, "images", "default.json")); err != nil {
		t.Skipf("default image not built: %v", err)
	}
	data, err := os.MkdirTemp("", "hp-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(data)
	rc, err := runtime.NewRunc(filepath.Join(data, "runc"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Skip(err)
	}
	db, err := store.Open(filepath.Join(data, "hutch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	m, err := New(ctx, slog.New(slog.DiscardHandler), Config{DataDir: data, AgentBinary: agentBin, PoolSize: 1}, rc, defaultImage{cacheDir}, db)
	if err != nil {
		t.Fatal(err)
	}
	waitPool := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for m.pool.count() < 1 {
			if time.Now().After(deadline) {
				t.Fatal("pool not filled")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitPool()
	m.pool.mu.Lock()
	warmID := m.pool.ready[0].rec.ID
	m.pool.mu.Unlock()

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
	if m.pool.count() != 1 {
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
