package manager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/egress"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/rootfs"
	"github.com/hutch-sh/hutch/internal/runtime"
)

// start launches b's container and records it as running.
func (m *Manager) start(ctx context.Context, b *box) error {
	if m.net != nil && !b.rec.Addr.IsValid() {
		// Made before sandboxes had addresses, or its address was lost.
		addr, err := m.net.Allocate(b.rec.ID)
		if err != nil {
			return err
		}
		b.rec.Addr = addr
	}
	conn, err := m.launch(ctx, b.rec, b.rec.Name)
	if err != nil {
		return err
	}
	b.conn = conn
	b.rec.State = StateRunning
	b.rec.Reason = ""
	b.rec.StartedAt = time.Now().UTC()
	if err := m.store.Put(b.rec.Name, b.rec); err != nil {
		_ = m.stop(context.WithoutCancel(ctx), b)
		return err
	}
	m.ids.index(b.rec)
	m.log.Info("sandbox started", "sandbox", b.rec.Name, "id", b.rec.ID)
	return nil
}

// launch mounts rec's root, runs its container and waits for its agent. It
// persists nothing; on failure it undoes everything it set up.
func (m *Manager) launch(ctx context.Context, rec Record, hostname string) (conn *agentconn.Conn, err error) {
	id := rec.ID
	dir := m.dir(id)
	root := filepath.Join(dir, "rootfs")
	runDir := filepath.Join(dir, "run")
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = m.halt(context.WithoutCancel(ctx), id)
		}
	}()
	t0 := time.Now()
	mounted, err := rootfs.Mounted(root)
	if err != nil {
		return nil, err
	}
	if !mounted {
		if err := rootfs.Mount(rec.Lowers, filepath.Join(dir, "upper"), filepath.Join(dir, "work"), root); err != nil {
			if _, statErr := os.Stat(rec.Lowers[0]); errors.Is(statErr, os.ErrNotExist) {
				return nil, fmt.Errorf("sandbox %q: image %q is missing from the image store: %w", rec.Name, rec.Image, errdefs.ErrFailedPrecondition)
			}
			return nil, err
		}
	}
	opts := runtime.SpecOptions{
		Hostname:    hostname,
		Rootfs:      root,
		AgentBinary: m.cfg.AgentBinary,
		RunDir:      runDir,
		Env:         rec.Env,
		Limits:      rec.Limits,
		CgroupsPath: m.cgroupParent + "/" + id,
	}
	if m.net != nil {
		if _, err := m.net.Setup(id, m.netns(id), rec.Addr); err != nil {
			return nil, fmt.Errorf("sandbox %q: network: %w", rec.Name, err)
		}
		opts.NetNS = m.netns(id)
		opts.ResolvConf = filepath.Join(dir, "resolv.conf")
		if err := os.WriteFile(opts.ResolvConf, m.net.ResolvConf(), 0o644); err != nil {
			return nil, err
		}
	}
	if m.cfg.CABundle != "" {
		// The egress proxy's CA, trusted by every TLS stack in the image.
		opts.CABundle = m.cfg.CABundle
		opts.Env = append(slices.Clone(opts.Env), egress.TrustEnv(runtime.CABundlePath)...)
	}
	spec, err := runtime.Spec(opts)
	if err != nil {
		return nil, err
	}
	// The daemon binds the agent's socket and hands it to the agent as fd 3:
	// it accepts connections from the moment it exists, so nobody polls for
	// the agent to come up.
	sock, err := agentconn.Listen(m.socket(id))
	if err != nil {
		return nil, err
	}
	defer sock.Close()
	t1 := time.Now()
	if err := m.rt.Start(ctx, id, dir, spec, filepath.Join(dir, "agent.log"), sock); err != nil {
		return nil, err
	}
	t2 := time.Now()
	conn = agentconn.New(m.socket(id))
	wctx, cancel := context.WithTimeout(ctx, m.cfg.AgentTimeout)
	defer cancel()
	if err := conn.Ping(wctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("sandbox %q: agent did not start (see %s): %v: %w", rec.Name, filepath.Join(dir, "agent.log"), err, errdefs.ErrUnavailable)
	}
	m.log.Debug("sandbox launched", "sandbox", rec.Name, "id", id,
		"prepare", t1.Sub(t0), "runtime", t2.Sub(t1), "agent", time.Since(t2))
	return conn, nil
}

// stop kills b's container and unmounts its root; the disk stays.
func (m *Manager) stop(ctx context.Context, b *box) error {
	if b.conn != nil {
		b.conn.Close()
		b.conn = nil
	}
	if b.rec.ID == "" {
		return nil
	}
	return m.halt(ctx, b.rec.ID)
}

// netns is where sandbox id's network namespace is mounted.
func (m *Manager) netns(id string) string { return filepath.Join(m.dir(id), "netns") }

// halt kills sandbox id's container and unmounts its root.
func (m *Manager) halt(ctx context.Context, id string) error {
	if err := m.rt.Delete(ctx, id); err != nil {
		return err
	}
	if err := m.removeCgroups(id); err != nil {
		return err
	}
	if m.net != nil {
		if err := m.net.Teardown(id, m.netns(id)); err != nil {
			return err
		}
	}
	if err := rootfs.Unmount(filepath.Join(m.dir(id), "rootfs")); err != nil {
		return err
	}
	_ = os.Remove(m.socket(id))
	return nil
}
