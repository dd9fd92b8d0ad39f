package files

import (
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// sysError is an errno with its category. Its message is the errno text
// alone: errors from the os and securejoin layers carry host paths, which
// must not reach the sandbox's user.
type sysError struct {
	errno unix.Errno
	cat   error
}

func (e *sysError) Error() string   { return e.errno.Error() }
func (e *sysError) Unwrap() []error { return []error{e.cat, e.errno} }

func errnoError(errno unix.Errno) error {
	return &sysError{errno: errno, cat: category(errno)}
}

func category(errno unix.Errno) error {
	switch errno {
	case unix.ENOENT:
		return errdefs.ErrNotFound
	case unix.EEXIST:
		return errdefs.ErrAlreadyExists
	case unix.ENOTDIR, unix.EISDIR, unix.ENOTEMPTY, unix.ELOOP, unix.EBUSY, unix.ETXTBSY:
		return errdefs.ErrFailedPrecondition
	case unix.EACCES, unix.EPERM, unix.EROFS:
		return errdefs.ErrPermissionDenied
	case unix.ENOSPC, unix.EDQUOT, unix.EMFILE, unix.ENFILE, unix.EFBIG:
		return errdefs.ErrResourceExhausted
	case unix.EINVAL, unix.ENAMETOOLONG:
		return errdefs.ErrInvalidArgument
	}
	return errdefs.ErrInternal
}

// sysErr reduces err to its errno and category. Errors without an errno are
// logged in full and reported as internal, since their text may name host
// paths.
func (s *Service) sysErr(err error) error {
	var se *sysError
	if errors.As(err, &se) {
		return se
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errnoError(errno)
	}
	if errdefs.Code(err) != connect.CodeInternal {
		return err // already ours, worded without host paths
	}
	s.log.Warn("file operation failed", "err", err)
	return fmt.Errorf("unexpected error: %w", errdefs.ErrInternal)
}

// pathErr wraps err from operation op on sandbox path p.
func (s *Service) pathErr(op, p string, err error) error {
	return fmt.Errorf("%s %q: %w", op, p, s.sysErr(err))
}
