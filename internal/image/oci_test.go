package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	ggname "github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/testutil"
)

// testImage has every kind of entry in its lower layer and a whiteout and
// an opaque dir in its upper one; the upper layer is zstd-compressed.
func testImage(t *testing.T) v1.Image {
	lower := layerOf(t, []ent{
		{name: "etc/", typ: tar.TypeDir},
		{name: "etc/keep", typ: tar.TypeReg, body: "keep", pax: map[string]string{"SCHILY.xattr.user.test": "v"}},
		{name: "etc/gone", typ: tar.TypeReg, body: "gone"},
		{name: "opq/", typ: tar.TypeDir, mode: 0o750},
		{name: "opq/old", typ: tar.TypeReg, body: "old"},
		{name: "bin/tool", typ: tar.TypeReg, body: "#!/bin/true\n", mode: 0o4755, uid: 1000, gid: 1001},
		{name: "bin/sh", typ: tar.TypeSymlink, link: "tool"},
		{name: "bin/tool2", typ: tar.TypeLink, link: "bin/tool"},
		{name: "run/fifo", typ: tar.TypeFifo, mode: 0o600},
		{name: "dev/nullish", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3},
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
	})
	upper := layerOf(t, []ent{
		{name: "etc/.wh.gone", typ: tar.TypeReg},
		{name: "opq/", typ: tar.TypeDir, mode: 0o750},
		{name: "opq/.wh..wh..opq", typ: tar.TypeReg},
		{name: "opq/new", typ: tar.TypeReg, body: "new"},
		{name: "etc/added", typ: tar.TypeReg, body: "added"},
	}, tarball.WithCompression("zstd"))
	return imageOf(t, v1.Config{Env: []string{"PATH=/bin", "FOO=bar"}, WorkingDir: "/srv"}, lower, upper)
}

func TestStoreSources(t *testing.T) {
	testutil.RequiresRoot(t) // mknod, chown, trusted xattrs or mounts
	ctx := context.Background()
	img := testImage(t)
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/test/img:v1"
	pref, err := ggname.ParseReference(ref, ggname.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(pref, img); err != nil {
		t.Fatal(err)
	}
	dockerTar := filepath.Join(t.TempDir(), "docker.tar")
	if err := tarball.WriteToFile(dockerTar, ggname.MustParseReference("hutch.test/img:v1"), img); err != nil {
		t.Fatal(err)
	}
	layoutDir := writeLayout(t, img)

	t.Run("pull missing", func(t *testing.T) {
		s, _ := newStore(t)
		missing := strings.TrimPrefix(srv.URL, "http://") + "/test/img:nope"
		if _, err := s.Pull(ctx, "x", missing, nil); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("err = %v, want not found", err)
		}
		if _, err := s.Pull(ctx, "x", "UPPER/case:ref", nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("bad ref: err = %v, want invalid argument", err)
		}
	})

	var pullProgress bytes.Buffer
	for _, tc := range []struct {
		name   string
		store  func(s *Store) (*Image, error)
		source string
	}{
		{"pull", func(s *Store) (*Image, error) { return s.Pull(ctx, "pulled", ref, &pullProgress) }, "pull:" + ref},
		{"oci-layout", func(s *Store) (*Image, error) { return s.Import(ctx, "layout", layoutDir) }, "oci-layout:" + layoutDir},
		{"oci-archive", func(s *Store) (*Image, error) { return s.Import(ctx, "archive", tarDir(t, layoutDir)) }, "oci-archive:"},
		{"docker-archive", func(s *Store) (*Image, error) { return s.Import(ctx, "docker", dockerTar) }, "docker-archive:" + dockerTar},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t)
			rec, err := tc.store(s)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(rec.Source, tc.source) {
				t.Errorf("source %q, want prefix %q", rec.Source, tc.source)
			}
			// docker save has no manifest of its own: ggcr synthesises one.
			if tc.name != "docker-archive" && rec.Digest != want.String() {
				t.Errorf("digest %s, want %s", rec.Digest, want)
			}
			if got := strings.Join(rec.Env, " "); got != "PATH=/bin FOO=bar" || rec.WorkingDir != "/srv" {
				t.Errorf("env %q workdir %q", got, rec.WorkingDir)
			}
			got, err := s.Get(rec.Name)
			if err != nil || got.Digest != rec.Digest || len(got.Layers) != 2 {
				t.Fatalf("Get = %+v, %v", got, err)
			}
			lowers := s.LowerDirs(got)
			if !strings.HasSuffix(lowers[0], strings.TrimPrefix(got.Layers[1], "sha256:")) {
				t.Errorf("LowerDirs %v: top layer must come first", lowers)
			}
			checkMerged(t, lowers)
			if tc.name == "pull" {
				for _, want := range []string{"resolving " + ref, "layer 1/2", "layer 2/2", "pulled " + ref + " as pulled"} {
					if !strings.Contains(pullProgress.String(), want) {
						t.Errorf("pull progress lacks %q:\n%s", want, pullProgress.String())
					}
				}
			}
		})
	}
}

