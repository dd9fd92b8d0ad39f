package manager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/egress"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/rootfs"
	"github.com/hutch-sh/hutch/internal/runtime"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// start launches b's container and records it as running.
func (m *Manager) start(ctx context.Context, b *box) error {
	if m.net != nil && !b.rec.Addr.IsValid() {
		// Made before sandboxes had addresses, or its address was lost.
		addr, err := m.net.Allocate(ctx, b.rec.ID)
		if err != nil {
			return err
		}
		b.rec.Addr = addr
	}
	var conn *agentconn.Conn
	var err error
	if b.prepared {
		b.prepared = false
		if conn, err = m.wakePrepared(ctx, b.rec); err != nil {
			m.log.Warn("prepared sandbox did not start; starting it afresh", "sandbox", b.rec.Name, "id", b.rec.ID, "err", err)
		}
	}
	if conn == nil {
		if conn, err = m.launch(ctx, b.rec, b.rec.Name); err != nil {
			return err
		}
	}
	b.conn = conn
	if err := b.rec.Move(sandbox.StateRunning); err != nil {
		_ = m.stop(context.WithoutCancel(ctx), b)
		return err
	}
	b.rec.Reason = ""
	b.rec.StartedAt = time.Now().UTC()
	if err := m.store.Put(ctx, b.rec.Name, b.rec); err != nil {
		_ = m.stop(context.WithoutCancel(ctx), b)
		return err
	}
	m.ids.Set(b.rec)
	m.log.Info("sandbox started", "sandbox", b.rec.Name, "id", b.rec.ID)
	return nil
}

// makeFunc makes a container from spec: Runtime.Start or Preparer.Create.
type makeFunc func(ctx context.Context, id, bundle string, spec *specs.Spec, logPath string, extra ...*os.File) error

// launch mounts rec's root, runs its container and waits for its agent. It
// persists nothing; on failure it undoes everything it set up.
func (m *Manager) launch(ctx context.Context, rec sandbox.Record, hostname string) (conn *agentconn.Conn, err error) {
	defer func() {
		if err != nil {
			_ = m.halt(context.WithoutCancel(ctx), rec.ID)
		}
	}()
	t0 := time.Now()
	t1, err := m.make(ctx, rec, hostname, m.rt.Start)
	if err != nil {
		return nil, err
	}
	t2 := time.Now()
	if conn, err = m.dial(ctx, rec); err != nil {
		return nil, err
	}
	m.log.Debug("sandbox launched", "sandbox", rec.Name, "id", rec.ID,
		"prepare", t1.Sub(t0), "runtime", t2.Sub(t1), "agent", time.Since(t2))
	return conn, nil
}

// prepare makes sleeping rec's next container and leaves it created, not
// started, so that a wake is only its start: root mounted, network set up,
// cgroups made, agent socket bound. Nothing of the sandbox runs: runc's
// init waits in the sandbox's cgroups, holding a few MiB. It reports false
// when the runtime cannot prepare; on failure it undoes what it set up.
func (m *Manager) prepare(ctx context.Context, rec sandbox.Record) (ok bool, err error) {
	p, can := m.rt.(sandbox.Preparer)
	if !can || (m.net != nil && !rec.Addr.IsValid()) {
		return false, nil
	}
	if _, err := m.make(ctx, rec, rec.Name, p.Create); err != nil {
		_ = m.halt(context.WithoutCancel(ctx), rec.ID)
		return false, err
	}
	return true, nil
}

// wakePrepared starts the container prepare made and waits for its agent;
// on failure it removes the container, so that a launch can start afresh.
func (m *Manager) wakePrepared(ctx context.Context, rec sandbox.Record) (conn *agentconn.Conn, err error) {
	defer func() {
		if err != nil {
			_ = m.halt(context.WithoutCancel(ctx), rec.ID)
		}
	}()
	t0 := time.Now()
	if err := m.rt.(sandbox.Preparer).StartCreated(ctx, rec.ID); err != nil {
		return nil, err
	}
	t1 := time.Now()
	if conn, err = m.dial(ctx, rec); err != nil {
		return nil, err
	}
	m.log.Debug("prepared sandbox woken", "sandbox", rec.Name, "id", rec.ID,
		"runtime", t1.Sub(t0), "agent", time.Since(t1))
	return conn, nil
}

