package files

import (
	"path"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/timestamppb"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
)

// fileInfo describes the file at sandbox path p from its lstat.
func fileInfo(p string, st *unix.Stat_t) *hutchv1.FileInfo {
	name := path.Base(p)
	return &hutchv1.FileInfo{
		Name:       name,
		Path:       p,
		Type:       fileType(st.Mode),
		Size:       st.Size,
		Mode:       st.Mode & 0o7777,
		ModifiedAt: timestamppb.New(modTime(st)),
	}
}

func modTime(st *unix.Stat_t) time.Time {
	return time.Unix(st.Mtim.Unix())
}

func fileType(mode uint32) hutchv1.FileType {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return hutchv1.FileType_FILE_TYPE_FILE
	case unix.S_IFDIR:
		return hutchv1.FileType_FILE_TYPE_DIRECTORY
	case unix.S_IFLNK:
		return hutchv1.FileType_FILE_TYPE_SYMLINK
	}
	return hutchv1.FileType_FILE_TYPE_OTHER
}

// entryInfo describes name in dirfd without following it.
func entryInfo(dirfd int, name, p string) (*hutchv1.FileInfo, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, err
	}
	fi := fileInfo(p, &st)
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		t, err := readlinkat(dirfd, name)
		if err != nil {
			return nil, err
		}
		fi.Target = t
	}
	return fi, nil
}
