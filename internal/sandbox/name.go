package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
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

// DaemonTag is the short name of the daemon with this data dir: 8 hex
// digits that name what it creates on the host (cgroups, bridge, rules),
// so daemons sharing a host never touch each other's.
func DaemonTag(dataDir string) string {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	sum := sha256.Sum256([]byte(abs))
	return hex.EncodeToString(sum[:4])
}
