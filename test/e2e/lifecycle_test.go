package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/client"
	"github.com/hutch-sh/hutch/internal/testutil"
)

func TestInvalidNames(t *testing.T) {
	d := newDaemon(t)
	ctx := context.Background()
	for _, name := range []string{"", "Bad_Name", "UPPER", strings.Repeat("a", 64), "-lead", "trail-", "a b", "a/b", "..", "ünï"} {
		t.Run(name, func(t *testing.T) {
			_, err := d.Client.Exec(ctx, name, client.Command{Argv: []string{"true"}})
			if !errors.Is(err, client.ErrInvalidArgument) || !strings.Contains(err.Error(), "name") {
				t.Fatalf("exec in %q: %v, want invalid argument explaining the name", name, err)
			}
		})
	}
	if _, err := d.Client.Create(ctx, strings.Repeat("a", 63), client.CreateOptions{}); err != nil {
		t.Fatalf("63-character name refused: %v", err)
	}
	_, stderr, code := d.hutch("", "exec", "Bad_Name", "--", "true")
	if code == 0 || !strings.Contains(stderr, "name") {
		t.Fatalf("CLI: code %d stderr %q", code, stderr)
	}
}

func TestUnknownSandboxIsNotCreated(t *testing.T) {
	d := newDaemon(t)
	ctx := context.Background()
	if _, err := d.Client.Get(ctx, "ghost"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("status: %v", err)
	}
	if err := d.Client.Delete(ctx, "ghost"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("rm: %v", err)
	}
	if _, _, err := d.Client.ReadFile(ctx, "ghost", "/etc/hostname"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("read: %v", err)
	}
	if _, _, code := d.hutch("", "status", "ghost"); code != 1 {
		t.Fatalf("status exit code %d, want 1", code)
	}
	if sbs, _ := d.Client.List(ctx); len(sbs) != 0 {
		t.Fatalf("reads created sandboxes: %v", sbs)
	}
}

func TestConcurrentCreateOfOneName(t *testing.T) {
	d := newDaemon(t)
	const n = 20
	var wg sync.WaitGroup
	ids := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out strings.Builder
			_, errs[i] = d.Client.Exec(context.Background(), "same", client.Command{Argv: []string{"cat", "/proc/1/cgroup"}, Stdout: &out})
			ids[i] = out.String()
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("calls landed in different sandboxes:\n%s\n%s", ids[0], ids[i])
		}
	}
	sbs, _ := d.Client.List(context.Background())
	if len(sbs) != 1 {
		t.Fatalf("%d sandboxes, want 1", len(sbs))
	}
}

// Sandboxes handed out by the warm pool are named like any other, and the
// pool's own sandboxes never leak: a daemon killed with SIGKILL leaves them
// behind, and the next one removes them.
func TestWarmPool(t *testing.T) {
	d := newDaemon(t)
	for _, name := range []string{"warm-a", "warm-b", "warm-c"} {
		out := d.run(name, "sh", "-c", `echo "$(hostname) $HOSTNAME"; cat /etc/hostname 2>/dev/null | head -c0`)
		if out != name+" "+name+"\n" {
			t.Fatalf("hostname and $HOSTNAME in %s: %q", name, out)
		}
	}
	named := map[string]bool{}
	sbs, _ := d.Client.List(context.Background())
	for _, s := range sbs {
		named[s.Id] = true
	}
	unnamed := func() []string {
		var ids []string
		ents, _ := os.ReadDir(filepath.Join(d.data, "sandboxes"))
		for _, e := range ents {
			if !named[e.Name()] {
				ids = append(ids, e.Name())
			}
		}
		return ids
	}
	// Let the pool (two by default) refill and its sandboxes run, then kill
	// the daemon under it.
	var pooled []string
	testutil.Eventually(t, 30*time.Second, func() error {
		pooled = unnamed()
		if len(pooled) < 2 {
			return fmt.Errorf("the warm pool did not refill: %d pooled sandboxes %v", len(pooled), pooled)
		}
		for _, id := range pooled {
			if len(pidsInCgroup(id)) == 0 {
				return fmt.Errorf("pooled sandbox %s runs nothing yet", id)
			}
		}
		return nil
	})
	d.kill()
	d.start()
	for _, id := range pooled {
		if _, err := os.Stat(filepath.Join(d.data, "sandboxes", id)); !os.IsNotExist(err) {
			t.Errorf("orphaned pool sandbox %s not removed after restart: %v", id, err)
		}
		if pids := pidsInCgroup(id); len(pids) > 0 {
			t.Errorf("orphaned pool sandbox %s still has processes %v", id, pids)
		}
	}
	if out := d.run("warm-a", "hostname"); out != "warm-a\n" {
		t.Fatalf("after restart: %q", out)
	}
}

