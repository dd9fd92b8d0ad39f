package files

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// workspace is where relative sandbox paths start.
const workspace = "/workspace"

// maxSymlinks matches the kernel's limit on links followed in one lookup.
const maxSymlinks = 40

// sandboxPath validates a requested path and returns it absolute and clean;
// cleaning keeps ".." from climbing above "/".
func sandboxPath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("path is empty: %w", errdefs.ErrInvalidArgument)
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("path %q contains a NUL byte: %w", p, errdefs.ErrInvalidArgument)
	}
	if !path.IsAbs(p) {
		p = workspace + "/" + p
	}
	return path.Clean(p), nil
}

// entry is a name in a directory resolved inside the root. Operations use
// *at calls on dir with name, so the name itself is never followed.
type entry struct {
	dir  *os.File // O_PATH handle, or an open directory
	name string
	path string // sandbox path
}

func (e *entry) fd() int      { return int(e.dir.Fd()) }
func (e *entry) close() error { return e.dir.Close() }

func (e *entry) lstat() (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(e.fd(), e.name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

// openRoot returns a handle on the root for pathrs' *Handle functions.
func (s *Service) openRoot() (*os.File, error) {
	f, err := os.OpenFile(s.root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		s.log.Error("open sandbox root", "err", err)
		return nil, fmt.Errorf("open sandbox root: %w", errdefs.ErrInternal)
	}
	return f, nil
}

// lookup resolves the directory holding p (clean, absolute, not "/") and
// returns p's entry in it. With parents, missing directories are created.
// Errors about the directory come back as *dirError.
func (s *Service) lookup(p string, parents bool) (*entry, error) {
	dir, name := path.Dir(p), path.Base(p)
	var (
		h   *os.File
		err error
	)
	if parents {
		var root *os.File
		if root, err = s.openRoot(); err != nil {
			return nil, err
		}
		h, err = pathrs.MkdirAllHandle(root, dir, 0o755)
		root.Close()
	} else {
		h, err = pathrs.OpenInRoot(s.root, dir)
	}
	if err != nil {
		return nil, &dirError{path: dir, err: s.sysErr(err)}
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		h.Close()
		return nil, &dirError{path: dir, err: s.sysErr(err)}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		h.Close()
		return nil, &dirError{path: dir, err: errnoError(unix.ENOTDIR)}
	}
	return &entry{dir: h, name: name, path: p}, nil
}

// dirError reports that the directory holding a path could not be used.
type dirError struct {
	path string
	err  error
}

func (e *dirError) Error() string { return fmt.Sprintf("directory %q: %v", e.path, e.err) }
func (e *dirError) Unwrap() error { return e.err }

// missingDir reports whether err says the directory holding a path does not
// exist or is not a directory.
func missingDir(err error) bool {
	var de *dirError
	return errors.As(err, &de) && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR))
}

// parentError words a missing-parent error for operations that create p.
func parentError(op, p string, err error, hint string) error {
	if !missingDir(err) {
		return fmt.Errorf("%s %q: %w", op, p, err)
	}
	var de *dirError
	errors.As(err, &de)
	if errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("%s %q: %q or one of its parents is not a directory: %w", op, p, de.path, errdefs.ErrFailedPrecondition)
	}
	return fmt.Errorf("%s %q: parent directory %q does not exist%s: %w", op, p, de.path, hint, errdefs.ErrFailedPrecondition)
}

// follow resolves symlinks in the last component of p, in sandbox terms, so
// a write to a link lands on its target inside the root. Dangling links
// resolve to where their target would be.
func (s *Service) follow(p string) (string, error) {
	for range maxSymlinks {
		if p == "/" {
			return p, nil
		}
		e, err := s.lookup(p, false)
		if err != nil {
			// Let the caller's own lookup report it.
			return p, nil
		}
		target, isLink, err := readLinkAt(e)
		e.close()
		if err != nil || !isLink {
			return p, nil
		}
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(p), target)
		}
		p = path.Clean(target)
	}
	return "", fmt.Errorf("resolve %q: %w", p, errnoError(unix.ELOOP))
}

// readLinkAt returns e's target if e is a symlink.
func readLinkAt(e *entry) (string, bool, error) {
	st, err := e.lstat()
	if err != nil {
		return "", false, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return "", false, nil
	}
	t, err := readlinkat(e.fd(), e.name)
	return t, true, err
}

func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// SandboxPath validates a requested sandbox path and returns it absolute
// (relative paths start at /workspace) and clean.
func SandboxPath(p string) (string, error) { return sandboxPath(p) }
