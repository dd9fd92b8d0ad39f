package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/hutch-sh/hutch/client"
)

// config is what main parsed.
type config struct {
	binDir   string // hutch binaries; built into a temp dir when empty
	cacheDir string // image store
	image    string
	json     bool
	only     string // a group of figures, or all when empty
	// daemonURL is set once the daemon runs.
	daemonURL string
}

// How much each figure is measured.
const (
	createRuns    = 25
	execWarmup    = 20
	execRuns      = 300
	clients       = 8
	concurrentDur = 3 * time.Second
	streamRuns    = 3
	// poolRefill is the pause between creates for the warm pool to refill:
	// a sustained rate of a few creates per second.
	poolRefill = 250 * time.Millisecond
)

// run starts a daemon in a temp dir, measures it and prints the figures.
// Whatever it set up is torn down, even when a measurement fails.
func run(ctx context.Context, cfg config, w io.Writer) (err error) {
	tmp, err := os.MkdirTemp("", "hutch-bench-")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, checkUnmounted(tmp), os.RemoveAll(tmp)) }()
	if cfg.binDir == "" {
		cfg.binDir = filepath.Join(tmp, "bin")
		if err := buildBinaries(ctx, cfg.binDir); err != nil {
			return err
		}
	}
	d, err := startDaemon(ctx, cfg.binDir, filepath.Join(tmp, "data"), cfg.cacheDir, filepath.Join(tmp, "daemon.log"))
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		err = errors.Join(err, d.removeSandboxes(cctx))
		d.stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, d.logTail(30))
		}
	}()
	cfg.daemonURL = d.url
	if cfg.only == "terminal" {
		return measureTerminal(ctx, d.client, cfg, w)
	}
	if cfg.only == "egress" {
		res := &results{Cores: goruntime.NumCPU(), Runc: runcVersion(ctx), Image: cfg.image}
		if res.Egress, err = benchEgress(ctx, cfg, tmp); err != nil {
			return fmt.Errorf("egress: %w", err)
		}
		if cfg.json {
			return res.writeJSON(w)
		}
		res.writeEgressRows(w)
		return nil
	}
	if cfg.only == "snapshot" {
		sr, err := measureSnapshots(ctx, d.client, cfg, tmp)
		if err != nil {
			return err
		}
		sr.writeTable(w)
		return nil
	}
	res, err := measure(ctx, d.client, cfg, filepath.Join(tmp, "floor"))
	if err != nil {
		return err
	}
	if res.CreateCold, err = benchColdCreate(ctx, cfg, tmp); err != nil {
		return fmt.Errorf("cold create: %w", err)
	}
	if res.Egress, err = benchEgress(ctx, cfg, tmp); err != nil {
		return fmt.Errorf("egress: %w", err)
	}
	sr, err := measureSnapshots(ctx, d.client, cfg, tmp)
	if err != nil {
		return fmt.Errorf("sleep and snapshots: %w", err)
	}
	if cfg.json {
		return res.writeJSON(w)
	}
	res.writeTable(w)
	sr.writeTable(w)
	return nil
}

// measure takes every figure, one after the other.
func measure(ctx context.Context, c *client.Client, cfg config, floorDir string) (*results, error) {
	res := &results{Cores: goruntime.NumCPU(), Runc: runcVersion(ctx), Image: cfg.image}
	var err error
	if res.Create, err = benchCreate(ctx, c, createRuns, poolRefill); err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	if res.Floor, err = benchFloor(ctx, cfg, floorDir); err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	const name = "bench"
	if res.Exec, err = benchExec(ctx, c, name, execWarmup, execRuns); err != nil {
		return nil, fmt.Errorf("exec round trip: %w", err)
	}
	if res.ExecsPerSec, err = benchConcurrent(ctx, c, name, clients, concurrentDur); err != nil {
		return nil, fmt.Errorf("concurrent execs: %w", err)
	}
	if res.StdoutMBps, err = benchStdout(ctx, c, name, streamRuns); err != nil {
		return nil, fmt.Errorf("stdout throughput: %w", err)
	}
	if res.WriteMBps, res.ReadMBps, err = benchFiles(ctx, c, name, streamRuns); err != nil {
		return nil, fmt.Errorf("file throughput: %w", err)
	}
	if res.Preview, err = benchPreview(ctx, c, cfg.daemonURL, name); err != nil {
		return nil, fmt.Errorf("preview: %w", err)
	}
	if res.StartReady, err = benchStartToReady(ctx, c, name); err != nil {
		return nil, fmt.Errorf("start to ready: %w", err)
	}
	if err := measureTerminalInto(ctx, c, name, res); err != nil {
		return nil, err
	}
	if res.WatchLatency, res.WatchPerSec, res.WatchLost, err = benchWatch(ctx, c, name); err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	if res.Code, err = benchCode(ctx, c, name); err != nil {
		return nil, fmt.Errorf("code: %w", err)
	}
	return res, nil
}

func measureTerminalInto(ctx context.Context, c *client.Client, name string, res *results) (err error) {
	if res.Keystroke, err = benchKeystroke(ctx, c, name); err != nil {
		return fmt.Errorf("keystroke echo: %w", err)
	}
	if res.TerminalCatMBps, err = benchTerminalCat(ctx, c, name); err != nil {
		return fmt.Errorf("terminal cat: %w", err)
	}
	if res.PTYFloorMBps, err = benchPTYFloor(ctx, c, name); err != nil {
		return fmt.Errorf("pty floor: %w", err)
	}
	return nil
}

// measureTerminal takes and prints only the terminal figures.
func measureTerminal(ctx context.Context, c *client.Client, cfg config, w io.Writer) error {
	res := &results{Cores: goruntime.NumCPU(), Runc: runcVersion(ctx), Image: cfg.image}
	if err := measureTerminalInto(ctx, c, "bench", res); err != nil {
		return err
	}
	if cfg.json {
		return res.writeJSON(w)
	}
	res.writeTerminalRows(w)
	return nil
}

// benchColdCreate measures creation without a warm pool, on a daemon of
// its own started with --warm 0.
func benchColdCreate(ctx context.Context, cfg config, tmp string) (l latency, err error) {
	d, err := startDaemon(ctx, cfg.binDir, filepath.Join(tmp, "data-cold"), cfg.cacheDir, filepath.Join(tmp, "daemon-cold.log"), "--warm", "0")
	if err != nil {
		return latency{}, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		err = errors.Join(err, d.removeSandboxes(cctx))
		d.stop()
	}()
	return benchCreate(ctx, d.client, createRuns, 0)
}

func benchFloor(ctx context.Context, cfg config, dir string) (latency, error) {
	f, err := newFloor(cfg.cacheDir, cfg.image, dir)
	if err != nil {
		return latency{}, err
	}
	defer f.close()
	return f.bench(ctx, createRuns)
}

// runcVersion returns e.g. "runc 1.1.5" from `runc --version`.
func runcVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "runc", "--version").Output()
	if err != nil {
		return "runc ?"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	v := strings.TrimPrefix(line, "runc version ")
	v, _, _ = strings.Cut(v, "+")
	return "runc " + v
}