// make mounts rec's root, sets up its network and makes its container with
// mk, handing it the agent's socket; it returns when mk began. The caller
// halts rec on failure.
func (m *Manager) make(ctx context.Context, rec sandbox.Record, hostname string, mk makeFunc) (time.Time, error) {
	id := rec.ID
	dir := m.dir(id)
	root := filepath.Join(dir, "rootfs")
	runDir := filepath.Join(dir, "run")
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return time.Time{}, err
	}
	mounted, err := rootfs.Mounted(root)
	if err != nil {
		return time.Time{}, err
	}
	if !mounted {
		if err := rootfs.Mount(rec.Lowers, filepath.Join(dir, "upper"), filepath.Join(dir, "work"), root); err != nil {
			if _, statErr := os.Stat(rec.Lowers[0]); errors.Is(statErr, os.ErrNotExist) {
				return time.Time{}, fmt.Errorf("sandbox %q: image %q is missing from the image store: %w", rec.Name, rec.Image, errdefs.ErrFailedPrecondition)
			}
			return time.Time{}, err
		}
	}
	opts := runtime.SpecOptions{
		Hostname:    hostname,
		Rootfs:      root,
		AgentBinary: m.cfg.AgentBinary,
		RunDir:      runDir,
		Env:         rec.Env,
		Limits:      rec.Limits,
	}
	if m.net != nil {
		if err := m.net.Setup(ctx, id, m.netns(id), rec.Addr); err != nil {
			return time.Time{}, fmt.Errorf("sandbox %q: network: %w", rec.Name, err)
		}
		opts.NetNS = m.netns(id)
		opts.ResolvConf = filepath.Join(dir, "resolv.conf")
		if err := os.WriteFile(opts.ResolvConf, m.net.ResolvConf(), 0o644); err != nil {
			return time.Time{}, err
		}
	}
	if m.cfg.CABundle != "" {
		// The egress proxy's CA, trusted by every TLS stack in the image.
		opts.CABundle = m.cfg.CABundle
		opts.Env = append(slices.Clone(opts.Env), egress.TrustEnv(runtime.CABundlePath)...)
	}
	spec, err := runtime.Spec(opts)
	if err != nil {
		return time.Time{}, err
	}
	// The daemon binds the agent's socket and hands it to the agent as fd 3:
	// it accepts connections from the moment it exists, so nobody polls for
	// the agent to come up.
	sock, err := agentconn.Listen(m.socket(id))
	if err != nil {
		return time.Time{}, err
	}
	defer sock.Close()
	t := time.Now()
	return t, mk(ctx, id, dir, spec, filepath.Join(dir, "agent.log"), sock)
}

// dial waits for rec's agent to answer.
func (m *Manager) dial(ctx context.Context, rec sandbox.Record) (*agentconn.Conn, error) {
	conn := agentconn.New(m.socket(rec.ID))
	wctx, cancel := context.WithTimeout(ctx, m.cfg.AgentTimeout)
	defer cancel()
	if err := conn.Ping(wctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("sandbox %q: agent did not start (see %s): %w: %w", rec.Name, filepath.Join(m.dir(rec.ID), "agent.log"), err, errdefs.ErrUnavailable)
	}
	return conn, nil
}

// stop kills b's container and unmounts its root; the disk stays.
func (m *Manager) stop(ctx context.Context, b *box) error {
	b.prepared = false // halt removes a prepared container too
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

// halt kills sandbox id's container (the runtime removes its cgroups) and
// unmounts its root.
func (m *Manager) halt(ctx context.Context, id string) error {
	if err := m.rt.Delete(ctx, id); err != nil {
		return err
	}
	if m.net != nil {
		if err := m.net.Teardown(ctx, id, m.netns(id)); err != nil {
			return err
		}
	}
	if err := rootfs.Unmount(filepath.Join(m.dir(id), "rootfs")); err != nil {
		return err
	}
	_ = os.Remove(m.socket(id))
	return nil
}
