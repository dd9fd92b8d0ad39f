package image

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// layerMeta sits beside an unpacked layer dir (never inside: the dir is a rootfs).
type layerMeta struct {
	Size int64 `json:"size"`
}

// ensureLayer makes sure the layer with the given diffID is unpacked and
// returns its unpacked size. A layer already present is reused untouched;
// otherwise open's stream is unpacked into a work dir, checked against
// diffID and renamed into place, so a layer dir is always complete.
func (s *Store) ensureLayer(ctx context.Context, diffID string, open func() (io.ReadCloser, error), onBytes func(int64)) (int64, error) {
	hx, err := parseDiffID(diffID)
	if err != nil {
		return 0, err
	}
	final := s.layerDir(diffID)
	if _, err := os.Stat(final); err == nil {
		s.log.Debug("layer present", "layer", diffID)
		return s.layerSize(hx), nil
	}
	work, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "layer-")
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", diffID, err)
	}
	defer removeAll(work) //nolint:errcheck // best effort; Open retries stale dirs
	dir := filepath.Join(work, "rootfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return 0, fmt.Errorf("layer %s: %w", diffID, err)
	}
	rc, err := open()
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", diffID, err)
	}
	defer rc.Close()
	h := sha256.New()
	var r io.Reader = io.TeeReader(rc, h)
	if onBytes != nil {
		r = &countReader{r: r, fn: onBytes}
	}
	start := time.Now()
	size, err := unpackTar(ctx, bufio.NewReaderSize(r, 1<<20), dir)
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", diffID, err)
	}
	// The digest covers the whole stream, including tar padding after the end marker.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return 0, fmt.Errorf("layer %s: %w", diffID, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID {
		return 0, fmt.Errorf("layer %s: content has digest %s: %w", diffID, got, errdefs.ErrInvalidArgument)
	}
	if err := s.commitLayer(dir, diffID, size); err != nil {
		return 0, err
	}
	s.log.Info("unpacked layer", "layer", diffID, "size", size, "took", time.Since(start).Round(time.Millisecond))
	return size, nil
}

// commitLayer moves a complete unpacked layer dir into place as diffID.
func (s *Store) commitLayer(dir, diffID string, size int64) error {
	final := s.layerDir(diffID)
	mb, _ := json.Marshal(layerMeta{Size: size})
	if err := os.WriteFile(final+".json", mb, 0o644); err != nil {
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	if err := os.Rename(dir, final); err != nil {
		if _, serr := os.Stat(final); serr == nil {
			return nil // another writer finished the same layer first
		}
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	return syncDir(filepath.Dir(final))
}

func (s *Store) layerSize(hx string) int64 {
	b, err := os.ReadFile(filepath.Join(s.root, "layers", "sha256", hx+".json"))
	if err != nil {
		return 0
	}
	var m layerMeta
	if json.Unmarshal(b, &m) != nil {
		return 0
	}
	return m.Size
}

type countReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.fn(c.n)
	return n, err
}

// cleanEntryPath turns a tar entry name into a path relative to the layer
// root ("" for the root itself). Absolute names are taken relative to the
// root, as docker does; ".." components are refused outright: no
// legitimate layer has them.
func cleanEntryPath(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("tar entry %q: NUL in name: %w", name, errdefs.ErrInvalidArgument)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("tar entry %q: path escapes the layer: %w", name, errdefs.ErrInvalidArgument)
		}
	}
	return strings.TrimPrefix(path.Clean("/"+name), "/"), nil
}

type unpacker struct {
	root string // absolute, the layer dir being filled
	dirs []dirTime
	buf  []byte
	size int64
}

type dirTime struct {
	path         string
	atime, mtime time.Time
}

// unpackTar extracts an uncompressed layer tar into root (an empty dir no
// one else writes to), converting OCI whiteouts to overlayfs ones. Every
// entry's parent is resolved with securejoin, so neither "..", absolute
// names nor symlinks from earlier entries can reach outside root. It
// returns the bytes of regular files written.
func unpackTar(ctx context.Context, r io.Reader, root string) (int64, error) {
	u := &unpacker{root: root, buf: make([]byte, 1<<20)}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("read tar: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		if err := u.entry(hdr, tr); err != nil {
			return 0, err
		}
	}
	// Directory times last: creating children changed them.
	for i := len(u.dirs) - 1; i >= 0; i-- {
		d := u.dirs[i]
		if err := setTimes(d.path, d.atime, d.mtime); err != nil {
			return 0, err
		}
	}
	return u.size, nil
}

// parent resolves (creating if needed) the directory rel inside the root.
func (u *unpacker) parent(rel string) (string, error) {
	if rel == "." || rel == "" {
		return u.root, nil
	}
	p, err := securejoin.SecureJoin(u.root, rel)
	if err != nil {
		return "", fmt.Errorf("tar entry dir %q: %w: %w", rel, err, errdefs.ErrInvalidArgument)
	}
	if p != u.root && !strings.HasPrefix(p, u.root+"/") {
		return "", fmt.Errorf("tar entry dir %q: resolves outside the layer: %w", rel, errdefs.ErrInvalidArgument)
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return "", fmt.Errorf("tar entry dir %q: %w: %w", rel, err, errdefs.ErrInvalidArgument)
	}
	return p, nil
}

