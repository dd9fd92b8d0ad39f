package backup

import (
	"errors"
	"testing"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

func TestValidDir(t *testing.T) {
	for _, c := range []struct {
		dir  string
		want error
	}{
		{"/workspace", nil},
		{"/home/u/proj", nil},
		{"/tmp", nil},
		{"/", errdefs.ErrInvalidArgument},
		{"workspace", errdefs.ErrInvalidArgument},
		{"/workspace/", errdefs.ErrInvalidArgument},
		{"/a/../etc", errdefs.ErrInvalidArgument},
		{"/etc", errdefs.ErrPermissionDenied},
		{"/usr/local/lib", errdefs.ErrPermissionDenied},
		{"/proc/1", errdefs.ErrPermissionDenied},
		{"/etcetera", nil},
	} {
		t.Run(c.dir, func(t *testing.T) {
			err := ValidDir(c.dir)
			if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
				t.Errorf("ValidDir(%q) = %v, want %v", c.dir, err, c.want)
			}
		})
	}
}

func TestExcluded(t *testing.T) {
	skip := excluded([]string{"node_modules", "*.log", "dist/", "src/gen"})
	for _, c := range []struct {
		rel   string
		isDir bool
		want  bool
	}{
		{"node_modules", true, true},
		{"a/node_modules", true, true},
		{"build.log", false, true},
		{"logs/x.log", false, true},
		{"dist", true, true},
		{"dist", false, false},
		{"src/gen", true, true},
		{"other/src/gen", true, false},
		{"src/main.go", false, false},
	} {
		if got := skip(c.rel, c.isDir); got != c.want {
			t.Errorf("excluded(%q, dir=%v) = %v, want %v", c.rel, c.isDir, got, c.want)
		}
	}
}
