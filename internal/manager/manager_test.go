package manager

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/runtime"
	"github.com/hutch-sh/hutch/internal/sandbox"
	"github.com/hutch-sh/hutch/internal/testutil"
)

func TestEnsureConcurrentOneName(t *testing.T) {
	e := newEnv(t)
	const n = 20
	type res struct {
		rec     sandbox.Record
		created bool
		err     error
	}
	results := make(chan res, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			rec, conn, created, err := e.m.Ensure(context.Background(), "one", sandbox.CreateOptions{})
			if err == nil && conn == nil {
				err = errors.New("nil conn")
			}
			results <- res{rec, created, err}
		})
	}
	close(start)
	wg.Wait()
	close(results)
	ids := map[string]bool{}
	created := 0
	for r := range results {
		if r.err != nil {
			t.Fatalf("Ensure: %v", r.err)
		}
		ids[r.rec.ID] = true
		if r.created {
			created++
		}
		if r.rec.State != sandbox.StateRunning {
			t.Errorf("state %q, want running", r.rec.State)
		}
	}
	if len(ids) != 1 {
		t.Errorf("%d sandbox ids for one name: %v", len(ids), ids)
	}
	if created != 1 {
		t.Errorf("created=true returned %d times, want exactly once", created)
	}
	if got := e.rt.startCount(); got != 1 {
		t.Errorf("runtime Start called %d times, want 1", got)
	}
	if l := e.m.List(); len(l) != 1 || l[0].Name != "one" {
		t.Errorf("List = %+v", l)
	}
}

func TestEnsureNamesInParallel(t *testing.T) {
	e := newEnv(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	e.rt.onStart = func(ctx context.Context, spec *specs.Spec) error {
		if spec.Hostname == "a" {
			close(entered)
			<-release
		}
		return nil
	}
	aDone := make(chan error, 1)
	go func() {
		_, _, _, err := e.m.Ensure(context.Background(), "a", sandbox.CreateOptions{})
		aDone <- err
	}()
	select {
	case <-entered:
	case err := <-aDone:
		t.Fatalf("Ensure(a) returned before its Start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Start of a never called")
	}
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()

	// A is stuck in Start holding its lock: B must not wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recB, connB, createdB, err := e.m.Ensure(ctx, "b", sandbox.CreateOptions{})
	if err != nil || !createdB {
		t.Fatalf("Ensure(b) while a starts: created %v err %v", createdB, err)
	}
	if got := run(t, connB, "hostname"); got != "b\n" {
		t.Errorf("hostname in b = %q", got)
	}
	// List must not block on a's lock either; a shows as creating.
	listed := make(chan []sandbox.Record, 1)
	go func() { listed <- e.m.List() }()
	select {
	case l := <-listed:
		states := map[string]sandbox.State{}
		for _, r := range l {
			states[r.Name] = r.State
		}
		if states["a"] != sandbox.StateCreating || states["b"] != sandbox.StateRunning {
			t.Errorf("List states = %v, want a creating, b running", states)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("List blocked on a sandbox that is starting")
	}
	select {
	case err := <-aDone:
		t.Fatalf("Ensure(a) finished while its Start was blocked: %v", err)
	default:
	}

	close(release)
	select {
	case err := <-aDone:
		if err != nil {
			t.Fatalf("Ensure(a): %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Ensure(a) did not finish after release")
	}
	recA, err := e.m.Get("a")
	if err != nil || recA.State != sandbox.StateRunning || recA.ID == recB.ID {
		t.Errorf("a = %+v, %v", recA, err)
	}
}

func TestDeleteRemovesEverything(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rec, conn, _, err := e.m.Ensure(ctx, "gone", sandbox.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, conn, "echo data > /workspace/f; sleep 1000 >/dev/null 2>&1 &")
	if len(cgroups(rec.ID)) == 0 {
		t.Fatalf("running sandbox has no cgroup under /hutch/%s", rec.ID)
	}
	if err := e.m.Delete(ctx, "gone"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	e.requireGone(t, "gone", rec.ID)
	if l := e.m.List(); len(l) != 0 {
		t.Errorf("List after delete = %+v", l)
	}
	if err := e.m.Delete(ctx, "gone"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second Delete = %v, want not found", err)
	}
	// The name is free again: a new sandbox, with a new id and an empty disk.
	rec2, conn2, created, err := e.m.Ensure(ctx, "gone", sandbox.CreateOptions{})
	if err != nil || !created || rec2.ID == rec.ID {
		t.Fatalf("re-create: %+v created %v err %v", rec2, created, err)
	}
	if got := run(t, conn2, "cat /workspace/f 2>/dev/null || echo none"); got != "none\n" {
		t.Errorf("new sandbox sees old disk: %q", got)
	}
}

func TestRestartAdoptsAndRecovers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rec, conn, _, err := e.m.Ensure(ctx, "keep", sandbox.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, conn, "echo kept > /workspace/f")
	_, pid, _ := e.rt.State(ctx, rec.ID)

	t.Run("adopt running", func(t *testing.T) {
		e.restart()
		starts := e.rt.startCount()
		got, err := e.m.Get("keep")
		if err != nil || got.ID != rec.ID || got.State != sandbox.StateRunning {
			t.Fatalf("after restart: %+v %v, want running %s", got, err, rec.ID)
		}
		_, conn, created, err := e.m.Ensure(ctx, "keep", sandbox.CreateOptions{})
		if err != nil || created {
			t.Fatalf("Ensure after restart: created %v err %v", created, err)
		}
		if got := run(t, conn, "cat /workspace/f"); got != "kept\n" {
			t.Errorf("file = %q", got)
		}
		if e.rt.startCount() != starts {
			t.Error("adopting restarted the container")
		}
		if _, pid2, _ := e.rt.State(ctx, rec.ID); pid2 != pid {
			t.Errorf("init pid %d, was %d: the container was replaced", pid2, pid)
		}
	})

	tests := []struct {
		name   string
		notice func() // how the manager learns the container died
	}{
		{"daemon restart after the container died", e.restart},
		{"agent marked broken", func() { e.m.MarkBroken("keep") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, pid, err := e.rt.State(ctx, rec.ID)
			if err != nil || pid <= 0 {
				t.Fatalf("state: pid %d %v", pid, err)
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			waitNotRunning(t, e, rec.ID)
			tt.notice()
			got, conn, created, err := e.m.Ensure(ctx, "keep", sandbox.CreateOptions{})
			if err != nil || created || got.ID != rec.ID || got.State != sandbox.StateRunning {
				t.Fatalf("Ensure after kill: %+v created %v err %v", got, created, err)
			}
			if got := run(t, conn, "cat /workspace/f"); got != "kept\n" {
				t.Errorf("upper dir not kept across restart: file = %q", got)
			}
			if _, pid2, _ := e.rt.State(ctx, rec.ID); pid2 == pid {
				t.Errorf("init pid still %d: not restarted", pid)
			}
		})
	}
}

func waitNotRunning(t *testing.T, e *env, id string) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() error {
		st, _, err := e.rt.State(context.Background(), id)
		if err == nil && st != runtime.StatusRunning {
			return nil
		}
		return fmt.Errorf("container %s still %q after SIGKILL (%v)", id, st, err)
	})
}

func TestFailedStartLeavesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	boom := fmt.Errorf("injected: %w", errdefs.ErrInternal)
	e.rt.onStart = func(context.Context, *specs.Spec) error { return boom }
	_, _, _, err := e.m.Ensure(ctx, "fails", sandbox.CreateOptions{})
	if !errors.Is(err, boom) {
		t.Fatalf("Ensure = %v, want the start error", err)
	}
	if l := e.m.List(); len(l) != 0 {
		t.Errorf("List after failed create = %+v", l)
	}
	var rec sandbox.Record
	if err := e.store.Get(context.Background(), "fails", &rec); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("record left behind: %+v %v", rec, err)
	}
	requireNoMounts(t, e.data)
	// A failed create does not poison the name.
	e.rt.onStart = nil
	if _, _, created, err := e.m.Ensure(ctx, "fails", sandbox.CreateOptions{}); err != nil || !created {
		t.Fatalf("Ensure after fix: created %v err %v", created, err)
	}
}