func TestRemoveLeavesNothing(t *testing.T) {
	d := newDaemon(t)
	ctx := context.Background()
	d.run("gone", "sh", "-c", "sleep 1000 & echo data > /workspace/f")
	sb, err := d.Client.Get(ctx, "gone")
	if err != nil {
		t.Fatal(err)
	}
	id := sb.Id
	if out, stderr, code := d.hutch("", "rm", "gone"); code != 0 || out != "gone\n" {
		t.Fatalf("rm: %q %q", out, stderr)
	}
	if _, err := d.Client.Get(ctx, "gone"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("status after rm: %v", err)
	}
	assertGone(t, d, id)
	// The name is free again, and a new sandbox starts empty.
	if out := d.run("gone", "sh", "-c", "cat /workspace/f 2>/dev/null || echo empty"); out != "empty\n" {
		t.Fatalf("new sandbox sees old data: %q", out)
	}
}

// assertGone fails if sandbox id left its dir, runc state, cgroups, mounts
// or processes on the host.
func assertGone(t *testing.T, d *daemon, id string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(d.data, "sandboxes", id)); !os.IsNotExist(err) {
		t.Errorf("sandbox dir left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.data, "runc", id)); !os.IsNotExist(err) {
		t.Errorf("runc state left: %v", err)
	}
	cgs, _ := filepath.Glob("/sys/fs/cgroup/*/hutch/*/" + id)
	if len(cgs) > 0 {
		t.Errorf("cgroups left: %v", cgs)
	}
	assertNoMounts(t, filepath.Join(d.data, "sandboxes", id))
	if pids := pidsInCgroup(id); len(pids) > 0 {
		t.Errorf("processes left: %v", pids)
	}
}

// pidsInCgroup lists live host pids whose cgroup path names the sandbox id.
// Zombies are left out: a sandbox init that a killed daemon left to the
// host's init is reaped by that init, on its own schedule.
func pidsInCgroup(id string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cgroup")
		if strings.Contains(string(b), "/"+id+"\n") && !zombie(e.Name()) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestRestartKeepsSandboxes(t *testing.T) {
	for _, how := range []string{"sigterm", "sigkill"} {
		t.Run(how, func(t *testing.T) {
			d := newDaemon(t)
			d.run("keep", "sh", "-c", "echo before > /workspace/f")
			if how == "sigkill" {
				d.kill()
			} else {
				d.stop()
			}
			d.start()
			sbs, err := d.Client.List(context.Background())
			if err != nil || len(sbs) != 1 || sbs[0].Name != "keep" {
				t.Fatalf("after restart: %v %v", sbs, err)
			}
			if got := d.run("keep", "cat", "/workspace/f"); got != "before\n" {
				t.Fatalf("file after restart: %q", got)
			}
		})
	}
}

// When the host loses the containers (a reboot), the sandboxes come back
// stopped with their disks and start again on next use.
func TestRestartAfterContainersLost(t *testing.T) {
	d := newDaemon(t)
	d.run("lost", "sh", "-c", "echo disk > /workspace/f")
	sb, _ := d.Client.Get(context.Background(), "lost")
	d.kill()
	killSandbox(t, d, sb.Id)
	d.start()
	got, err := d.Client.Get(context.Background(), "lost")
	if err != nil || got.State.String() != "STATE_STOPPED" {
		t.Fatalf("state after lost container: %v %v", got, err)
	}
	assertNoMounts(t, filepath.Join(d.data, "sandboxes", sb.Id))
	if out := d.run("lost", "cat", "/workspace/f"); out != "disk\n" {
		t.Fatalf("file after restart: %q", out)
	}
}

func zombie(pid string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return true // gone
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

// killSandbox kills a sandbox's init (the agent) from the host.
func killSandbox(t *testing.T, d *daemon, id string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.data, "runc", id, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, `"init_process_pid":`)
	if i < 0 {
		t.Fatalf("no init pid in runc state")
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(s[i+len(`"init_process_pid":`):], ",", 2)[0]))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if !zombie(strconv.Itoa(pid)) {
			return fmt.Errorf("init %d of sandbox %s still alive after SIGKILL", pid, id)
		}
		return nil
	})
}

func TestAgentCrashRecovers(t *testing.T) {
	d := newDaemon(t)
	d.run("crash", "sh", "-c", "echo safe > /workspace/f")
	sb, _ := d.Client.Get(context.Background(), "crash")
	killSandbox(t, d, sb.Id)
	_, err := d.Client.Exec(context.Background(), "crash", client.Command{Argv: []string{"true"}})
	if err != nil && !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("exec on a crashed agent: %v, want unavailable or success", err)
	}
	if got := d.run("crash", "cat", "/workspace/f"); got != "safe\n" {
		t.Fatalf("after recovery: %q", got)
	}
}
