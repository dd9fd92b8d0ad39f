package manager

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

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/runtime"
	"github.com/hutch-sh/hutch/internal/sandbox"
	"github.com/hutch-sh/hutch/internal/testutil"
)

func TestSleepKeepsDiskPortsAndAddress(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rec, conn, _, err := e.m.Ensure(ctx, "nap", sandbox.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, conn, "echo kept > /workspace/f; sleep 1000 &")
	tok, err := e.m.Expose(ctx, "nap", 8080)
	if err != nil {
		t.Fatal(err)
	}
	si, err := e.m.Sleep(ctx, "nap")
	if err != nil {
		t.Fatal(err)
	}
	if !si.Sleeping || !si.SleepsAt.IsZero() {
		t.Errorf("after Sleep: %+v, want sleeping with no sleep time", si)
	}
	requirePrepared(t, e, rec)
	if got, _ := e.m.Get("nap"); got.State != sandbox.StateSleeping {
		t.Errorf("state %q, want sleeping", got.State)
	}
	// Sleeping survives a daemon restart, which keeps the prepared container.
	e.restart()
	if got, _ := e.m.Get("nap"); got.State != sandbox.StateSleeping {
		t.Errorf("state after restart %q, want sleeping", got.State)
	}
	requirePrepared(t, e, rec)
	if !e.m.Preview("nap", 8080, tok) {
		t.Error("preview token lost across sleep")
	}
	before := e.rt.startCount()
	// Concurrent calls share one wake.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			if _, err := e.m.Conn(ctx, "nap"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("wake: %v", err)
	}
	if n := e.rt.startCount() - before; n != 1 {
		t.Errorf("%d starts for 8 concurrent calls on a sleeping sandbox, want 1", n)
	}
	conn, err = e.m.Conn(ctx, "nap")
	if err != nil {
		t.Fatal(err)
	}
	if out := run(t, conn, "cat /workspace/f; pgrep -c -x sleep || true"); out != "kept\n0\n" {
		t.Errorf("after wake: %q, want the file kept and no process left", out)
	}
	got, _ := e.m.Get("nap")
	if got.State != sandbox.StateRunning || got.Addr != rec.Addr || got.ID != rec.ID {
		t.Errorf("after wake: %+v, want running with the same id and address as %+v", got, rec)
	}
}

