package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hutch-sh/hutch/client"
	"github.com/hutch-sh/hutch/internal/rootfs"
)

// daemon is the `hutch serve` process under test.
type daemon struct {
	cmd     *exec.Cmd
	logPath string
	url     string
	client  *client.Client
}

// buildBinaries builds hutch and hutch-agent, static, into dir.
func buildBinaries(ctx context.Context, dir string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", dir+"/", "github.com/hutch-sh/hutch/cmd/...")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build binaries: %w\n%s", err, out)
	}
	return nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startDaemon starts `hutch serve` on a free port with its own data dir and
// waits until it answers /healthz.
func startDaemon(ctx context.Context, binDir, dataDir, cacheDir, logPath string, extra ...string) (*daemon, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	args := append([]string{"serve", "--listen", addr, "--data", dataDir, "--cache", cacheDir}, extra...)
	cmd := exec.Command(filepath.Join(binDir, "hutch"), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start daemon: %w", err)
	}
	d := &daemon{cmd: cmd, logPath: logPath, url: "http://" + addr, client: client.New("http://" + addr)}
	if err := d.waitHealthy(ctx, 60*time.Second); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

func (d *daemon) waitHealthy(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		err := d.client.Healthy(hctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("daemon not healthy: %w\n%s", err, d.logTail(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// removeSandboxes deletes every sandbox the daemon has; its data dir is
// ours alone, so they are all the bench's.
func (d *daemon) removeSandboxes(ctx context.Context) error {
	sbs, err := d.client.List(ctx)
	if err != nil {
		return fmt.Errorf("list sandboxes: %w", err)
	}
	var errs []error
	for _, s := range sbs {
		if err := d.client.Delete(ctx, s.Name); err != nil {
			errs = append(errs, fmt.Errorf("delete sandbox %q: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// stop sends SIGTERM and waits, killing the daemon if it does not exit.
func (d *daemon) stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		<-done
	}
}

// logTail returns the last n lines the daemon logged.
func (d *daemon) logTail(n int) string {
	b, _ := os.ReadFile(d.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "daemon log:\n" + strings.Join(lines, "\n")
}

// checkUnmounted fails if anything is still mounted under dir, after
// detaching it so that dir can be removed.
func checkUnmounted(dir string) error {
	mounted, err := rootfs.Mounted(dir)
	if err != nil || !mounted {
		return err
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var left []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			left = append(left, f[4])
		}
	}
	for i := len(left) - 1; i >= 0; i-- {
		_ = rootfs.Unmount(left[i])
	}
	return fmt.Errorf("mounts left behind under %s: %s", dir, strings.Join(left, ", "))
}
