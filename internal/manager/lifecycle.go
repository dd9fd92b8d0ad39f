package manager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/rootfs"
	"github.com/hutch-sh/hutch/internal/runtime"
)

// start mounts the sandbox's root, starts its container and waits for the
// agent. On failure everything it set up is undone.
func (m *Manager) start(ctx context.Context, b *box) (err error) {
	id := b.rec.ID
	dir := m.dir(id)
	root := filepath.Join(dir, "rootfs")
	runDir := filepath.Join(dir, "run")
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return err
	}
	_ = os.Remove(m.socket(id))
	defer func() {
		if err != nil {
			_ = m.stop(context.WithoutCancel(ctx), b)
		}
	}()
	t0 := time.Now()
	mounted, err := rootfs.Mounted(root)
	if err != nil {
		return err
	}
	if !mounted {
		if err := rootfs.Mount(b.rec.Lowers, filepath.Join(dir, "upper"), filepath.Join(dir, "work"), root); err != nil {
			if _, statErr := os.Stat(b.rec.Lowers[0]); errors.Is(statErr, os.ErrNotExist) {
				return fmt.Errorf("sandbox %q: image %q is missing from the image store: %w", b.rec.Name, b.rec.Image, errdefs.ErrFailedPrecondition)
			}
			return err
		}
	}
	spec, err := runtime.Spec(runtime.SpecOptions{
		Hostname:    b.rec.Name,
		Rootfs:      root,
		AgentBinary: m.cfg.AgentBinary,
		RunDir:      runDir,
		Env:         b.rec.Env,
		Limits:      b.rec.Limits,
		CgroupsPath: "/hutch/" + id,
	})
	if err != nil {
		return err
	}
	// The daemon binds the agent's socket and hands it to the agent as fd 3:
	// it accepts connections from the moment it exists, so nobody polls for
	// the agent to come up.
	sock, err := agentconn.Listen(m.socket(id))
	if err != nil {
		return err
	}
	defer sock.Close()
	t1 := time.Now()
	if err := m.rt.Start(ctx, id, dir, spec, filepath.Join(dir, "agent.log"), sock); err != nil {
		return err
	}
	t2 := time.Now()
	conn := agentconn.New(m.socket(id))
	wctx, cancel := context.WithTimeout(ctx, m.cfg.AgentTimeout)
	defer cancel()
	if err := conn.Ping(wctx); err != nil {
		return fmt.Errorf("sandbox %q: agent did not start (see %s): %v: %w", b.rec.Name, filepath.Join(dir, "agent.log"), err, errdefs.ErrUnavailable)
	}
	b.conn = conn
	b.rec.State = StateRunning
	b.rec.Reason = ""
	b.rec.StartedAt = time.Now().UTC()
	if err := m.store.Put(b.rec.Name, b.rec); err != nil {
		return err
	}
	m.log.Info("sandbox started", "sandbox", b.rec.Name, "id", id,
		"prepare", t1.Sub(t0), "runtime", t2.Sub(t1), "agent", time.Since(t2))
	return nil
}

// stop kills the container and unmounts the root; the disk stays.
func (m *Manager) stop(ctx context.Context, b *box) error {
	if b.conn != nil {
		b.conn.Close()
		b.conn = nil
	}
	if b.rec.ID == "" {
		return nil
	}
	if err := m.rt.Delete(ctx, b.rec.ID); err != nil {
		return err
	}
	if err := rootfs.Unmount(filepath.Join(m.dir(b.rec.ID), "rootfs")); err != nil {
		return err
	}
	_ = os.Remove(m.socket(b.rec.ID))
	return nil
}
