package files

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// stat reports p without following a symlink at its end; a path that does
// not exist, or whose parent is not a directory, is exists=false.
func (s *Service) stat(reqPath string) (*hutchv1.StatResponse, error) {
	p, err := sandboxPath(reqPath)
	if err != nil {
		return nil, err
	}
	if p == "/" {
		return s.statRoot()
	}
	e, err := s.lookup(p, false)
	if missingDir(err) {
		return &hutchv1.StatResponse{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stat %q: %w", p, err)
	}
	defer e.close()
	fi, err := entryInfo(e.fd(), e.name, p)
	if errors.Is(err, unix.ENOENT) {
		return &hutchv1.StatResponse{}, nil
	}
	if err != nil {
		return nil, s.pathErr("stat", p, err)
	}
	return &hutchv1.StatResponse{Exists: true, Info: fi}, nil
}

func (s *Service) statRoot() (*hutchv1.StatResponse, error) {
	root, err := s.openRoot()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(root.Fd()), &st); err != nil {
		return nil, fmt.Errorf("stat \"/\": %w", errdefs.ErrInternal)
	}
	fi := fileInfo("/", &st)
	return &hutchv1.StatResponse{Exists: true, Info: fi}, nil
}
