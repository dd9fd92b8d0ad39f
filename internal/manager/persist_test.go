package manager

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/internal/blob"
	"github.com/hutch-sh/hutch/internal/catalog"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
	"github.com/hutch-sh/hutch/internal/snapshot"
	"github.com/hutch-sh/hutch/internal/testutil"
)

// slowRemote is a real remote over a blob directory whose pushes wait for
// a token on release, announcing themselves on pushing.
type slowRemote struct {
	snapshot.Remote
	pushing chan string
	release chan struct{}
}

var _ catalog.Remote = (*slowRemote)(nil)

func (r *slowRemote) Push(ctx context.Context, id string) error {
	r.pushing <- id
	select {
	case <-r.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return r.Remote.Push(ctx, id)
}

// within fails t unless fn returns within d.
func within(t *testing.T, d time.Duration, what string, fn func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(d):
		t.Fatalf("%s: still waiting after %s (held up by a push?)", what, d)
	}
}

// Pushes to the blob store run without the sandbox's lock: a slow push
// holds up no other call on the same name. A removal waits for the push in
// flight, so the session it drops stays dropped.
func TestPersistPushesWithoutTheLock(t *testing.T) {
	e := newEnv(t)
	bs, err := blob.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	slow := &slowRemote{pushing: make(chan string, 1), release: make(chan struct{})}
	e.remote = func(s *snapshot.Store) catalog.Remote {
		slow.Remote = snapshot.Remote{Local: s, Blobs: bs}
		return slow
	}
	e.restart()
	// Runs before the env's cleanup: a failed test does not leave a push
	// blocked under the removal of its sandbox.
	t.Cleanup(func() { close(slow.release) })
	ctx := context.Background()
	_, conn, _, err := e.m.Ensure(ctx, "pers", sandbox.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, conn, "echo p > /workspace/p")
	persist := true
	if _, err := e.m.ConfigureSleep(ctx, "pers", SleepSettings{Persist: &persist}); err != nil {
		t.Fatal(err)
	}

	slept := make(chan error, 1)
	go func() { _, err := e.m.Sleep(ctx, "pers"); slept <- err }()
	var pushed string
	within(t, 30*time.Second, "sleep starts its push", func() error { pushed = <-slow.pushing; return nil })
	within(t, 20*time.Second, "calls on the sandbox during its push", func() error {
		if _, err := e.m.GetSleep("pers"); err != nil {
			return err
		}
		keep := false
		if _, err := e.m.ConfigureSleep(ctx, "pers", SleepSettings{KeepAlive: &keep}); err != nil {
			return err
		}
		conn, err = e.m.Conn(ctx, "pers") // wakes it
		return err
	})
	if got := run(t, conn, "cat /workspace/p"); got != "p\n" {
		t.Fatalf("woken during the push: file %q", got)
	}
	slow.release <- struct{}{}
	within(t, 30*time.Second, "Sleep after its push", func() error { return <-slept })
	var sess catalog.Session
	if err := slow.LoadSession(ctx, "pers", &sess); err != nil || sess.Snapshot != pushed {
		t.Fatalf("session %+v %v, want it to name the pushed snapshot %s", sess, err, pushed)
	}
	if rec, _ := e.m.Get("pers"); rec.Persisted != pushed {
		t.Errorf("record names persisted snapshot %q, want %s", rec.Persisted, pushed)
	}

	// Removed while a push is in flight: the session goes after the push.
	go func() { _, err := e.m.Sleep(ctx, "pers"); slept <- err }()
	within(t, 30*time.Second, "second sleep starts its push", func() error { <-slow.pushing; return nil })
	removed := make(chan error, 1)
	go func() { removed <- e.m.Delete(ctx, "pers") }()
	testutil.Eventually(t, 20*time.Second, func() error {
		if _, err := e.m.Get("pers"); !errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("Get during the push = %v, want the sandbox removed", err)
		}
		return nil
	})
	slow.release <- struct{}{}
	within(t, 30*time.Second, "Sleep", func() error { return <-slept })
	within(t, 30*time.Second, "Delete", func() error { return <-removed })
	if err := slow.LoadSession(ctx, "pers", &sess); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("session after removal: %+v %v, want not found", sess, err)
	}
}
