package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hutch-sh/hutch/internal/blob"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// roots lends directories under dir as sandboxes' roots: an existing
// sandbox has one; create makes one. It counts what it lent and got back.
type roots struct {
	dir      string
	lent     int
	released int
	created  []string
}

var _ Roots = (*roots)(nil)

func (r *roots) Root(_ context.Context, name string, create bool) (string, func(), error) {
	root := filepath.Join(r.dir, name)
	if _, err := os.Stat(root); err != nil {
		if !create {
			return "", nil, fmt.Errorf("sandbox %q: %w", name, errdefs.ErrNotFound)
		}
		if err := os.MkdirAll(root, 0o755); err != nil {
			return "", nil, err
		}
		r.created = append(r.created, name)
	}
	r.lent++
	return root, func() { r.released++ }, nil
}

// The service refuses bad input before it touches a sandbox, creates a
// sandbox only for a restore that can succeed, and gives back every root
// it borrows.
func TestServiceBackupAndRestore(t *testing.T) {
	ctx := context.Background()
	bs, err := blob.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := &roots{dir: t.TempDir()}
	src := filepath.Join(r.dir, "src", "workspace")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	svc := NewService(New(bs), r)
	b, err := svc.Create(ctx, "src", "/workspace", Options{Name: "one"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}

	tests := []struct {
		name        string
		run         func() error
		wantErr     error
		wantCreated []string
	}{
		{"backup of a system dir", func() error { _, err := svc.Create(ctx, "src", "/etc", Options{}); return err }, errdefs.ErrPermissionDenied, nil},
		{"backup of a missing sandbox", func() error { _, err := svc.Create(ctx, "none", "/workspace", Options{}); return err }, errdefs.ErrNotFound, nil},
		{"restore into a bad dir", func() error { _, err := svc.Restore(ctx, "new", b.ID, "rel"); return err }, errdefs.ErrInvalidArgument, nil},
		{"restore of a missing backup", func() error { _, err := svc.Restore(ctx, "new", "bk-000000000000", ""); return err }, errdefs.ErrNotFound, nil},
		{"restore creates the sandbox", func() error {
			n, err := svc.Restore(ctx, "new", b.ID, "")
			if err == nil && n != 1 {
				err = fmt.Errorf("restored %d entries, want 1", n)
			}
			return err
		}, nil, []string{"new"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.created = nil
			err := tt.run()
			if (tt.wantErr == nil) != (err == nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if fmt.Sprint(r.created) != fmt.Sprint(tt.wantCreated) {
				t.Errorf("created sandboxes %v, want %v", r.created, tt.wantCreated)
			}
			if r.lent != r.released {
				t.Errorf("%d roots lent, %d released", r.lent, r.released)
			}
		})
	}
	if got, err := os.ReadFile(filepath.Join(r.dir, "new", "workspace", "a.txt")); err != nil || string(got) != "a" {
		t.Errorf("restored file = %q, %v", got, err)
	}
}
