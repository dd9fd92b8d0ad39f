package snapshot

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// WriteLayer writes the overlayfs dir (an upper dir, or an unpacked layer)
// as an OCI layer tar: overlay whiteouts (0/0 character devices) become
// .wh.NAME entries and opaque dirs get a .wh..wh..opq entry, so the image
// store's unpacker turns them back into overlay whiteouts. Entries are
// sorted and times kept, so equal trees give equal digests.
func WriteLayer(ctx context.Context, w io.Writer, dir string) error {
	return WriteTree(ctx, w, dir, nil)
}

// WriteTree is WriteLayer leaving out what skip returns true for (a dir
// with everything in it); rel is slash-separated, relative to dir.
func WriteTree(ctx context.Context, w io.Writer, dir string, skip func(rel string, isDir bool) bool) error {
	tw := tar.NewWriter(w)
	if err := writeTree(ctx, tw, dir, skip); err != nil {
		return err
	}
	return tw.Close()
}

// writeTree writes dir's entries to tw.
func writeTree(ctx context.Context, tw *tar.Writer, dir string, skip func(rel string, isDir bool) bool) error {
	links := map[uint64]string{} // inode → first path, for hardlinks
	err := walkSorted(dir, func(p, rel string, fi os.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if skip != nil && skip(rel, fi.IsDir()) {
			return filepath.SkipDir
		}
		return writeEntry(tw, p, rel, fi, links)
	})
	if err != nil {
		return fmt.Errorf("write layer of %s: %w", dir, err)
	}
	return nil
}

// WriteFlat writes overlay layer dirs, bottom first, as one layer: what a
// later layer changes replaces what earlier ones had, and what a later
// layer hides (under a whiteout, a non-directory or an opaque dir) is left
// out rather than whited out, since overlayfs does not filter whiteouts
// inside an opaque dir of a lower layer.
func WriteFlat(ctx context.Context, w io.Writer, dirs []string) error {
	tw := tar.NewWriter(w)
	for j, dir := range dirs {
		c := cutter{later: dirs[j+1:], memo: map[string]bool{}}
		if err := writeTree(ctx, tw, dir, func(rel string, _ bool) bool { return c.cut(path.Dir(rel)) }); err != nil {
			return err
		}
	}
	return tw.Close()
}

// cutter reports whether later layers hide everything under a dir.
type cutter struct {
	later []string
	memo  map[string]bool
}

func (c *cutter) cut(dir string) bool {
	if dir == "." || dir == "" {
		return false
	}
	if v, ok := c.memo[dir]; ok {
		return v
	}
	v := c.cut(path.Dir(dir))
	for _, l := range c.later {
		if v {
			break
		}
		p := filepath.Join(l, filepath.FromSlash(dir))
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		if !fi.IsDir() {
			v = true
			break
		}
		buf := make([]byte, 4)
		if n, err := unix.Lgetxattr(p, "trusted.overlay.opaque", buf); err == nil && string(buf[:n]) == "y" {
			v = true
		}
	}
	c.memo[dir] = v
	return v
}

// walkSorted visits dir's entries depth first in name order; rel is
// slash-separated and relative to dir.
func walkSorted(dir string, fn func(p, rel string, fi os.FileInfo) error) error {
	var walk func(p, rel string) error
	walk = func(p, rel string) error {
		ents, err := os.ReadDir(p)
		if err != nil {
			return err
		}
		sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
		for _, e := range ents {
			cp, crel := filepath.Join(p, e.Name()), join(rel, e.Name())
			fi, err := os.Lstat(cp)
			if err != nil {
				return err
			}
			if err := fn(cp, crel, fi); err == filepath.SkipDir {
				continue
			} else if err != nil {
				return err
			}
			if fi.IsDir() {
				if err := walk(cp, crel); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(dir, "")
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func writeEntry(tw *tar.Writer, p, rel string, fi os.FileInfo, links map[uint64]string) error {
	if fi.Mode()&fs.ModeSocket != 0 {
		// A socket belongs to the process that listens on it and has no
		// contents; like OCI image layers, a snapshot leaves it out (code
		// kernels keep theirs in /tmp).
		return nil
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0 {
		d, name := filepath.Split(rel)
		return tw.WriteHeader(&tar.Header{Name: d + ".wh." + name, Typeflag: tar.TypeReg, Mode: 0o600, ModTime: fi.ModTime(), Format: tar.FormatPAX})
	}
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		l, err := os.Readlink(p)
		if err != nil {
			return err
		}
		link = l
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	hdr.Name = rel
	hdr.Uname, hdr.Gname = "", ""
	hdr.Format = tar.FormatPAX
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{} // reading changes atime: keep digests stable
	if fi.IsDir() {
		hdr.Name += "/"
	}
	if fi.Mode().IsRegular() && st.Nlink > 1 {
		if first, ok := links[st.Ino]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
		} else {
			links[st.Ino] = rel
		}
	}
	opaque, err := xattrs(p, hdr)
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	if opaque {
		return tw.WriteHeader(&tar.Header{Name: rel + "/.wh..wh..opq", Typeflag: tar.TypeReg, Mode: 0o600, ModTime: fi.ModTime(), Format: tar.FormatPAX})
	}
	return nil
}

// xattrs records p's extended attributes in hdr, except overlayfs's own,
// and reports whether p is an opaque dir.
func xattrs(p string, hdr *tar.Header) (opaque bool, err error) {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		if err == unix.ENOTSUP {
			return false, nil
		}
		return false, fmt.Errorf("list xattrs of %s: %w", p, err)
	}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			continue // gone meanwhile, or unreadable: not part of the capture
		}
		if strings.HasPrefix(name, "trusted.overlay.") {
			opaque = opaque || (name == "trusted.overlay.opaque" && string(v[:m]) == "y")
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+name] = string(v[:m])
	}
	return opaque, nil
}
