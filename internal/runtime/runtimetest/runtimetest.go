// Package runtimetest is the conformance suite every sandbox runtime runs:
// it starts real containers from bundles built with runtime.Spec and checks
// their lifecycle and that nothing is left behind.
package runtimetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/runtime"
	"github.com/hutch-sh/hutch/internal/sandbox"
	"github.com/hutch-sh/hutch/internal/testutil"
)

// Runtime is what the suite drives: the lifecycle's runtime interface.
type Runtime = sandbox.Runtime

// Busybox is the static busybox the test containers run.
const Busybox = "/bin/busybox"

// cgroupParent groups the suite's cgroups so leaks are easy to spot.
const cgroupParent = "/hutch-runtimetest"

// Run runs the suite against runtimes made by newRuntime. It needs root, a
// static busybox at /bin/busybox, and makes the test process a child
// subreaper, as the daemon is, so exited container inits are reaped.
func Run(t *testing.T, newRuntime func(t *testing.T) Runtime) {
	testutil.RequiresRoot(t)
	if _, err := os.Stat(Busybox); err != nil {
		testutil.Unavailable(t, "runtimetest: needs a static busybox at %s: %v", Busybox, err)
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("become child subreaper: %v", err)
	}
	t.Cleanup(func() {
		// The parents runc created; they are empty once every test deleted its container.
		parents, _ := filepath.Glob("/sys/fs/cgroup/*" + cgroupParent)
		for _, p := range append(parents, "/sys/fs/cgroup"+cgroupParent) {
			_ = unix.Rmdir(p)
		}
	})
	tests := []struct {
		name string
		fn   func(t *testing.T, rt Runtime)
	}{
		{"Name", testName},
		{"StartStateDelete", testStartStateDelete},
		{"Isolation", testIsolation},
		{"ExitedContainer", testExitedContainer},
		{"DeleteMissing", testDeleteMissing},
		{"StateMissing", testStateMissing},
		{"BadSpec", testBadSpec},
		{"Parallel", testParallel},
		{"Freeze", testFreeze},
		{"Sweep", testSweep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newRuntime(t)) })
	}
}

// bundle is one container's bundle dir and spec.
type bundle struct {
	id     string
	dir    string
	spec   *specs.Spec
	logPth string
}

func newID(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "rt-" + hex.EncodeToString(b[:])
}

// newBundle builds a bundle whose rootfs holds only busybox, with the spec
// the daemon uses, running args instead of the agent.
func newBundle(t *testing.T, args ...string) *bundle {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "tmp", "proc", "dev", "sys"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(Busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(root, "bin", "sh")); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(dir, "run")
	if err := os.Mkdir(runDir, 0o700); err != nil {
		t.Fatal(err)
	}
	id := newID(t)
	spec, err := runtime.Spec(runtime.SpecOptions{
		Hostname:    "rt-test",
		Rootfs:      root,
		AgentBinary: Busybox,
		RunDir:      runDir,
		Env:         []string{"PATH=/bin"},
		Limits:      sandbox.Limits{CPUMillis: 500, MemoryBytes: 64 << 20, Pids: 64},
		CgroupsPath: cgroupParent + "/" + id,
	})
	if err != nil {
		t.Fatal(err)
	}
	spec.Process.Args = args
	return &bundle{id: id, dir: dir, spec: spec, logPth: filepath.Join(dir, "init.log")}
}

// start starts b and deletes it when the test ends.
func start(t *testing.T, rt Runtime, b *bundle) {
	t.Helper()
	ctx := context.Background()
	t.Cleanup(func() {
		if err := rt.Delete(context.Background(), b.id); err != nil {
			t.Errorf("cleanup: delete %s: %v", b.id, err)
		}
	})
	if err := rt.Start(ctx, b.id, b.dir, b.spec, b.logPth); err != nil {
		log, _ := os.ReadFile(b.logPth)
		t.Fatalf("start %s: %v\ninit log: %s", b.id, err, log)
	}
}

func requireState(t *testing.T, rt Runtime, id string, want runtime.Status) int {
	t.Helper()
	st, pid, err := rt.State(context.Background(), id)
	if err != nil {
		t.Fatalf("state %s: %v", id, err)
	}
	if st != want {
		t.Fatalf("state %s = %q, want %q", id, st, want)
	}
	return pid
}

// cgroupDirs lists the container's cgroup dirs across every hierarchy
// (v1 controllers and the unified v2 tree).
func cgroupDirs(id string) []string {
	var out []string
	for _, pattern := range []string{
		"/sys/fs/cgroup/*" + cgroupParent + "/" + id,
		"/sys/fs/cgroup" + cgroupParent + "/" + id,
	} {
		m, _ := filepath.Glob(pattern)
		out = append(out, m...)
	}
	return out
}