// checkMerged mounts overlayfs as a sandbox would and checks what the
// merged tree shows.
func checkMerged(t *testing.T, lowers []string) {
	t.Helper()
	d := t.TempDir()
	merged, upper, work := filepath.Join(d, "merged"), filepath.Join(d, "upper"), filepath.Join(d, "work")
	for _, p := range []string{merged, upper, work} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	defer func() {
		if err := unix.Unmount(merged, 0); err != nil {
			t.Errorf("unmount: %v", err)
		}
	}()
	at := func(p string) string { return filepath.Join(merged, p) }

	for _, tc := range []struct{ path, content string }{
		{"etc/keep", "keep"}, {"etc/added", "added"}, {"opq/new", "new"},
	} {
		if b, err := os.ReadFile(at(tc.path)); err != nil || string(b) != tc.content {
			t.Errorf("%s = %q, %v; want %q", tc.path, b, err, tc.content)
		}
	}
	for _, p := range []string{"etc/gone", "opq/old", "etc/.wh.gone", "opq/.wh..wh..opq"} {
		if _, err := os.Lstat(at(p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s must be hidden, Lstat err = %v", p, err)
		}
	}
	if l, err := os.Readlink(at("bin/sh")); err != nil || l != "tool" {
		t.Errorf("bin/sh -> %q, %v", l, err)
	}
	var st1, st2 syscall.Stat_t
	if err := syscall.Lstat(at("bin/tool"), &st1); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Lstat(at("bin/tool2"), &st2); err != nil {
		t.Fatal(err)
	}
	if st1.Ino != st2.Ino || st1.Nlink != 2 {
		t.Errorf("hardlink: inodes %d %d, nlink %d", st1.Ino, st2.Ino, st1.Nlink)
	}
	if st1.Mode&0o7777 != 0o4755 || st1.Uid != 1000 || st1.Gid != 1001 {
		t.Errorf("bin/tool mode %o owner %d:%d, want 4755 1000:1001", st1.Mode&0o7777, st1.Uid, st1.Gid)
	}
	if fi, err := os.Lstat(at("tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("tmp mode %v, %v", fi.Mode(), err)
	}
	if fi, err := os.Lstat(at("opq")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("opq mode %v, %v", fi.Mode(), err)
	}
	if fi, err := os.Lstat(at("run/fifo")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("run/fifo: %v, %v", fi.Mode(), err)
	}
	var dst syscall.Stat_t
	if err := syscall.Lstat(at("dev/nullish"), &dst); err != nil || dst.Mode&syscall.S_IFMT != syscall.S_IFCHR || unix.Major(dst.Rdev) != 1 || unix.Minor(dst.Rdev) != 3 {
		t.Errorf("dev/nullish: mode %o rdev %d:%d, %v", dst.Mode, unix.Major(dst.Rdev), unix.Minor(dst.Rdev), err)
	}
	buf := make([]byte, 16)
	if n, err := unix.Lgetxattr(at("etc/keep"), "user.test", buf); err != nil || string(buf[:n]) != "v" {
		t.Errorf("xattr user.test = %q, %v", buf[:n], err)
	}
	if fi, err := os.Lstat(at("etc/keep")); err != nil || !fi.ModTime().Equal(testTime) {
		t.Errorf("etc/keep mtime %v, %v; want %v", fi.ModTime(), err, testTime)
	}
}

func TestLayerSharing(t *testing.T) {
	testutil.RequiresRoot(t) // mknod, chown, trusted xattrs or mounts
	ctx := context.Background()
	s, logs := newStore(t)
	common := layerOf(t, []ent{{name: "common", typ: tar.TypeReg, body: "shared"}})
	a := imageOf(t, v1.Config{}, common, layerOf(t, []ent{{name: "a", typ: tar.TypeReg, body: "a"}}))
	b := imageOf(t, v1.Config{}, common, layerOf(t, []ent{{name: "b", typ: tar.TypeReg, body: "b"}}))

	ia, err := s.Import(ctx, "a", writeLayout(t, a))
	if err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(s.LowerDirs(ia)[1], "common")
	before, err := os.Lstat(shared)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := s.Import(ctx, "b", writeLayout(t, b))
	if err != nil {
		t.Fatal(err)
	}
	if ia.Layers[0] != ib.Layers[0] || s.LowerDirs(ia)[1] != s.LowerDirs(ib)[1] {
		t.Fatalf("common layer not shared: %v vs %v", s.LowerDirs(ia), s.LowerDirs(ib))
	}
	after, err := os.Lstat(shared)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) || !before.ModTime().Equal(after.ModTime()) {
		t.Error("second import rewrote the shared layer")
	}
	if n := logs.count("unpacked layer"); n != 3 {
		t.Errorf("unpacked %d layers, want 3 (common once)", n)
	}

	// Removing a stops nothing of b; GC drops only a's own layer.
	if err := s.Remove("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("a"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get after Remove: %v", err)
	}
	removed, err := s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != ia.Layers[1] {
		t.Errorf("GC removed %v, want [%s]", removed, ia.Layers[1])
	}
	for _, d := range s.LowerDirs(ib) {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("layer of b gone after GC: %v", err)
		}
	}
	list, err := s.List()
	if err != nil || len(list) != 1 || list[0].Name != "b" {
		t.Errorf("List = %v, %v", list, err)
	}
}

