package image

import (
	"fmt"
	"os"

	"github.com/hutch-sh/hutch/internal/rootfs"
)

// removeAll deletes a work dir unless something is still mounted below it:
// a killed mmdebstrap can leave /dev, /proc or /sys mounted in its chroot,
// and deleting through those would reach the host.
func removeAll(dir string) error {
	mp, err := rootfs.FirstMount(dir)
	if err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	if mp != "" {
		return fmt.Errorf("remove %s: %s is still mounted", dir, mp)
	}
	return os.RemoveAll(dir)
}