// requireClean fails if id left runtime state or cgroups behind.
func requireClean(t *testing.T, rt Runtime, id string) {
	t.Helper()
	requireState(t, rt, id, runtime.StatusMissing)
	// cgroup removal may trail the kill by a moment on v1.
	deadline := time.Now().Add(2 * time.Second)
	for {
		left := cgroupDirs(id)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cgroups left behind: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testName(t *testing.T, rt Runtime) {
	if rt.Name() == "" {
		t.Fatal("Name() is empty")
	}
}

func testStartStateDelete(t *testing.T, rt Runtime) {
	b := newBundle(t, "/bin/sh", "-c", "exec sleep 1000")
	start(t, rt, b)
	pid := requireState(t, rt, b.id, runtime.StatusRunning)
	if pid <= 0 {
		t.Fatalf("running container has pid %d", pid)
	}
	if err := unix.Kill(pid, 0); err != nil {
		t.Fatalf("init pid %d: %v", pid, err)
	}
	if dirs := cgroupDirs(b.id); len(dirs) == 0 {
		t.Fatalf("no cgroup at %s/%s in any hierarchy", cgroupParent, b.id)
	}
	// The limits of the spec reach the cgroup (v1 memory controller or v2).
	if got := readCgroupLimit(b.id); got != "" && got != strconv.Itoa(64<<20) {
		t.Errorf("memory limit %q, want %d", got, 64<<20)
	}
	if err := rt.Delete(context.Background(), b.id); err != nil {
		t.Fatalf("delete: %v", err)
	}
	requireClean(t, rt, b.id)
	if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("init pid %d after delete: kill(0) = %v, want ESRCH (killed and reaped)", pid, err)
	}
}

func readCgroupLimit(id string) string {
	for _, p := range []string{
		"/sys/fs/cgroup/memory" + cgroupParent + "/" + id + "/memory.limit_in_bytes",
		"/sys/fs/cgroup" + cgroupParent + "/" + id + "/memory.max",
	} {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}

func testIsolation(t *testing.T, rt Runtime) {
	b := newBundle(t, "/bin/sh", "-c", "exec sleep 1000")
	start(t, rt, b)
	pid := requireState(t, rt, b.id, runtime.StatusRunning)
	for _, ns := range []string{"pid", "mnt", "net", "uts", "ipc"} {
		ours, err1 := os.Readlink("/proc/self/ns/" + ns)
		theirs, err2 := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/" + ns)
		if err1 != nil || err2 != nil {
			t.Fatalf("read ns %s: %v %v", ns, err1, err2)
		}
		if ours == theirs {
			t.Errorf("container shares the host's %s namespace", ns)
		}
	}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NoNewPrivs:\t1", "Seccomp:\t2"} {
		if !strings.Contains(string(status), want) {
			t.Errorf("container init status lacks %q", want)
		}
	}
}

func testExitedContainer(t *testing.T, rt Runtime) {
	b := newBundle(t, "/bin/true")
	if err := os.Symlink("busybox", filepath.Join(b.spec.Root.Path, "bin", "true")); err != nil {
		t.Fatal(err)
	}
	start(t, rt, b)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _, err := rt.State(context.Background(), b.id)
		if err != nil {
			t.Fatal(err)
		}
		if st == runtime.StatusStopped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %q 5s after init exited, want stopped", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := rt.Delete(context.Background(), b.id); err != nil {
		t.Fatalf("delete stopped container: %v", err)
	}
	requireClean(t, rt, b.id)
}

func testDeleteMissing(t *testing.T, rt Runtime) {
	id := newID(t)
	for i := range 2 {
		if err := rt.Delete(context.Background(), id); err != nil {
			t.Fatalf("delete #%d of a missing container: %v", i+1, err)
		}
	}
	// Deleting twice after a real start is fine too.
	b := newBundle(t, "/bin/sh", "-c", "exec sleep 1000")
	start(t, rt, b)
	for i := range 2 {
		if err := rt.Delete(context.Background(), b.id); err != nil {
			t.Fatalf("delete #%d: %v", i+1, err)
		}
	}
	requireClean(t, rt, b.id)
}

func testStateMissing(t *testing.T, rt Runtime) {
	requireState(t, rt, newID(t), runtime.StatusMissing)
}

func testBadSpec(t *testing.T, rt Runtime) {
	tests := []struct {
		name   string
		mutate func(b *bundle)
	}{
		{"missing rootfs", func(b *bundle) { b.spec.Root.Path = filepath.Join(b.dir, "no-such-root") }},
		{"missing binary", func(b *bundle) { b.spec.Process.Args = []string{"/no/such/binary"} }},
		{"missing bind source", func(b *bundle) {
			b.spec.Mounts = append(b.spec.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/no/such/source", Options: []string{"bind"}})
		}},
		{"no args", func(b *bundle) { b.spec.Process.Args = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBundle(t, "/bin/sh", "-c", "exec sleep 1000")
			tt.mutate(b)
			err := rt.Start(context.Background(), b.id, b.dir, b.spec, b.logPth)
			if err == nil {
				_ = rt.Delete(context.Background(), b.id)
				t.Fatal("Start of a bad spec succeeded")
			}
			t.Logf("error: %v", err)
			requireClean(t, rt, b.id)
		})
	}
}

func testParallel(t *testing.T, rt Runtime) {
	const n = 4
	bs := make([]*bundle, n)
	for i := range bs {
		bs[i] = newBundle(t, "/bin/sh", "-c", "exec sleep 1000")
	}
	errs := make(chan error, n)
	for _, b := range bs {
		t.Cleanup(func() { _ = rt.Delete(context.Background(), b.id) })
		go func() { errs <- rt.Start(context.Background(), b.id, b.dir, b.spec, b.logPth) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("parallel start: %v", err)
		}
	}
	for _, b := range bs {
		requireState(t, rt, b.id, runtime.StatusRunning)
	}
	for _, b := range bs {
		go func() { errs <- rt.Delete(context.Background(), b.id) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("parallel delete: %v", err)
		}
	}
	for _, b := range bs {
		requireClean(t, rt, b.id)
	}
}