func TestDiffIDMismatch(t *testing.T) {
	testutil.RequiresRoot(t) // mknod, chown, trusted xattrs or mounts
	s, _ := newStore(t)
	l := layerOf(t, []ent{{name: "f", typ: tar.TypeReg, body: "x"}})
	const wrong = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	_, err := s.ensureLayer(context.Background(), wrong, l.Uncompressed, nil)
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("err = %v, want invalid argument", err)
	}
	if _, err := os.Stat(s.layerDir(wrong)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a layer with the wrong content was kept: %v", err)
	}
}

func TestImportErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	notTar := filepath.Join(t.TempDir(), "x.tar")
	if err := os.WriteFile(notTar, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, img, path string
		want            error
	}{
		{"bad name", "Bad/Name", t.TempDir(), errdefs.ErrInvalidArgument},
		{"missing path", "x", "/nonexistent/hutch", errdefs.ErrNotFound},
		{"empty dir", "x", t.TempDir(), errdefs.ErrInvalidArgument},
		{"not a tar", "x", notTar, errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Import(ctx, tc.img, tc.path); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := s.Get("nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get missing: %v", err)
	}
	if err := s.Remove("nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Remove missing: %v", err)
	}
}

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"default", true}, {"a", true}, {"py3.12_slim-x", true}, {strings.Repeat("a", 128), true},
		{"", false}, {"-a", false}, {".a", false}, {"A", false}, {"a/b", false}, {"../x", false},
		{strings.Repeat("a", 129), false}, {"a b", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidName(tc.name)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, errdefs.ErrInvalidArgument)) {
				t.Errorf("ValidName(%q) = %v", tc.name, err)
			}
		})
	}
}
