package rootfs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hutch-sh/hutch/internal/testutil"
)

func TestMountUnmount(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	lower := filepath.Join(dir, "with space", "lower")
	if err := os.MkdirAll(lower, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lower, "f"), []byte("lower"), 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "with space", "root")
	if err := Mount([]string{lower}, filepath.Join(dir, "upper"), filepath.Join(dir, "work"), target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Unmount(target) })
	// mountinfo escapes the space as \040; FirstMount must still find it.
	mp, err := FirstMount(filepath.Join(dir, "with space"))
	if err != nil || mp != target {
		t.Fatalf("FirstMount = %q, %v; want %q", mp, err, target)
	}
	if err := os.WriteFile(filepath.Join(target, "g"), []byte("upper"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "upper", "g")); err != nil {
		t.Fatalf("write did not land in the upper dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(lower, "g")); !os.IsNotExist(err) {
		t.Fatalf("write reached the lower layer: %v", err)
	}
	if err := Unmount(target); err != nil {
		t.Fatal(err)
	}
	if ok, err := Mounted(dir); ok || err != nil {
		t.Fatalf("Mounted after Unmount = %v, %v", ok, err)
	}
	// Unmounting what is not mounted is fine.
	if err := Unmount(target); err != nil {
		t.Fatalf("second Unmount: %v", err)
	}
	if err := Mount(nil, "u", "w", "t"); err == nil {
		t.Fatal("Mount without layers succeeded")
	}
}
