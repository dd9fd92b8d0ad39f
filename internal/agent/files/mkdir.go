package files

import (
	"errors"
	"fmt"
	"os"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// makeDir creates directory p. The requested mode is applied exactly, not
// masked by the agent's umask.
func (s *Service) makeDir(reqPath string, parents bool, mode uint32) error {
	p, err := sandboxPath(reqPath)
	if err != nil {
		return err
	}
	if mode == 0 {
		mode = 0o755
	}
	if mode&^0o7777 != 0 {
		return fmt.Errorf("mkdir %q: mode %#o has bits beyond 07777: %w", p, mode, errdefs.ErrInvalidArgument)
	}
	if parents {
		return s.makeDirAll(p, mode)
	}
	if p == "/" {
		return fmt.Errorf("mkdir \"/\": %w", errnoError(unix.EEXIST))
	}
	e, err := s.lookup(p, false)
	if err != nil {
		return parentError("mkdir", p, err, " (set parents)")
	}
	defer e.close()
	if err := unix.Mkdirat(e.fd(), e.name, 0o700); err != nil {
		return s.pathErr("mkdir", p, err)
	}
	return s.chmodDir(e.fd(), e.name, p, mode)
}

// makeDirAll is mkdir -p: an existing directory is fine and keeps its mode.
func (s *Service) makeDirAll(p string, mode uint32) error {
	if h, err := pathrs.OpenInRoot(s.root, p); err == nil {
		var st unix.Stat_t
		err := unix.Fstat(int(h.Fd()), &st)
		h.Close()
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return nil
		}
	}
	root, err := s.openRoot()
	if err != nil {
		return err
	}
	defer root.Close()
	d, err := pathrs.MkdirAllHandle(root, p, os.FileMode(mode&0o777))
	if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("mkdir %q: a file or dangling symlink is in the way: %w", p, errnoError(unix.ENOTDIR))
	}
	if err != nil {
		return s.pathErr("mkdir", p, err)
	}
	defer d.Close()
	if err := unix.Fchmod(int(d.Fd()), mode); err != nil {
		return s.pathErr("chmod", p, err)
	}
	return nil
}

// chmodDir sets the mode of the directory name in dirfd without following
// a symlink someone may have swapped in.
func (s *Service) chmodDir(dirfd int, name, p string, mode uint32) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return s.pathErr("chmod", p, err)
	}
	defer unix.Close(fd)
	if err := unix.Fchmod(fd, mode); err != nil {
		return s.pathErr("chmod", p, err)
	}
	return nil
}
