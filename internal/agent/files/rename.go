package files

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// rename moves from to to, both resolved inside the root; a symlink is moved
// as a link.
func (s *Service) rename(ctx context.Context, reqFrom, reqTo string, overwrite bool) error {
	from, err := sandboxPath(reqFrom)
	if err != nil {
		return fmt.Errorf("rename from: %w", err)
	}
	to, err := sandboxPath(reqTo)
	if err != nil {
		return fmt.Errorf("rename to: %w", err)
	}
	op := fmt.Sprintf("rename %q to %q", from, to)
	if from == "/" || to == "/" {
		return fmt.Errorf("%s: cannot move the sandbox root: %w", op, errdefs.ErrInvalidArgument)
	}
	src, err := s.lookup(from, false)
	if missingDir(err) {
		return fmt.Errorf("%s: %w", op, errnoError(unix.ENOENT))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer src.close()
	if _, err := src.lstat(); err != nil {
		return fmt.Errorf("%s: %w", op, s.sysErr(err))
	}
	dst, err := s.lookup(to, false)
	if err != nil {
		return parentError("rename "+strconv.Quote(from)+" to", to, err, "")
	}
	defer dst.close()

	err = renameAt(src, dst, overwrite)
	if errors.Is(err, unix.EXDEV) {
		err = s.moveAcross(ctx, src, dst, overwrite)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) && !overwrite:
		return fmt.Errorf("%s: destination exists (set overwrite): %w", op, errnoError(unix.EEXIST))
	case errors.Is(err, unix.ENOTEMPTY):
		return fmt.Errorf("%s: destination is a non-empty directory: %w", op, errnoError(unix.ENOTEMPTY))
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("%s: cannot move a directory into itself: %w", op, errdefs.ErrInvalidArgument)
	case errors.Is(err, unix.EISDIR):
		return fmt.Errorf("%s: destination is a directory: %w", op, errnoError(unix.EISDIR))
	case errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("%s: destination is not a directory: %w", op, errnoError(unix.ENOTDIR))
	}
	return fmt.Errorf("%s: %w", op, s.sysErr(err))
}

// renameAt renames atomically; without overwrite it uses RENAME_NOREPLACE
// where the filesystem has it.
func renameAt(src, dst *entry, overwrite bool) error {
	if overwrite {
		return unix.Renameat(src.fd(), src.name, dst.fd(), dst.name)
	}
	err := unix.Renameat2(src.fd(), src.name, dst.fd(), dst.name, unix.RENAME_NOREPLACE)
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	if _, err := dst.lstat(); err == nil {
		return unix.EEXIST
	}
	return unix.Renameat(src.fd(), src.name, dst.fd(), dst.name)
}
