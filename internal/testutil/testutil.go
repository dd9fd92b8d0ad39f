// Package testutil is what hutch's tests share: gates for tests that need
// root, a tool or the default image, which skip on a developer's machine and
// fail under CI=true (a suite that passes without running is worse than a
// red one), and Eventually, which polls instead of sleeping.
package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI (CI=true), where every gate below
// fails instead of skipping.
func InCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// Unavailable skips t, or fails it in CI, saying what is missing.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI=true: a test that cannot run fails)", msg)
	}
	t.Skip(msg)
}

// RequiresRoot gates a test on running as root.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "needs root")
	}
}

// RequiresTool gates a test on a program being on PATH and returns its path.
func RequiresTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Unavailable(t, "needs %s: %v", name, err)
	}
	return p
}

// DefaultCache is where `make image` keeps images when HUTCH_CACHE is unset.
const DefaultCache = "/var/cache/hutch"

// CacheDir is the image cache tests use: HUTCH_CACHE, or DefaultCache.
func CacheDir() string {
	if d := os.Getenv("HUTCH_CACHE"); d != "" {
		return d
	}
	return DefaultCache
}

// RequiresImage gates a test on root and the default image being built in
// CacheDir, and returns CacheDir.
func RequiresImage(t testing.TB) string {
	t.Helper()
	RequiresRoot(t)
	dir := CacheDir()
	if _, err := os.Stat(filepath.Join(dir, "images", "default.json")); err != nil {
		Unavailable(t, "needs the default image in %s (make image, or set HUTCH_CACHE): %v", dir, err)
	}
	return dir
}

// Eventually polls cond every few milliseconds until it returns nil, and
// fails t with cond's last error if that has not happened within d.
func Eventually(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	if err := Poll(d, cond); err != nil {
		t.Fatalf("not within %v: %v", d, err)
	}
}

// Poll is Eventually for code that cannot fail a test itself (helpers that
// return errors, goroutines): it returns cond's last error after d.
func Poll(d time.Duration, cond func() error) error {
	deadline := time.Now().Add(d)
	wait := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
		wait = min(wait*2, 50*time.Millisecond)
	}
}
