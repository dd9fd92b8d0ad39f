package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// OpenDir opens the directory at the sandbox path reqPath for reading (a
// symlink to a directory inside the root is followed) and returns it with
// the path made absolute and clean. Errors are typed and name op.
func (s *Service) OpenDir(op, reqPath string) (*os.File, string, error) {
	p, err := sandboxPath(reqPath)
	if err != nil {
		return nil, "", err
	}
	h, err := pathrs.OpenInRoot(s.root, p)
	if err != nil {
		return nil, "", s.pathErr(op, p, err)
	}
	d, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	h.Close()
	if errors.Is(err, unix.ENOTDIR) {
		return nil, "", fmt.Errorf("%s %q: not a directory: %w", op, p, errdefs.ErrFailedPrecondition)
	}
	if err != nil {
		return nil, "", s.pathErr(op, p, err)
	}
	return d, p, nil
}

// listDir lists the directory p (a symlink to a directory inside the root is
// followed) sorted by path. Recursion never follows symlinks.
func (s *Service) listDir(ctx context.Context, reqPath string, recursive, excludeHidden bool) ([]*hutchv1.FileInfo, error) {
	d, p, err := s.OpenDir("list", reqPath)
	if err != nil {
		return nil, err
	}
	w := &walker{s: s, path: p, recursive: recursive, excludeHidden: excludeHidden}
	err = w.walk(ctx, d, p)
	d.Close()
	if err != nil {
		return nil, err
	}
	sort.Slice(w.out, func(i, j int) bool { return w.out[i].Path < w.out[j].Path })
	return w.out, nil
}

type walker struct {
	s             *Service
	path          string // the listed directory
	recursive     bool
	excludeHidden bool
	out           []*hutchv1.FileInfo
}

// walk appends the entries of the open directory d, at sandbox path p.
func (w *walker) walk(ctx context.Context, d *os.File, p string) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		names, rerr := d.Readdirnames(1024)
		for _, name := range names {
			if err := w.add(ctx, d, p, name); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return w.s.pathErr("list", p, rerr)
		}
	}
}

func (w *walker) add(ctx context.Context, d *os.File, dir, name string) error {
	if w.excludeHidden && name[0] == '.' {
		return nil
	}
	p := path.Join(dir, name)
	fi, err := entryInfo(int(d.Fd()), name, p)
	if errors.Is(err, unix.ENOENT) {
		return nil // removed while listing
	}
	if err != nil {
		return w.s.pathErr("stat", p, err)
	}
	if len(w.out) >= w.s.maxEntries {
		return fmt.Errorf("list %q: more than %d entries; list a smaller tree: %w", w.path, w.s.maxEntries, errdefs.ErrResourceExhausted)
	}
	w.out = append(w.out, fi)
	if !w.recursive || fi.Type != hutchv1.FileType_FILE_TYPE_DIRECTORY {
		return nil
	}
	fd, err := unix.Openat(int(d.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return w.s.pathErr("list", p, err)
	}
	sub := os.NewFile(uintptr(fd), p)
	defer sub.Close()
	return w.walk(ctx, sub, p)
}
