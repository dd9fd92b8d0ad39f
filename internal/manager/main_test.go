package manager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/catalog"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/runtime"
	"github.com/hutch-sh/hutch/internal/sandbox"
	"github.com/hutch-sh/hutch/internal/snapshot"
	"github.com/hutch-sh/hutch/internal/store"
	"github.com/hutch-sh/hutch/internal/testutil"
)

// agentBin is a static hutch-agent built for this test binary.
var agentBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "hutch-manager-agent-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	build := exec.Command("go", "build", "-o", dir+"/", "github.com/hutch-sh/hutch/cmd/hutch-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Printf("build hutch-agent: %v\n%s", err, out)
		return 1
	}
	agentBin = filepath.Join(dir, "hutch-agent")
	// Like the daemon: inherit and reap sandbox inits once runc exits.
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	return m.Run()
}

// defaultImage resolves "" and "default" to the default image's layers,
// read straight from the image store's record.
type defaultImage struct{ root string }

var _ sandbox.Images = defaultImage{}

func (d defaultImage) Resolve(_ context.Context, name string) (sandbox.Rootfs, error) {
	if name != "" && name != "default" {
		return sandbox.Rootfs{}, fmt.Errorf("image %q: %w", name, errdefs.ErrNotFound)
	}
	b, err := os.ReadFile(filepath.Join(d.root, "images", "default.json"))
	if err != nil {
		return sandbox.Rootfs{}, fmt.Errorf("default image (make test builds it): %w: %w", err, errdefs.ErrFailedPrecondition)
	}
	var rec struct {
		Layers []string `json:"layers"`
		Env    []string `json:"env"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return sandbox.Rootfs{}, err
	}
	var lowers []string
	for i := len(rec.Layers) - 1; i >= 0; i-- {
		lowers = append(lowers, filepath.Join(d.root, "layers", "sha256", strings.TrimPrefix(rec.Layers[i], "sha256:")))
	}
	return sandbox.Rootfs{Image: "default", Lowers: lowers, Env: rec.Env}, nil
}

var (
	_ sandbox.Runtime   = (*hookRuntime)(nil)
	_ sandbox.Preparer  = (*hookRuntime)(nil)
	_ sandbox.Hostnamer = (*hookRuntime)(nil)
	_ sandbox.Freezer   = (*hookRuntime)(nil)
	_ sandbox.Sweeper   = (*hookRuntime)(nil)
)

// hookRuntime is the real runtime with a hook run before each Start; the
// runtime's optional capabilities pass through.
type hookRuntime struct {
	*runtime.Runc
	mu      sync.Mutex
	starts  int
	onStart func(ctx context.Context, spec *specs.Spec) error
}

func (h *hookRuntime) Start(ctx context.Context, id, bundle string, spec *specs.Spec, logPath string, extra ...*os.File) error {
	h.mu.Lock()
	h.starts++
	hook := h.onStart
	h.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, spec); err != nil {
			return err
		}
	}
	return h.Runc.Start(ctx, id, bundle, spec, logPath, extra...)
}

// Create and StartCreated pass through, so sleeping sandboxes are prepared
// as with the real runtime; a start of a prepared container counts as a start.
func (h *hookRuntime) Create(ctx context.Context, id, bundle string, spec *specs.Spec, logPath string, extra ...*os.File) error {
	return h.Runc.Create(ctx, id, bundle, spec, logPath, extra...)
}

func (h *hookRuntime) StartCreated(ctx context.Context, id string) error {
	h.mu.Lock()
	h.starts++
	h.mu.Unlock()
	return h.Runc.StartCreated(ctx, id)
}

func (h *hookRuntime) startCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.starts
}

// env is one manager on its own data dir, with the real runc and bbolt.
type env struct {
	t     *testing.T
	data  string
	cache string // the image cache (HUTCH_CACHE)
	// cgroupParent is where the runtime puts the sandboxes' cgroups.
	cgroupParent string
	rt           *hookRuntime
	store        *store.Bolt
	snaps        *snapshot.Store
	// remote, when set before open, makes the manager's blob store over
	// its snapshot store.
	remote func(*snapshot.Store) catalog.Remote
	m      *Manager
}

func newEnv(t *testing.T) *env {
	t.Helper()
	testutil.RequiresRoot(t)
	cache := testutil.RequiresImage(t)
	// Short: the agent socket path must fit in sun_path.
	data, err := os.MkdirTemp("", "hm-")
	if err != nil {
		t.Fatal(err)
	}
	parent := runtime.CgroupParent(sandbox.DaemonTag(data))
	rc, err := runtime.NewRunc(filepath.Join(data, "runc"), parent, slog.New(slog.DiscardHandler))
	if err != nil {
		testutil.Unavailable(t, "runc: %v", err)
	}
	e := &env{t: t, data: data, cache: cache, cgroupParent: parent, rt: &hookRuntime{Runc: rc}}
	e.open()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		e.rt.mu.Lock()
		e.rt.onStart = nil
		e.rt.mu.Unlock()
		for _, r := range e.m.List() {
			if err := e.m.Delete(ctx, r.Name); err != nil {
				t.Errorf("cleanup: delete %s: %v", r.Name, err)
			}
		}
		e.m.Close()
		e.rt.Close()
		e.store.Close()
		requireNoMounts(t, data)
		if err := os.RemoveAll(data); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return e
}

// open opens the store and a manager on e.data, as a daemon start does.
func (e *env) open() {
	e.t.Helper()
	db, err := store.Open(filepath.Join(e.data, "hutch.db"))
	if err != nil {
		e.t.Fatal(err)
	}
	if e.snaps, err = snapshot.Open(filepath.Join(e.data, "snapshots"), nil); err != nil {
		e.t.Fatal(err)
	}
	m, err := New(context.Background(), slog.New(slog.DiscardHandler), e.config(), e.rt, defaultImage{e.cache}, db)
	if err != nil {
		db.Close()
		e.t.Fatal(err)
	}
	e.store, e.m = db, m
}

// config is the manager's configuration on e; remote, when set, is its
// blob store.
func (e *env) config() Config {
	cfg := Config{DataDir: e.data, AgentBinary: agentBin, IdleCheck: 50 * time.Millisecond, Snapshots: e.snaps}
	if e.remote != nil {
		cfg.Remote = e.remote(e.snaps)
	}
	return cfg
}

// restart drops the manager and its store, as a daemon exit does, and
// opens new ones on the same data dir.
func (e *env) restart() {
	e.t.Helper()
	e.m.Close()
	if err := e.store.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
}

// run execs a shell command through conn and returns its stdout.
func run(t *testing.T, conn *agentconn.Conn, shell string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := conn.Process.Exec(ctx, connect.NewRequest(&hutchv1.ExecRequest{Shell: shell}))
	if err != nil {
		t.Fatalf("exec %q: %v", shell, err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	var exit *hutchv1.ExecExit
	for s.Receive() {
		switch ev := s.Msg().Event.(type) {
		case *hutchv1.ExecEvent_Stdout:
			out.Write(ev.Stdout)
		case *hutchv1.ExecEvent_Stderr:
			errb.Write(ev.Stderr)
		case *hutchv1.ExecEvent_Exit:
			exit = ev.Exit
		}
	}
	if err := s.Err(); err != nil {
		t.Fatalf("exec %q: %v", shell, err)
	}
	if exit == nil || exit.Code != 0 {
		t.Fatalf("exec %q: exit %v: %s", shell, exit, errb.String())
	}
	return out.String()
}

// requireNoMounts fails if anything is mounted under dir.
func requireNoMounts(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			t.Errorf("mount left behind: %s", f[4])
		}
	}
}

// cgroups lists the cgroup dirs of sandbox id in every hierarchy.
func cgroups(id string) []string {
	var out []string
	for _, p := range []string{"/sys/fs/cgroup/*/hutch/*/" + id, "/sys/fs/cgroup/hutch/*/" + id} {
		m, _ := filepath.Glob(p)
		out = append(out, m...)
	}
	return out
}

// requireGone fails unless sandbox id left nothing on the host.
func (e *env) requireGone(t *testing.T, name, id string) {
	t.Helper()
	if _, err := os.Stat(e.m.dir(id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("sandbox dir %s: %v, want it removed", e.m.dir(id), err)
	}
	requireNoMounts(t, e.m.dir(id))
	if err := testutil.Poll(2*time.Second, func() error {
		if left := cgroups(id); len(left) > 0 {
			return fmt.Errorf("cgroups left behind: %v", left)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if st, _, err := e.rt.State(context.Background(), id); err != nil || st != runtime.StatusMissing {
		t.Errorf("runtime state %q %v, want missing", st, err)
	}
	var rec sandbox.Record
	if err := e.store.Get(context.Background(), name, &rec); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("store record of %s: %v %+v, want not found", name, err, rec)
	}
	if _, err := e.m.Get(name); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get(%s) = %v, want not found", name, err)
	}
}
