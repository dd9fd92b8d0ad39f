package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hutch-sh/hutch/client"
)

// Sleep, wake, snapshot and fork figures, around a real npm project.
const (
	sleepRuns = 15
	forkRuns  = 10
	goalWake  = 40 * time.Millisecond
	goalFork  = 100 * time.Millisecond
)

type snapshotResults struct {
	Sleep      latency // Sleep RPC
	Wake       latency // exec `true` on a sleeping sandbox, answered
	Fresh      time.Duration
	SnapshotT  time.Duration
	SnapshotMB float64
	Fork       latency // one fork of the npm project from its snapshot
	Restore    time.Duration
	Fork4      time.Duration // four forks in one call
	S3         s3Restore
}

func measureSnapshots(ctx context.Context, c *client.Client, cfg config, tmp string) (r snapshotResults, err error) {
	const name = "bench-nap"
	if err := execTrue(ctx, c, name); err != nil {
		return r, err
	}
	var sleeps, wakes []time.Duration
	for range sleepRuns {
		t0 := time.Now()
		if _, err := c.Sleep(ctx, name); err != nil {
			return r, fmt.Errorf("sleep: %w", err)
		}
		t1 := time.Now()
		if err := execTrue(ctx, c, name); err != nil {
			return r, fmt.Errorf("wake: %w", err)
		}
		sleeps, wakes = append(sleeps, t1.Sub(t0)), append(wakes, time.Since(t1))
	}
	r.Sleep, r.Wake = summarize(sleeps), summarize(wakes)
	if err := npmProject(ctx, c, "bench-npm", &r); err != nil {
		return r, fmt.Errorf("npm project: %w", err)
	}
	if r.S3, err = measureS3Restore(ctx, cfg, tmp); err != nil {
		return r, fmt.Errorf("restore from S3: %w", err)
	}
	return r, nil
}

func npmProject(ctx context.Context, c *client.Client, name string, r *snapshotResults) error {
	if err := trustHostCAs(ctx, c, name); err != nil {
		return err
	}
	t0 := time.Now()
	if err := sh(ctx, c, name, "cd /workspace && npm init -y >/dev/null && npm install --no-audit --no-fund axios express >/dev/null"); err != nil {
		return err
	}
	r.Fresh = time.Since(t0)
	t0 = time.Now()
	snap, err := c.Snapshot(ctx, name, 0)
	if err != nil {
		return err
	}
	r.SnapshotT, r.SnapshotMB = time.Since(t0), float64(snap.Size)/1e6
	var forks []time.Duration
	for i := range forkRuns {
		t0 := time.Now()
		if _, _, err := c.Fork(ctx, "", []string{fmt.Sprintf("bench-fork-%d", i)}, client.ForkOptions{Snapshot: snap.Id}); err != nil {
			return err
		}
		forks = append(forks, time.Since(t0))
	}
	r.Fork = summarize(forks)
	if err := c.Delete(ctx, name); err != nil {
		return err
	}
	t0 = time.Now()
	if _, _, err := c.Fork(ctx, "", []string{"bench-restored"}, client.ForkOptions{Snapshot: snap.Id}); err != nil {
		return err
	}
	if err := sh(ctx, c, "bench-restored", `cd /workspace && node -e "require('axios'); require('express')"`); err != nil {
		return err
	}
	r.Restore = time.Since(t0)
	t0 = time.Now()
	if _, _, err := c.Fork(ctx, "", []string{"bench-four-1", "bench-four-2", "bench-four-3", "bench-four-4"}, client.ForkOptions{Snapshot: snap.Id}); err != nil {
		return err
	}
	r.Fork4 = time.Since(t0)
	return nil
}

// trustHostCAs lets npm in the sandbox trust what the host trusts: these
// machines may reach registries through a TLS-intercepting proxy.
func trustHostCAs(ctx context.Context, c *client.Client, name string) error {
	f, err := os.Open("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		return err
	}
	defer f.Close()
	if err := c.WriteFile(ctx, name, "/etc/ssl/certs/host-ca.crt", f, client.WriteOptions{}); err != nil {
		return err
	}
	return sh(ctx, c, name, "npm config set --global cafile /etc/ssl/certs/host-ca.crt")
}

func sh(ctx context.Context, c *client.Client, name, script string) error {
	var errb strings.Builder
	st, err := c.Exec(ctx, name, client.Command{Shell: script, Stderr: &errb})
	if err != nil {
		return err
	}
	if st.Code != 0 {
		return fmt.Errorf("%q: exit %d: %s", script, st.Code, errb.String())
	}
	return nil
}

func (r snapshotResults) writeTable(w io.Writer) {
	row(w, "sleep", lat(r.Sleep), "")
	row(w, "wake → first exec", lat(r.Wake), goalText(fmt.Sprintf("goal ≤ %d ms", goalWake.Milliseconds()), r.Wake.Median <= goalWake))
	row(w, "npm install axios express", fmt.Sprintf("%8.0f ms", float64(r.Fresh)/1e6), "fresh setup, through the sandbox's network")
	row(w, "  snapshot of it", fmt.Sprintf("%8.0f ms", float64(r.SnapshotT)/1e6), fmt.Sprintf("%.1f MB captured", r.SnapshotMB))
	row(w, "  fork from the snapshot", lat(r.Fork), goalText(fmt.Sprintf("goal ≤ %d ms", goalFork.Milliseconds()), r.Fork.Median <= goalFork))
	row(w, "  4 forks in one call", fmt.Sprintf("%8.0f ms", float64(r.Fork4)/1e6), "")
	row(w, "  restore → require() works", fmt.Sprintf("%8.0f ms", float64(r.Restore)/1e6), fmt.Sprintf("%.0fx faster than the fresh setup", float64(r.Fresh)/float64(r.Restore)))
	fig, note := r.S3.row()
	row(w, "fork from S3 (100 MB random)", fig, note)
}
