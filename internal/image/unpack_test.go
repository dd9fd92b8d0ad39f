package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/testutil"
)

// TestMaliciousLayers imports layers that try to write outside their
// directory. Each must fail with ErrInvalidArgument or land inside the
// layer; the host dir and files they aim at must stay untouched.
func TestMaliciousLayers(t *testing.T) {
	testutil.RequiresRoot(t) // mknod, chown, trusted xattrs or mounts
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		ents func(host string) []ent
		// fails: the import must be refused; otherwise inside (if set) must
		// exist in the layer, relative to its root.
		fails  bool
		inside func(host string) string
	}{
		{
			name:  "dotdot",
			ents:  func(string) []ent { return []ent{{name: "../evil", typ: tar.TypeReg, body: "x"}} },
			fails: true,
		},
		{
			name:  "dotdot deep",
			ents:  func(string) []ent { return []ent{{name: "a/../../../../evil", typ: tar.TypeReg, body: "x"}} },
			fails: true,
		},
		{
			name:   "absolute",
			ents:   func(host string) []ent { return []ent{{name: host + "/evil", typ: tar.TypeReg, body: "x"}} },
			inside: func(host string) string { return host + "/evil" },
		},
		{
			name: "through absolute symlink",
			ents: func(host string) []ent {
				return []ent{{name: "link", typ: tar.TypeSymlink, link: host}, {name: "link/evil", typ: tar.TypeReg, body: "x"}}
			},
			inside: func(host string) string { return host + "/evil" },
		},
		{
			name: "through relative symlink",
			ents: func(host string) []ent {
				return []ent{{name: "link", typ: tar.TypeSymlink, link: "../../../../../../../.." + host}, {name: "link/evil", typ: tar.TypeReg, body: "x"}}
			},
			inside: func(host string) string { return host + "/evil" },
		},
		{
			name: "through symlink chain",
			ents: func(host string) []ent {
				return []ent{
					{name: "a", typ: tar.TypeSymlink, link: "b/c"},
					{name: "b", typ: tar.TypeSymlink, link: "/"},
					{name: "c", typ: tar.TypeSymlink, link: host},
					{name: "a/evil", typ: tar.TypeReg, body: "x"},
				}
			},
			inside: func(host string) string { return host + "/evil" },
		},
		{
			name: "symlink dir entry then chmod",
			ents: func(host string) []ent {
				return []ent{{name: "d", typ: tar.TypeSymlink, link: host}, {name: "d/", typ: tar.TypeDir, mode: 0o777}}
			},
			inside: func(string) string { return "d" },
		},
		{
			name: "file over symlink",
			ents: func(host string) []ent {
				return []ent{{name: "f", typ: tar.TypeSymlink, link: host + "/victim"}, {name: "f", typ: tar.TypeReg, body: "x", mode: 0o777}}
			},
			inside: func(string) string { return "f" },
		},
		{
			name: "whiteout through symlink",
			ents: func(host string) []ent {
				return []ent{{name: "link", typ: tar.TypeSymlink, link: host}, {name: "link/.wh.victim", typ: tar.TypeReg}}
			},
			inside: func(host string) string { return host + "/victim" },
		},
		{
			name: "opaque through symlink",
			ents: func(host string) []ent {
				return []ent{{name: "link", typ: tar.TypeSymlink, link: host}, {name: "link/.wh..wh..opq", typ: tar.TypeReg}}
			},
			inside: func(host string) string { return host },
		},
		{
			name: "hardlink to host file",
			ents: func(host string) []ent {
				return []ent{{name: "hl", typ: tar.TypeLink, link: host + "/victim"}}
			},
			fails: true,
		},
		{
			name: "hardlink through symlink",
			ents: func(host string) []ent {
				return []ent{{name: "s", typ: tar.TypeSymlink, link: host}, {name: "hl", typ: tar.TypeLink, link: "s/victim"}}
			},
			fails: true,
		},
		{
			name: "hardlink dotdot",
			ents: func(string) []ent {
				return []ent{{name: "hl", typ: tar.TypeLink, link: "../../../../../../etc/passwd"}}
			},
			fails: true,
		},
		{
			name: "chown through symlink",
			ents: func(host string) []ent {
				return []ent{{name: "s", typ: tar.TypeSymlink, link: host + "/victim", uid: 4242, gid: 4242}}
			},
			inside: func(string) string { return "s" },
		},
		{
			name: "overlay xattr smuggled",
			ents: func(string) []ent {
				return []ent{{name: "d/", typ: tar.TypeDir, pax: map[string]string{"SCHILY.xattr.trusted.overlay.redirect": "/etc"}}}
			},
			inside: func(string) string { return "d" },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t)
			host := t.TempDir() // what the layer aims at
			victim := filepath.Join(host, "victim")
			if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
				t.Fatal(err)
			}
			hostBefore := snapshot(t, host)

			img := imageOf(t, v1.Config{}, layerOf(t, tc.ents(host)))
			rec, err := s.Import(ctx, "evil", writeLayout(t, img))
			if tc.fails {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("import err = %v, want invalid argument", err)
				}
			} else {
				if err != nil {
					t.Fatalf("import: %v", err)
				}
				layer := s.LowerDirs(rec)[0]
				if _, err := os.Lstat(filepath.Join(layer, tc.inside(host))); err != nil {
					t.Errorf("expected %s inside the layer: %v", tc.inside(host), err)
				}
				if tc.name == "overlay xattr smuggled" {
					if _, err := unix.Lgetxattr(filepath.Join(layer, "d"), "trusted.overlay.redirect", make([]byte, 64)); err == nil {
						t.Error("trusted.overlay.redirect from the layer was applied")
					}
				}
			}
			if got := snapshot(t, host); got != hostBefore {
				t.Errorf("host dir changed:\nbefore %s\nafter  %s", hostBefore, got)
			}
			// Nothing named evil anywhere in the store but inside a layer dir.
			filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error { //nolint:errcheck // test walk
				if err == nil && d.Name() == "evil" && !strings.HasPrefix(p, filepath.Join(s.root, "layers", "sha256")+"/") {
					t.Errorf("written outside a layer: %s", p)
				}
				return nil
			})
			if _, err := os.Stat(filepath.Join(filepath.Dir(s.root), "evil")); err == nil {
				t.Error("evil written next to the store")
			}
		})
	}
}

