// Package rootfs mounts and unmounts a sandbox's root: an overlayfs of
// read-only image layers under the sandbox's own upper dir.
package rootfs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount mounts an overlay at target with lowers (top first) under upper.
func Mount(lowers []string, upper, work, target string) error {
	if len(lowers) == 0 {
		return errors.New("overlay: no lower layers")
	}
	for _, d := range []string{upper, work, target} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(lowers, ":"), upper, work)
	if len(opts) >= 4096 {
		return fmt.Errorf("overlay: %d layers do not fit in one mount's options", len(lowers))
	}
	if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay at %s: %w", target, err)
	}
	return nil
}

// Unmount unmounts target if it is mounted.
func Unmount(target string) error {
	for {
		err := unix.Unmount(target, unix.MNT_DETACH)
		switch {
		case err == nil:
			continue // stacked mounts: keep going until none is left
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		default:
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
}

// Mounted reports whether any mount point is at or below dir.
func Mounted(dir string) (bool, error) {
	mp, err := FirstMount(dir)
	return mp != "", err
}

// FirstMount returns a mount point at or below dir, or "" if there is none.
func FirstMount(dir string) (string, error) {
	dir = filepath.Clean(dir)
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescape(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			return mp, nil
		}
	}
	return "", sc.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
