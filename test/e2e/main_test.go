// Package e2e tests hutch end to end: the real binaries, a real daemon, real
// runc sandboxes on the default image. They need root, runc and the default
// image (make test builds it): without them every test skips, or fails under
// CI=true.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/hutch-sh/hutch/client"
	"github.com/hutch-sh/hutch/internal/runtime"
	"github.com/hutch-sh/hutch/internal/sandbox"
	"github.com/hutch-sh/hutch/internal/testutil"
)

var (
	binDir   string
	cacheDir string
)

func TestMain(m *testing.M) {
	cacheDir = testutil.CacheDir()
	binDir = os.Getenv("HUTCH_BIN")
	// Without root every test stops at its gate (requireHost), so nothing
	// needs building.
	if binDir == "" && os.Geteuid() == 0 {
		dir, err := os.MkdirTemp("", "hutch-e2e-bin-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		build := exec.Command("go", "build", "-o", dir+"/", "github.com/hutch-sh/hutch/cmd/...")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Printf("e2e: build: %v\n%s", err, out)
			os.Exit(1)
		}
		binDir = dir
	}
	os.Exit(m.Run())
}

// daemon is one `hutch serve` process.
type daemon struct {
	t      *testing.T
	data   string
	token  string   // sent by Client when set
	extra  []string // more `hutch serve` flags
	public bool     // listen on every address, not loopback only (needs a token)
	url    string
	cmd    *exec.Cmd
	out    *syncBuffer
	Client *client.Client
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newDaemon starts a daemon on a fresh data dir, removed with everything in
// it when the test ends (after checking nothing leaked).
func newDaemon(t *testing.T) *daemon { return newDaemonArgs(t, "") }

// newDaemonArgs is newDaemon with extra `hutch serve` flags; its Client
// sends token when it is set.
func newDaemonArgs(t *testing.T, token string, extra ...string) *daemon {
	t.Helper()
	return launchDaemon(t, &daemon{token: token, extra: extra})
}

// requireHost gates every test that runs the binaries: they need root, runc
// and the default image; without them the test skips, or fails under CI=true.
func requireHost(t *testing.T) {
	t.Helper()
	testutil.RequiresImage(t)
	testutil.RequiresTool(t, "runc")
}

// launchDaemon starts d on a new data dir and cleans up after the test.
func launchDaemon(t *testing.T, d *daemon) *daemon {
	t.Helper()
	requireHost(t)
	data, err := os.MkdirTemp("", "hutch-e2e-data-")
	if err != nil {
		t.Fatal(err)
	}
	d.t, d.data = t, data
	d.start()
	t.Cleanup(func() {
		var ids []string
		if d.cmd != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if sbs, err := d.Client.List(ctx); err == nil {
				for _, s := range sbs {
					ids = append(ids, s.Id)
					if err := d.Client.Delete(ctx, s.Name); err != nil {
						t.Errorf("cleanup: rm %s: %v", s.Name, err)
					}
				}
			}
			d.stop()
		}
		assertNoMounts(t, data)
		assertNoCgroups(t, data)
		assertNoNetwork(t, data, ids)
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.out.String())
		}
		os.RemoveAll(data)
	})
	return d
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (d *daemon) start() {
	t := d.t
	t.Helper()
	addr := freePort(t)
	d.out = &syncBuffer{}
	listen := addr
	if d.public {
		_, port, _ := net.SplitHostPort(addr)
		listen = "0.0.0.0:" + port
	}
	args := append([]string{"serve", "--listen", listen, "--data", d.data, "--cache", cacheDir}, d.extra...)
	d.cmd = exec.Command(filepath.Join(binDir, "hutch"), args...)
	d.cmd.Stdout = d.out
	d.cmd.Stderr = d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.url = "http://" + addr
	var opts []client.Option
	if d.token != "" {
		opts = append(opts, client.WithToken(d.token))
	}
	d.Client = client.New(d.url, opts...)
	exited := false
	err := testutil.Poll(60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := d.Client.Healthy(ctx)
		if err != nil && zombie(strconv.Itoa(d.cmd.Process.Pid)) {
			exited = true
			return nil
		}
		return err
	})
	switch {
	case exited:
		_ = d.cmd.Wait()
		d.cmd = nil
		t.Fatalf("daemon exited before it was healthy:\n%s", d.out.String())
	case err != nil:
		t.Fatalf("daemon not healthy: %v\n%s", err, d.out.String())
	}
}

// stop ends the daemon gracefully; sandboxes keep running.
func (d *daemon) stop() { d.signal(syscall.SIGTERM) }

// kill ends the daemon with SIGKILL.
func (d *daemon) kill() { d.signal(syscall.SIGKILL) }

func (d *daemon) signal(sig syscall.Signal) {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(sig)
	_ = d.cmd.Wait()
	d.cmd = nil
}

// hutch runs the CLI against d and returns stdout, stderr and the exit code.
func (d *daemon) hutch(stdin string, args ...string) (string, string, int) {
	d.t.Helper()
	return d.hutchEnv(nil, stdin, args...)
}

// hutchEnv is hutch with extra environment variables.
func (d *daemon) hutchEnv(env []string, stdin string, args ...string) (string, string, int) {
	d.t.Helper()
	requireHost(d.t)
	cmd := exec.Command(filepath.Join(binDir, "hutch"), args...)
	cmd.Env = append(append(os.Environ(), "HUTCH_URL="+d.url), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		d.t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// run execs argv in sandbox name and returns its stdout, failing on a
// non-zero exit.
func (d *daemon) run(name string, argv ...string) string {
	d.t.Helper()
	var out, errb bytes.Buffer
	st, err := d.Client.Exec(context.Background(), name, client.Command{Argv: argv, Stdout: &out, Stderr: &errb})
	if err != nil {
		d.t.Fatalf("exec %v in %s: %v", argv, name, err)
	}
	if st.Code != 0 {
		d.t.Fatalf("exec %v in %s: exit %d: %s", argv, name, st.Code, errb.String())
	}
	return out.String()
}

// assertNoCgroups fails if the daemon with this data dir left any sandbox
// cgroup behind, in any hierarchy.
func assertNoCgroups(t *testing.T, data string) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", runtime.CgroupParent(sandbox.DaemonTag(data)), "*"))
	for _, d := range left {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			t.Errorf("cgroup left behind: %s", d)
		}
	}
}

// assertNoNetwork fails if the daemon with this data dir left its bridge,
// its nftables table, or the veth of any of the sandboxes ids behind.
func assertNoNetwork(t *testing.T, data string, ids []string) {
	t.Helper()
	tag := sandbox.DaemonTag(data)
	if _, err := netlink.LinkByName("hutch" + tag); err == nil {
		t.Errorf("bridge hutch%s left behind", tag)
	}
	for _, id := range ids {
		if _, err := netlink.LinkByName("hv" + strings.TrimPrefix(id, "hb-")); err == nil {
			t.Errorf("veth of %s left behind", id)
		}
	}
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name == "hutch-"+tag {
			t.Errorf("nftables table %s left behind", tb.Name)
		}
	}
}

// assertNoMounts fails if anything is still mounted under dir.
func assertNoMounts(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir) {
			t.Errorf("mount left behind: %s", f[4])
		}
	}
}
