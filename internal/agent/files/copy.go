package files

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// tempPrefix starts the names of files the service is still writing.
const tempPrefix = ".hutch-tmp-"

func tempName() string {
	b := make([]byte, 8)
	rand.Read(b)
	return tempPrefix + hex.EncodeToString(b)
}

// moveAcross moves src to dst on another filesystem: copy to a temporary
// name beside dst, rename that into place, then remove src.
func (s *Service) moveAcross(ctx context.Context, src, dst *entry, overwrite bool) error {
	if _, err := dst.lstat(); err == nil && !overwrite {
		return unix.EEXIST
	}
	tmp := &entry{dir: dst.dir, name: tempName()}
	cleanup := func() { removeTree(context.WithoutCancel(ctx), tmp.fd(), tmp.name) }
	if err := copyTree(ctx, src.fd(), src.name, tmp.fd(), tmp.name); err != nil {
		cleanup()
		return err
	}
	if err := renameAt(tmp, dst, overwrite); err != nil {
		cleanup()
		return err
	}
	// The copy is in place; finish even if the caller has gone.
	return removeTree(context.WithoutCancel(ctx), src.fd(), src.name)
}

// copyTree copies name in sdir to dname in ddir without following symlinks,
// keeping modes, owners and modification times.
func copyTree(ctx context.Context, sdir int, sname string, ddir int, dname string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(sdir, sname, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	var err error
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		err = copyFile(sdir, sname, ddir, dname, st.Mode&0o7777)
	case unix.S_IFDIR:
		err = copyDir(ctx, sdir, sname, ddir, dname, st.Mode&0o7777)
	case unix.S_IFLNK:
		var target string
		if target, err = readlinkat(sdir, sname); err == nil {
			err = unix.Symlinkat(target, ddir, dname)
		}
	default:
		return fmt.Errorf("cannot move a special file across filesystems: %w", errdefs.ErrFailedPrecondition)
	}
	if err != nil {
		return err
	}
	// Best effort: an unprivileged agent cannot give files away.
	_ = unix.Fchownat(ddir, dname, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW)
	ts := []unix.Timespec{st.Atim, st.Mtim}
	_ = unix.UtimesNanoAt(ddir, dname, ts, unix.AT_SYMLINK_NOFOLLOW)
	return nil
}

func copyFile(sdir int, sname string, ddir int, dname string, mode uint32) error {
	sfd, err := unix.Openat(sdir, sname, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	in := os.NewFile(uintptr(sfd), sname)
	defer in.Close()
	dfd, err := unix.Openat(ddir, dname, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	out := os.NewFile(uintptr(dfd), dname)
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := unix.Fchmod(dfd, mode); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func copyDir(ctx context.Context, sdir int, sname string, ddir int, dname string, mode uint32) error {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	sfd, err := unix.Openat(sdir, sname, flags, 0)
	if err != nil {
		return err
	}
	in := os.NewFile(uintptr(sfd), sname)
	defer in.Close()
	if err := unix.Mkdirat(ddir, dname, 0o700); err != nil {
		return err
	}
	dfd, err := unix.Openat(ddir, dname, flags, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	for {
		names, rerr := in.Readdirnames(1024)
		for _, n := range names {
			if err := copyTree(ctx, sfd, n, dfd, n); err != nil {
				return err
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	return unix.Fchmod(dfd, mode)
}
