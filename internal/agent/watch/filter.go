package watch

import (
	"fmt"
	"path"
	"strings"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// defaultExcludes are left out unless the request drops them.
var defaultExcludes = []string{".git", "node_modules"}

// filter is a list of globs in path.Match syntax. A glob without '/'
// matches a path component's name, one with '/' the path relative to the
// watched directory; a path matches when it or one of its parent
// directories does.
type filter []string

func newFilter(what string, globs []string) (filter, error) {
	for _, g := range globs {
		if g == "" || strings.IndexByte(g, 0) >= 0 {
			return nil, fmt.Errorf("%s glob %q: empty or contains a NUL byte: %w", what, g, errdefs.ErrInvalidArgument)
		}
		if _, err := path.Match(g, ""); err != nil {
			return nil, fmt.Errorf("%s glob %q: %w: %w", what, g, err, errdefs.ErrInvalidArgument)
		}
	}
	return filter(globs), nil
}

// match reports whether rel (relative to the watched directory, never ".")
// or one of its parents matches a glob.
func (f filter) match(rel string) bool {
	for _, g := range f {
		slash := strings.Contains(g, "/")
		for p := rel; p != "." && p != "/" && p != ""; p = path.Dir(p) {
			subject := p
			if !slash {
				subject = path.Base(p)
			}
			if ok, _ := path.Match(g, subject); ok {
				return true
			}
		}
	}
	return false
}
