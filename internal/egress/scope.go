package egress

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// Scope says which sandboxes may use a secret, so that setting a
// sandbox's policy is not a way to reach every secret. It is an object on
// disk and in the API so that label selectors can join the name globs as
// another field; a sandbox would then need to match either.
type Scope struct {
	// Names are globs over sandbox names (path.Match syntax); empty means
	// every sandbox, as for the secrets set before scopes existed.
	Names []string `json:"names,omitempty"`
}

// ParseScope validates globs over sandbox names; "*" among them makes the
// scope every sandbox.
func ParseScope(globs []string) (Scope, error) {
	var sc Scope
	for _, g := range globs {
		if _, err := path.Match(g, ""); err != nil || g == "" || strings.TrimSpace(g) != g {
			return Scope{}, fmt.Errorf("secret scope %q: want a glob over sandbox names such as agent-* (path.Match syntax): %w", g, errdefs.ErrInvalidArgument)
		}
		if g == "*" {
			return Scope{Names: []string{"*"}}, nil
		}
		if !slices.Contains(sc.Names, g) {
			sc.Names = append(sc.Names, g)
		}
	}
	return sc, nil
}

// Allows reports whether sandbox may use the secret.
func (sc Scope) Allows(sandbox string) bool {
	if len(sc.Names) == 0 {
		return true
	}
	for _, g := range sc.Names {
		if ok, _ := path.Match(g, sandbox); ok {
			return true
		}
	}
	return false
}

// Globs lists the scope as people read it: ["*"] for every sandbox.
func (sc Scope) Globs() []string {
	if len(sc.Names) == 0 {
		return []string{"*"}
	}
	return slices.Clone(sc.Names)
}

func (sc Scope) String() string { return strings.Join(sc.Globs(), ", ") }
