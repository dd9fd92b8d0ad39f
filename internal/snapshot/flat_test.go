package snapshot

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/testutil"
)

// WriteFlat of a stack hides what the stack hid: whiteouts, opaque dirs.
func TestWriteFlat(t *testing.T) {
	testutil.RequiresRoot(t)
	l1, l2, l3 := t.TempDir(), t.TempDir(), t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(l1, "d"), 0o755))
	must(os.WriteFile(filepath.Join(l1, "d/a"), []byte("a"), 0o644))
	must(os.WriteFile(filepath.Join(l1, "f"), []byte("f"), 0o644))
	must(os.MkdirAll(filepath.Join(l2, "d"), 0o755))
	must(unix.Setxattr(filepath.Join(l2, "d"), "trusted.overlay.opaque", []byte("y"), 0))
	must(os.WriteFile(filepath.Join(l2, "d/b"), []byte("b"), 0o644))
	must(unix.Mknod(filepath.Join(l3, "f"), unix.S_IFCHR, 0))
	st, err := Open(t.TempDir(), nil)
	must(err)
	_, dir, _, err := st.capture(context.Background(), func(w io.Writer) error { return WriteFlat(context.Background(), w, []string{l1, l2, l3}) })
	must(err)
	var got []string
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		rel, _ := filepath.Rel(dir, p)
		kind := ""
		if fi.Mode()&os.ModeCharDevice != 0 {
			kind = "(wh)"
		}
		if fi.IsDir() {
			buf := make([]byte, 4)
			if n, _ := unix.Getxattr(p, "trusted.overlay.opaque", buf); n > 0 {
				kind = "(opq)"
			}
		}
		got = append(got, rel+kind)
		return nil
	})
	sort.Strings(got)
	if want := ". d(opq) d/b f(wh)"; strings.Join(got, " ") != want {
		t.Errorf("flat layer: %q, want %q", strings.Join(got, " "), want)
	}
}