func (u *unpacker) entry(hdr *tar.Header, tr io.Reader) error {
	rel, err := cleanEntryPath(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "" {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("tar entry %q: the root must be a directory: %w", hdr.Name, errdefs.ErrInvalidArgument)
		}
		return u.meta(u.root, hdr)
	}
	dir, base := path.Split(rel)
	parent, err := u.parent(dir)
	if err != nil {
		return err
	}
	switch {
	case base == ".wh..wh..opq":
		// overlayfs honours the opaque xattr on lower layers too.
		if err := unix.Lsetxattr(parent, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
			return fmt.Errorf("opaque dir %q: %w", dir, err)
		}
		return nil
	case strings.HasPrefix(base, ".wh..wh."):
		return nil // aufs bookkeeping (hardlink dirs), meaningless here
	case strings.HasPrefix(base, ".wh."):
		name := strings.TrimPrefix(base, ".wh.")
		if name == "" || name == "." || name == ".." {
			return fmt.Errorf("tar entry %q: bad whiteout: %w", hdr.Name, errdefs.ErrInvalidArgument)
		}
		target := filepath.Join(parent, name)
		if err := makeRoom(target, false); err != nil {
			return err
		}
		if err := unix.Mknod(target, unix.S_IFCHR, 0); err != nil {
			return fmt.Errorf("whiteout %q: %w", rel, err)
		}
		return u.meta(target, hdr)
	}
	target := filepath.Join(parent, base)
	if err := makeRoom(target, hdr.Typeflag == tar.TypeDir); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse:
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return fmt.Errorf("file %q: %w", rel, err)
		}
		n, err := io.CopyBuffer(f, tr, u.buf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("file %q: %w", rel, err)
		}
		u.size += n
	case tar.TypeDir:
		if err := os.Mkdir(target, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("dir %q: %w", rel, err)
		}
	case tar.TypeSymlink:
		// The target is only ever resolved inside the container's root.
		if err := os.Symlink(hdr.Linkname, target); err != nil {
			return fmt.Errorf("symlink %q: %w", rel, err)
		}
	case tar.TypeLink:
		return u.hardlink(hdr, rel, target)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(target, mode|uint32(hdr.Mode&0o7777), int(dev)); err != nil {
			return fmt.Errorf("device %q: %w", rel, err)
		}
	case tar.TypeXGlobalHeader:
		return nil
	default:
		return fmt.Errorf("tar entry %q: unsupported type %q: %w", hdr.Name, hdr.Typeflag, errdefs.ErrInvalidArgument)
	}
	return u.meta(target, hdr)
}

// makeRoom removes whatever a later entry replaces, keeping a directory that a
// directory entry only updates. It never follows a symlink at target.
func makeRoom(target string, keepDir bool) error {
	fi, err := os.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("replace %q: %w", target, err)
	}
	if fi.IsDir() && keepDir {
		return nil
	}
	if err := os.RemoveAll(target); err != nil {
		return fmt.Errorf("replace %q: %w", target, err)
	}
	return nil
}

// hardlink links to an earlier entry of the same layer; the link name is
// resolved like any entry name, so it cannot reach outside the layer.
func (u *unpacker) hardlink(hdr *tar.Header, rel, target string) error {
	lrel, err := cleanEntryPath(hdr.Linkname)
	if err != nil {
		return err
	}
	if lrel == "" {
		return fmt.Errorf("hardlink %q: target is the root: %w", rel, errdefs.ErrInvalidArgument)
	}
	ldir, lbase := path.Split(lrel)
	lparent, err := u.parent(ldir)
	if err != nil {
		return err
	}
	src := filepath.Join(lparent, lbase)
	fi, err := os.Lstat(src)
	if err != nil || fi.IsDir() {
		return fmt.Errorf("hardlink %q: target %q is not an earlier file of this layer: %w", rel, hdr.Linkname, errdefs.ErrInvalidArgument)
	}
	// link(2) does not follow a symlink at src: a link to a symlink is a symlink.
	if err := os.Link(src, target); err != nil {
		return fmt.Errorf("hardlink %q: %w", rel, err)
	}
	return nil
}

// meta applies ownership, xattrs, mode and times, in that order: chown
// clears setuid bits, so the mode comes after it.
func (u *unpacker) meta(p string, hdr *tar.Header) error {
	if err := unix.Lchown(p, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown %q: %w", hdr.Name, err)
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if strings.HasPrefix(name, "trusted.overlay.") {
			continue // only whiteout conversion may steer overlayfs
		}
		if err := unix.Lsetxattr(p, name, []byte(v), 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
				continue // e.g. security.selinux on a host without it
			}
			return fmt.Errorf("xattr %s on %q: %w", name, hdr.Name, err)
		}
	}
	isLink := hdr.Typeflag == tar.TypeSymlink
	if !isLink {
		if err := unix.Chmod(p, uint32(hdr.Mode&0o7777)); err != nil {
			return fmt.Errorf("chmod %q: %w", hdr.Name, err)
		}
	}
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	if hdr.Typeflag == tar.TypeDir {
		u.dirs = append(u.dirs, dirTime{path: p, atime: atime, mtime: hdr.ModTime})
		return nil
	}
	return setTimes(p, atime, hdr.ModTime)
}

func setTimes(p string, atime, mtime time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times %q: %w", p, err)
	}
	return nil
}
