package manager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

func TestSnapshotAndFork(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, conn, _, err := e.m.Ensure(ctx, "par", sandbox.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, conn, `set -e; echo keep > /workspace/keep; mkdir -p /workspace/d/e; echo deep > /workspace/d/e/f
		ln /workspace/keep /workspace/hard; ln -s keep /workspace/sym; rm /etc/debian_version
		(while :; do date +%s%N >> /workspace/busy; done) >/dev/null 2>&1 &
		while [ ! -s /workspace/busy ]; do sleep 0.01; done`)
	snap, err := e.m.Snapshot(ctx, "par", 0)
	if err != nil {
		t.Fatal(err)
	}
	// The parent runs on, unfrozen.
	run(t, conn, "echo after >> /workspace/keep")
	id, recs, err := e.m.Fork(ctx, "", []string{"f1", "f2"}, snap.ID, sandbox.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if id != snap.ID || len(recs) != 2 {
		t.Fatalf("Fork = %s %d records", id, len(recs))
	}
	for _, r := range recs {
		if r.Lowers[0] != snap.Lowers[0] || r.FromSnapshot != snap.ID {
			t.Errorf("fork %s stacks %v from %q, want the snapshot's layer %s shared", r.Name, r.Lowers, r.FromSnapshot, snap.Lowers[0])
		}
	}
	f1, err := e.m.Conn(ctx, "f1")
	if err != nil {
		t.Fatal(err)
	}
	want := "keep\ndeep\nkeep\nkeep\ngone\n"
	got := run(t, f1, `cat /workspace/keep /workspace/d/e/f /workspace/hard /workspace/sym; test -e /etc/debian_version || echo gone`)
	if got != want {
		t.Errorf("fork sees %q, want %q", got, want)
	}
	// The busy writer was frozen mid-run: the fork's copy is whole lines.
	run(t, f1, `awk 'length($0) < 10 { exit 1 }' /workspace/busy`)
	run(t, f1, "echo changed > /workspace/keep")
	f2, _ := e.m.Conn(ctx, "f2")
	if got := run(t, f2, "cat /workspace/keep"); got != "keep\n" {
		t.Errorf("f2 sees %q after f1 wrote, want its own copy", got)
	}
	if got := run(t, conn, "cat /workspace/keep"); got != "keep\nafter\n" {
		t.Errorf("parent sees %q, want its own disk", got)
	}

	// A snapshot of a fork stores only what changed since.
	snap2, err := e.m.Snapshot(ctx, "f1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap2.Lowers) != len(snap.Lowers)+1 || snap2.Size >= snap.Size {
		t.Errorf("snapshot of fork: %d lowers, %d bytes; first: %d lowers, %d bytes", len(snap2.Lowers), snap2.Size, len(snap.Lowers), snap.Size)
	}

	if err := e.m.DeleteSnapshot(ctx, snap.ID); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("deleting a snapshot forks stand on: %v, want failed precondition", err)
	}
	infos, err := e.m.ListSnapshots(context.Background(), "par")
	if err != nil || len(infos) != 1 || len(infos[0].UsedBy) != 2 {
		t.Fatalf("ListSnapshots(par) = %+v, %v", infos, err)
	}
	for _, n := range []string{"f1", "f2"} {
		if err := e.m.Delete(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	// snap2 still stands on snap's layer: deleting snap's record keeps it.
	if err := e.m.DeleteSnapshot(ctx, snap.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(snap.Lowers[0]); err != nil {
		t.Errorf("layer of a deleted snapshot another one stands on: %v", err)
	}
	if err := e.m.DeleteSnapshot(ctx, snap2.ID); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{snap.Lowers[0], snap2.Lowers[0]} {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("unreferenced layer %s: %v, want removed", d, err)
		}
	}
}

func TestSnapshotOfSleepingSandboxAndTTL(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, conn, _, err := e.m.Ensure(ctx, "zz", sandbox.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, conn, "echo z > /workspace/z")
	if _, err := e.m.Sleep(ctx, "zz"); err != nil {
		t.Fatal(err)
	}
	snap, err := e.m.Snapshot(ctx, "zz", time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := e.m.Get("zz"); got.State != sandbox.StateSleeping {
		t.Errorf("snapshot woke the sandbox: %s", got.State)
	}
	time.Sleep(5 * time.Millisecond) // past its 1ms TTL
	if err := e.m.snaps.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.m.Fork(ctx, "", []string{"late"}, snap.ID, sandbox.CreateOptions{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("fork of an expired snapshot: %v, want not found", err)
	}
	if _, err := os.Stat(snap.Lowers[0]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("layer of an expired snapshot: %v, want removed", err)
	}
}

func TestSnapshotBadInput(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, _, _, err := e.m.Ensure(ctx, "have", sandbox.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"snapshot of missing", func() error { _, err := e.m.Snapshot(ctx, "nobody", 0); return err }(), errdefs.ErrNotFound},
		{"negative ttl", func() error { _, err := e.m.Snapshot(ctx, "have", -time.Second); return err }(), errdefs.ErrInvalidArgument},
		{"fork of missing snapshot", func() error {
			_, _, err := e.m.Fork(ctx, "", []string{"x"}, "sn-000000000000", sandbox.CreateOptions{})
			return err
		}(), errdefs.ErrNotFound},
		{"fork of malformed id", func() error {
			_, _, err := e.m.Fork(ctx, "", []string{"x"}, "../../etc", sandbox.CreateOptions{})
			return err
		}(), errdefs.ErrInvalidArgument},
		{"fork onto existing", func() error {
			_, _, err := e.m.Fork(ctx, "have", []string{"have"}, "", sandbox.CreateOptions{})
			return err
		}(), errdefs.ErrAlreadyExists},
		{"fork twice one name", func() error {
			_, _, err := e.m.Fork(ctx, "have", []string{"a", "a"}, "", sandbox.CreateOptions{})
			return err
		}(), errdefs.ErrInvalidArgument},
		{"fork of nothing", func() error { _, _, err := e.m.Fork(ctx, "", []string{"a"}, "", sandbox.CreateOptions{}); return err }(), errdefs.ErrInvalidArgument},
		{"delete missing", e.m.DeleteSnapshot(ctx, "sn-000000000000"), errdefs.ErrNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !errors.Is(c.err, c.want) {
				t.Errorf("got %v, want %v", c.err, c.want)
			}
		})
	}
	for _, n := range []string{"x", "a"} {
		if _, err := e.m.Get(n); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("failed fork left %s behind: %v", n, err)
		}
	}
}

// Forks of forks stack a layer each until snapshot.FlattenAt, then one
// flattened layer replaces the chain, hiding exactly what the chain hid.
func TestForkChainFlattens(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, conn, _, err := e.m.Ensure(ctx, "c0", sandbox.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := e.m.Get("c0")
	run(t, conn, "rm /etc/debian_version")
	const levels = 11
	for i := 0; i < levels; i++ {
		name := fmt.Sprintf("c%d", i)
		conn, err := e.m.Conn(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		script := fmt.Sprintf("echo %d > /workspace/f%d; echo %d > /workspace/last; rm -f /workspace/f%d", i, i, i, i-2)
		switch i {
		case 3:
			script += "; mkdir -p /workspace/d && echo a > /workspace/d/a"
		case 5:
			script += "; rm -rf /workspace/d && mkdir /workspace/d && echo b > /workspace/d/b" // opaque dir
		}
		run(t, conn, script)
		snap, err := e.m.Snapshot(ctx, name, 0)
		if err != nil {
			t.Fatal(err)
		}
		if extra := len(snap.Lowers) - len(base.Lowers); extra < 1 || extra > 8 {
			t.Fatalf("level %d: %d snapshot layers, want 1..8", i, extra)
		}
		if _, _, err := e.m.Fork(ctx, "", []string{fmt.Sprintf("c%d", i+1)}, snap.ID, sandbox.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	last, err := e.m.Conn(ctx, fmt.Sprintf("c%d", levels))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("d d/b f%d f%d last | %d | gone\n", levels-1, levels-2, levels-1)
	got := run(t, last, `cd /workspace && echo $(find . -mindepth 1 | sed 's|^./||' | sort) "|" $(cat last) "|" $(test -e /etc/debian_version && echo there || echo gone)`)
	if got != want {
		t.Errorf("after %d forks of forks: %q, want %q", levels, got, want)
	}
}

// Snapshot, sleep and exec racing on one sandbox: each waits its turn on
// the sandbox's lock; every snapshot has the file, every exec sees it.
func TestSnapshotSleepExecRace(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, conn, _, err := e.m.Ensure(ctx, "race", sandbox.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, conn, "echo v > /workspace/v")
	var snaps []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			s, err := e.m.Snapshot(ctx, "race", 0)
			if err != nil {
				t.Errorf("snapshot: %v", err)
				return
			}
			mu.Lock()
			snaps = append(snaps, s.ID)
			mu.Unlock()
		})
		wg.Go(func() {
			if _, err := e.m.Sleep(ctx, "race"); err != nil {
				t.Errorf("sleep: %v", err)
			}
		})
		wg.Go(func() {
			c, err := e.m.Conn(ctx, "race")
			if err != nil {
				t.Errorf("conn: %v", err)
				return
			}
			// An exec whose sandbox is put to sleep under it fails as
			// unavailable; one that runs sees the file.
			s, err := c.Process.Exec(ctx, connect.NewRequest(&hutchv1.ExecRequest{Shell: "cat /workspace/v"}))
			if err != nil {
				return
			}
			for s.Receive() {
				if out := s.Msg().GetStdout(); out != nil && string(out) != "v\n" {
					t.Errorf("exec saw %q", out)
				}
			}
			s.Close()
		})
	}
	wg.Wait()
	for i, id := range snaps {
		_, _, err := e.m.Fork(ctx, "", []string{fmt.Sprintf("r%d", i)}, id, sandbox.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := e.m.Conn(ctx, fmt.Sprintf("r%d", i))
		if got := run(t, c, "cat /workspace/v"); got != "v\n" {
			t.Errorf("fork of %s: %q", id, got)
		}
	}
}
