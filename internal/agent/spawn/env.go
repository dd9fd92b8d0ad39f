package spawn

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

var validEnvName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CheckEnvChange checks variables to set and unset: valid names, no NUL
// bytes, no name in both.
func CheckEnvChange(set map[string]string, unset []string) error {
	for k, v := range set {
		if !validEnvName.MatchString(k) {
			return fmt.Errorf("set env: %q is not a valid variable name: %w", k, errdefs.ErrInvalidArgument)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("set env: value of %s contains a NUL byte: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	for _, k := range unset {
		if !validEnvName.MatchString(k) {
			return fmt.Errorf("unset env: %q is not a valid variable name: %w", k, errdefs.ErrInvalidArgument)
		}
		if _, ok := set[k]; ok {
			return fmt.Errorf("set env: %s is both set and unset: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// ApplyEnv returns base (KEY=VALUE) with set overlaid and unset removed.
func ApplyEnv(base []string, set map[string]string, unset []string) []string {
	env := MergeEnv(base, set)
	return slices.DeleteFunc(env, func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains(unset, k)
	})
}