func TestEnsureBadOptions(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		opts sandbox.CreateOptions
		want error
	}{
		{"unknown instance type", sandbox.CreateOptions{InstanceType: "huge"}, errdefs.ErrInvalidArgument},
		{"unknown image", sandbox.CreateOptions{Image: "nope"}, errdefs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := e.m.Ensure(context.Background(), "bad", tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Ensure = %v, want %v", err, tt.want)
			}
			if _, err := e.m.Get("bad"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("Get after failed create = %v, want not found", err)
			}
			if e.rt.startCount() != 0 {
				t.Error("runtime started a container for a bad request")
			}
		})
	}
}

func TestInvalidNames(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	names := []string{
		"", "-a", "a-", "A", "Demo", "a_b", "a.b", "a b", "a/b", "../x", "é", "a\x00",
		strings.Repeat("a", 64),
	}
	for _, name := range names {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			if _, _, _, err := e.m.Ensure(ctx, name, sandbox.CreateOptions{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Ensure = %v, want invalid argument", err)
			}
			if _, err := e.m.Conn(ctx, name); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Conn = %v, want invalid argument", err)
			}
			if _, err := e.m.Get(name); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Get = %v, want invalid argument", err)
			}
			if err := e.m.Delete(ctx, name); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Delete = %v, want invalid argument", err)
			}
		})
	}
	if e.rt.startCount() != 0 || len(e.m.List()) != 0 {
		t.Error("an invalid name reached the runtime or the list")
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true}, {"0", true}, {"a-b", true}, {"a--b", true}, {"demo1", true},
		{strings.Repeat("a", 63), true}, {strings.Repeat("a", 64), false},
		{"", false}, {"-", false}, {"-a", false}, {"a-", false}, {"A", false}, {"a_b", false},
		{"a.b", false}, {"a\n", false}, {"a\nb", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.name), func(t *testing.T) {
			err := sandbox.ValidateName(tt.name)
			if tt.ok != (err == nil) {
				t.Fatalf("ValidateName = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("error %v is not invalid argument", err)
			}
		})
	}
}

func TestConnMissing(t *testing.T) {
	e := newEnv(t)
	if _, err := e.m.Conn(context.Background(), "never"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Conn of a missing sandbox = %v, want not found", err)
	}
	if l := e.m.List(); len(l) != 0 {
		t.Errorf("Conn created a placeholder: %+v", l)
	}
}