// snapshot describes a dir tree: names, modes, owners, sizes, nlinks and
// the opaque xattr, enough to see any write through an escape.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		x, _ := unix.Lgetxattr(p, "trusted.overlay.opaque", make([]byte, 8))
		fmt.Fprintf(&b, "%s mode=%o owner=%d:%d size=%d nlink=%d opaque=%d; ", strings.TrimPrefix(p, dir), st.Mode, st.Uid, st.Gid, st.Size, st.Nlink, x)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestCleanEntryPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{in: "./", want: ""},
		{in: "/", want: ""},
		{in: "a/b", want: "a/b"},
		{in: "./a//b/", want: "a/b"},
		{in: "/abs/x", want: "abs/x"},
		{in: "a/./b", want: "a/b"},
		{in: "..", bad: true},
		{in: "a/../b", bad: true},
		{in: "../x", bad: true},
		{in: "a/b/..", bad: true},
		{in: "a\x00b", bad: true},
		{in: "..a/b..", want: "..a/b.."},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := cleanEntryPath(tc.in)
			if tc.bad {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("cleanEntryPath(%q) = %q, %v; want invalid argument", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("cleanEntryPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestRemoveAllRefusesMounts(t *testing.T) {
	testutil.RequiresRoot(t) // mknod, chown, trusted xattrs or mounts
	d := t.TempDir()
	m := filepath.Join(d, "sub", "mnt")
	if err := os.MkdirAll(m, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", m, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(m, "keep")
	if err := os.WriteFile(keep, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := removeAll(d); err == nil {
		t.Error("removeAll went ahead with a mount below")
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("file on the mount deleted: %v", err)
	}
	if err := unix.Unmount(m, 0); err != nil {
		t.Fatal(err)
	}
	if err := removeAll(d); err != nil {
		t.Errorf("removeAll after unmount: %v", err)
	}
}
