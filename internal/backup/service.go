package backup

import "context"

// Roots lends a sandbox's mounted root while it is read or written;
// create makes the sandbox on demand.
type Roots interface {
	Root(ctx context.Context, name string, create bool) (root string, release func(), err error)
}

// Service backs up and restores sandboxes' directories, holding each
// sandbox's root for as long as it needs it.
type Service struct {
	st    *Store
	roots Roots
}

// NewService returns backups of roots' sandboxes kept in st.
func NewService(st *Store, roots Roots) *Service { return &Service{st: st, roots: roots} }

// Create backs up dir of an existing sandbox. A bad dir is refused before
// the sandbox is touched (woken or started).
func (s *Service) Create(ctx context.Context, sandbox, dir string, o Options) (Backup, error) {
	if err := ValidDir(dir); err != nil {
		return Backup{}, err
	}
	root, release, err := s.roots.Root(ctx, sandbox, false)
	if err != nil {
		return Backup{}, err
	}
	defer release()
	return s.st.Create(ctx, root, sandbox, dir, o)
}

// Restore restores backup id into dir (the backup's own when "") of
// sandbox, creating the sandbox on demand, but only once the dir and the
// backup are known good: a failed restore creates nothing.
func (s *Service) Restore(ctx context.Context, sandbox, id, dir string) (int, error) {
	if dir != "" {
		if err := ValidDir(dir); err != nil {
			return 0, err
		}
	}
	if _, err := s.st.Get(ctx, id); err != nil {
		return 0, err
	}
	root, release, err := s.roots.Root(ctx, sandbox, true)
	if err != nil {
		return 0, err
	}
	defer release()
	return s.st.Restore(ctx, root, id, dir)
}

// List returns every backup, oldest first.
func (s *Service) List(ctx context.Context) ([]Backup, error) { return s.st.List(ctx) }

// Delete removes backup id.
func (s *Service) Delete(ctx context.Context, id string) error { return s.st.Delete(ctx, id) }
