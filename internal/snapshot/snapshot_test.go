package snapshot

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/testutil"
)

// upper builds what an overlay upper dir holds: files, a hardlink, a
// symlink, a whiteout, an opaque dir and an xattr.
func upper(t *testing.T) string {
	t.Helper()
	testutil.RequiresRoot(t) // whiteouts are device nodes, opaque dirs trusted xattrs
	d := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(d, "workspace/sub"), 0o755))
	must(os.WriteFile(filepath.Join(d, "workspace/a"), []byte("alpha"), 0o640))
	must(os.Link(filepath.Join(d, "workspace/a"), filepath.Join(d, "workspace/hard")))
	must(os.Symlink("a", filepath.Join(d, "workspace/sym")))
	must(unix.Mknod(filepath.Join(d, "workspace/gone"), unix.S_IFCHR, 0))
	must(os.MkdirAll(filepath.Join(d, "opaque"), 0o700))
	must(unix.Setxattr(filepath.Join(d, "opaque"), "trusted.overlay.opaque", []byte("y"), 0))
	must(unix.Setxattr(filepath.Join(d, "workspace/a"), "user.note", []byte("hi"), 0))
	return d
}

func TestCaptureRoundTrip(t *testing.T) {
	src := upper(t)
	// A live kernel's socket: left out, and no reason to fail.
	ln, err := net.Listen("unix", filepath.Join(src, "workspace/kernel.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	st, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id1, dir, size, err := st.Capture(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "workspace/kernel.sock")); !os.IsNotExist(err) {
		t.Errorf("a socket was captured: %v", err)
	}
	if size != 5 {
		t.Errorf("size %d, want 5 (one file, hardlinked)", size)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "workspace/a")); string(b) != "alpha" {
		t.Errorf("file %q", b)
	}
	var a, h unix.Stat_t
	_ = unix.Stat(filepath.Join(dir, "workspace/a"), &a)
	_ = unix.Stat(filepath.Join(dir, "workspace/hard"), &h)
	if a.Ino != h.Ino || a.Mode&0o777 != 0o640 {
		t.Errorf("hardlink lost (inodes %d %d) or mode %o", a.Ino, h.Ino, a.Mode&0o777)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "workspace/sym")); l != "a" {
		t.Errorf("symlink -> %q", l)
	}
	var w unix.Stat_t
	if err := unix.Lstat(filepath.Join(dir, "workspace/gone"), &w); err != nil || w.Mode&unix.S_IFMT != unix.S_IFCHR || w.Rdev != 0 {
		t.Errorf("whiteout: %v mode %o rdev %d", err, w.Mode, w.Rdev)
	}
	buf := make([]byte, 8)
	if n, err := unix.Getxattr(filepath.Join(dir, "opaque"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque dir: %v %q", err, buf[:n])
	}
	if n, err := unix.Getxattr(filepath.Join(dir, "workspace/a"), "user.note", buf); err != nil || string(buf[:n]) != "hi" {
		t.Errorf("xattr: %v %q", err, buf[:n])
	}
	// The same tree, read again later, has the same digest.
	time.Sleep(10 * time.Millisecond)
	_, _ = os.ReadFile(filepath.Join(src, "workspace/a")) // moves atime
	id2, dir2, _, err := st.Capture(ctx, src)
	if err != nil || id2 != id1 || dir2 != dir {
		t.Errorf("second capture %s %s %v, want %s %s", id2, dir2, err, id1, dir)
	}
}

func TestRecordsAndGC(t *testing.T) {
	src := upper(t)
	st, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	layer, dir, _, err := st.Capture(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	snap := Snapshot{ID: NewID(), Sandbox: "s", Layer: layer, Lowers: []string{dir, "/image/layer"}, CreatedAt: time.Now()}
	if err := st.Put(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Get(ctx, snap.ID); err != nil || got.Layer != layer {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if _, err := st.GC(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("GC removed a layer a snapshot stands on: %v", err)
	}
	if err := st.Delete(ctx, snap.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GC(ctx, []string{dir}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("GC removed a layer a sandbox stands on: %v", err)
	}
	if removed, err := st.GC(ctx, nil); err != nil || len(removed) != 1 {
		t.Errorf("GC of an unused layer: %v %v", removed, err)
	}
	for _, c := range []struct {
		id   string
		want error
	}{{"sn-000000000000", errdefs.ErrNotFound}, {"../x", errdefs.ErrInvalidArgument}, {"", errdefs.ErrInvalidArgument}} {
		if _, err := st.Get(ctx, c.id); !errors.Is(err, c.want) {
			t.Errorf("Get(%q) = %v, want %v", c.id, err, c.want)
		}
	}
}