func TestIdleSleep(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, conn, _, err := e.m.Ensure(ctx, "idle", sandbox.CreateOptions{SleepAfter: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// A quiet exec stream open longer than SleepAfter keeps it awake.
	run(t, conn, "sleep 2")
	if got, _ := e.m.Get("idle"); got.State != sandbox.StateRunning {
		t.Fatalf("state %q while an exec stream was open, want running", got.State)
	}
	si, _ := e.m.GetSleep("idle")
	if si.SleepsAt.IsZero() || time.Until(si.SleepsAt) > time.Second {
		t.Errorf("sleeps at %v, want within 1s", si.SleepsAt)
	}
	waitState(t, e, "idle", sandbox.StateSleeping, 3*time.Second)

	// Kept alive: it stays up however idle.
	keep := true
	if _, err := e.m.ConfigureSleep(context.Background(), "idle", SleepSettings{KeepAlive: &keep}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Conn(ctx, "idle"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // longer than SleepAfter: staying up is the point
	if got, _ := e.m.Get("idle"); got.State != sandbox.StateRunning {
		t.Errorf("kept-alive sandbox is %q, want running", got.State)
	}
	keep = false
	if _, err := e.m.ConfigureSleep(context.Background(), "idle", SleepSettings{KeepAlive: &keep}); err != nil {
		t.Fatal(err)
	}
	waitState(t, e, "idle", sandbox.StateSleeping, 3*time.Second)
}

// A background process's log stream is activity too.
func TestIdleSleepWaitsForLogStream(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, conn, _, err := e.m.Ensure(ctx, "logs", sandbox.CreateOptions{SleepAfter: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Process.StartProcess(ctx, connect.NewRequest(&hutchv1.StartProcessRequest{Sandbox: "logs", Id: "p", Shell: "sleep 2"})); err != nil {
		t.Fatal(err)
	}
	s, err := conn.Process.ProcessLogs(ctx, connect.NewRequest(&hutchv1.ProcessLogsRequest{Sandbox: "logs", Id: "p", Follow: true}))
	if err != nil {
		t.Fatal(err)
	}
	for s.Receive() {
	}
	s.Close()
	if got, _ := e.m.Get("logs"); got.State != sandbox.StateRunning {
		t.Fatalf("state %q while a log stream was open, want running", got.State)
	}
	waitState(t, e, "logs", sandbox.StateSleeping, 3*time.Second)
}

func TestSleepBadInput(t *testing.T) {
	e := newEnv(t)
	if _, err := e.m.Sleep(context.Background(), "nobody"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Sleep(missing) = %v, want not found", err)
	}
	short := time.Millisecond
	if _, _, _, err := e.m.Ensure(context.Background(), "short", sandbox.CreateOptions{SleepAfter: short}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Ensure(sleepAfter 1ms) = %v, want invalid argument", err)
	}
	if _, _, _, err := e.m.Ensure(context.Background(), "ok", sandbox.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.ConfigureSleep(context.Background(), "ok", SleepSettings{SleepAfter: &short}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("ConfigureSleep(1ms) = %v, want invalid argument", err)
	}
}

func waitState(t *testing.T, e *env, name string, want sandbox.State, within time.Duration) {
	t.Helper()
	testutil.Eventually(t, within, func() error {
		got, err := e.m.Get(name)
		if err == nil && got.State == want {
			return nil
		}
		return fmt.Errorf("state of %s %q (%v), want %q", name, got.State, err, want)
	})
}

// requirePrepared fails unless sleeping rec holds only a prepared container:
// created, not started, nothing of the sandbox running in its cgroups, and
// its memory limit set.
func requirePrepared(t *testing.T, e *env, rec sandbox.Record) {
	t.Helper()
	st, pid, err := e.rt.State(context.Background(), rec.ID)
	if err != nil || st != runtime.StatusCreated {
		t.Fatalf("container %s (%v) while asleep, want created (prepared)", st, err)
	}
	procs, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", e.cgroupParent, rec.ID, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(procs)); len(got) != 1 || got[0] != strconv.Itoa(pid) {
		t.Errorf("processes in the sleeping sandbox's cgroup: %v, want only runc's waiting init %d", got, pid)
	}
	lim, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", e.cgroupParent, rec.ID, "memory.limit_in_bytes"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(lim)); got != strconv.FormatInt(rec.Limits.MemoryBytes, 10) {
		t.Errorf("memory limit of the prepared container %s, want %d", got, rec.Limits.MemoryBytes)
	}
}

// Removing a sleeping sandbox removes its prepared container, before and
// after a daemon restart.
func TestSleepingRemoveLeavesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var recs []sandbox.Record
	for _, name := range []string{"nap-a", "nap-b"} {
		rec, _, _, err := e.m.Ensure(ctx, name, sandbox.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.m.Sleep(ctx, name); err != nil {
			t.Fatal(err)
		}
		requirePrepared(t, e, rec)
		recs = append(recs, rec)
	}
	if err := e.m.Delete(ctx, "nap-a"); err != nil {
		t.Fatal(err)
	}
	e.requireGone(t, "nap-a", recs[0].ID)
	e.restart()
	if err := e.m.Delete(ctx, "nap-b"); err != nil {
		t.Fatal(err)
	}
	e.requireGone(t, "nap-b", recs[1].ID)
}

// A prepared container that went away while its sandbox slept (killed from
// outside) does not stop the wake: the sandbox starts afresh.
func TestWakeWithoutPreparedContainer(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rec, conn, _, err := e.m.Ensure(ctx, "nap", sandbox.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, conn, "echo kept > /workspace/f")
	if _, err := e.m.Sleep(ctx, "nap"); err != nil {
		t.Fatal(err)
	}
	requirePrepared(t, e, rec)
	_, pid, _ := e.rt.State(ctx, rec.ID)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	conn, err = e.m.Conn(ctx, "nap")
	if err != nil {
		t.Fatal(err)
	}
	if out := run(t, conn, "cat /workspace/f"); out != "kept\n" {
		t.Errorf("after wake: %q, want the file kept", out)
	}
	if st, _, _ := e.rt.State(ctx, rec.ID); st != runtime.StatusRunning {
		t.Errorf("container %s after wake, want running", st)
	}
}
