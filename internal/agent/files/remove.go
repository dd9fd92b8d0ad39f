package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// remove deletes p; a symlink is removed, never its target.
func (s *Service) remove(ctx context.Context, reqPath string, recursive bool) error {
	p, err := sandboxPath(reqPath)
	if err != nil {
		return err
	}
	if p == "/" {
		return fmt.Errorf("remove \"/\": refusing to remove the sandbox root: %w", errdefs.ErrInvalidArgument)
	}
	e, err := s.lookup(p, false)
	if missingDir(err) {
		return fmt.Errorf("remove %q: %w", p, errnoError(unix.ENOENT))
	}
	if err != nil {
		return fmt.Errorf("remove %q: %w", p, err)
	}
	defer e.close()
	st, err := e.lstat()
	if err != nil {
		return s.pathErr("remove", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := unix.Unlinkat(e.fd(), e.name, 0); err != nil {
			return s.pathErr("remove", p, err)
		}
		return nil
	}
	if recursive {
		err = removeTree(ctx, e.fd(), e.name)
	} else {
		err = unix.Unlinkat(e.fd(), e.name, unix.AT_REMOVEDIR)
	}
	if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("remove %q: %w (set recursive)", p, errnoError(unix.ENOTEMPTY))
	}
	if err != nil {
		return s.pathErr("remove", p, err)
	}
	return nil
}

// removeTree removes name in dirfd and everything under it. Directories are
// opened with O_NOFOLLOW relative to their parent, so a symlink swapped in
// anywhere is unlinked rather than followed.
func removeTree(ctx context.Context, dirfd int, name string) error {
	unlinkErr := unix.Unlinkat(dirfd, name, 0)
	if unlinkErr == nil || errors.Is(unlinkErr, unix.ENOENT) {
		return nil
	}
	if !errors.Is(unlinkErr, unix.EISDIR) && !errors.Is(unlinkErr, unix.EPERM) {
		return unlinkErr
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			return unlinkErr // not a directory after all
		}
		if err != nil {
			return err
		}
		d := os.NewFile(uintptr(fd), name)
		names, rerr := d.Readdirnames(1024)
		for _, n := range names {
			if err := removeTree(ctx, fd, n); err != nil {
				d.Close()
				return err
			}
		}
		d.Close()
		if rerr != nil && rerr != io.EOF {
			return rerr
		}
		// Deleting entries can reorder the directory, so reopen and read
		// again from the start until a read comes back short.
		if len(names) < 1024 {
			break
		}
	}
	err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}
