package runtimetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/internal/sandbox"
	"github.com/hutch-sh/hutch/internal/testutil"
)

// CgroupParent is the cgroup parent the suite's bundles name: a runtime
// that owns cgroups (a Freezer, a Sweeper) must be made with it.
const CgroupParent = cgroupParent

// The optional capabilities, run when the runtime has them.

// counter runs a loop in a container that writes an increasing number to
// /tmp/n; read returns its last value as the host sees it.
func counter(t *testing.T, rt Runtime) (b *bundle, read func() string) {
	t.Helper()
	b = newBundle(t, "/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/n.new; mv /tmp/n.new /tmp/n; done")
	start(t, rt, b)
	read = func() string {
		v, _ := os.ReadFile(filepath.Join(b.dir, "rootfs", "tmp", "n"))
		return string(v)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if read() == "" {
			return errors.New("the counter has not started")
		}
		return nil
	})
	return b, read
}

// moving reports whether read's value changes within d.
func moving(read func() string, d time.Duration) bool {
	v := read()
	return testutil.Poll(d, func() error {
		if read() == v {
			return errors.New("still")
		}
		return nil
	}) == nil
}

func testFreeze(t *testing.T, rt Runtime) {
	fr, ok := rt.(sandbox.Freezer)
	if !ok {
		t.Skip("not a sandbox.Freezer")
	}
	b, read := counter(t, rt)
	thaw, err := fr.Freeze(context.Background(), b.id)
	if err != nil {
		t.Fatal(err)
	}
	if moving(read, 300*time.Millisecond) {
		thaw()
		t.Fatal("the counter moved while frozen")
	}
	thaw()
	if !moving(read, 5*time.Second) {
		t.Fatal("the counter did not move once thawed")
	}
	if _, err := fr.Freeze(context.Background(), "rt-missing"); err == nil {
		t.Error("Freeze of a missing container succeeded")
	}
}

func testSweep(t *testing.T, rt Runtime) {
	sw, ok := rt.(sandbox.Sweeper)
	if !ok {
		t.Skip("not a sandbox.Sweeper")
	}
	kept, keptRead := counter(t, rt)
	swept, _ := counter(t, rt)
	pid := requireState(t, rt, swept.id, sandbox.StatusRunning)
	sw.Sweep(context.Background(), func(id string) bool { return id == kept.id })
	if err := testutil.Poll(5*time.Second, func() error {
		if alive(pid) {
			return fmt.Errorf("init %d of the swept container still runs", pid)
		}
		if left := cgroupDirs(swept.id); len(left) > 0 {
			return fmt.Errorf("cgroups of the swept container left: %v", left)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !moving(keptRead, 5*time.Second) {
		t.Fatal("Sweep stopped a known container")
	}
}

// alive reports whether pid runs: a zombie (killed, waiting for the suite,
// a subreaper, to reap it) does not.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command, which is in parentheses.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}
