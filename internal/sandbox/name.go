package sandbox

import (
	"fmt"
	"regexp"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidateName checks a sandbox name against the contract in DESIGN.md.
func ValidateName(name string) error {
	if nameRE.MatchString(name) {
		return nil
	}
	q := name
	if len(q) > 80 {
		q = q[:80] + "..."
	}
	return fmt.Errorf("sandbox name %q is invalid: use 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-': %w", q, errdefs.ErrInvalidArgument)
}
