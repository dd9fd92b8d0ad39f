package files

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// replace writes body to a temporary file beside e and renames it over e,
// so readers see the old file or the whole new one. On any failure,
// including the client going away, the temporary file is removed. Without
// an explicit mode the old file's mode and owner are kept.
func (s *Service) replace(e *entry, body io.Reader, o putOptions) (int64, error) {
	mode := o.mode
	old, err := e.lstat()
	exists := err == nil && old.Mode&unix.S_IFMT == unix.S_IFREG
	if err == nil && old.Mode&unix.S_IFMT == unix.S_IFDIR {
		return 0, unix.EISDIR
	}
	if exists && !o.modeSet {
		mode = old.Mode & 0o7777
	}
	tmp := tempName()
	fd, err := unix.Openat(e.fd(), tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return 0, err
	}
	f := os.NewFile(uintptr(fd), tmp)
	n, err := s.fill(f, body, mode, exists, &old)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(e.fd(), tmp, e.fd(), e.name)
	}
	if err != nil {
		unix.Unlinkat(e.fd(), tmp, 0)
		return 0, err
	}
	return n, nil
}

// fill copies body into the new file f and settles its metadata and data
// before it is renamed into place.
func (s *Service) fill(f *os.File, body io.Reader, mode uint32, keepOwner bool, old *unix.Stat_t) (int64, error) {
	n, err := io.Copy(f, body)
	if err != nil {
		return 0, err
	}
	fd := int(f.Fd())
	if keepOwner {
		_ = unix.Fchown(fd, int(old.Uid), int(old.Gid)) // best effort when unprivileged
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return 0, err
	}
	return n, f.Sync()
}

// appendTo appends body to e in place, creating it if missing.
func (s *Service) appendTo(e *entry, body io.Reader, o putOptions) (int64, error) {
	st, err := e.lstat()
	switch {
	case errors.Is(err, unix.ENOENT):
		o.modeSet = true // new file: apply the mode exactly, not umasked
	case err != nil:
		return 0, err
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return 0, unix.EISDIR
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return 0, fmt.Errorf("can only append to a regular file: %w", errdefs.ErrFailedPrecondition)
	}
	fd, err := unix.Openat(e.fd(), e.name, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, o.mode)
	if err != nil {
		return 0, err
	}
	f := os.NewFile(uintptr(fd), e.name)
	defer f.Close()
	if o.modeSet {
		if err := unix.Fchmod(fd, o.mode); err != nil {
			return 0, err
		}
	}
	if _, err := io.Copy(f, body); err != nil {
		return 0, err
	}
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, err
	}
	return st.Size, nil
}
