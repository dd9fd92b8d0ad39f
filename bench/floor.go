package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hutch-sh/hutch/internal/rootfs"
)

// floor runs /bin/true with plain `runc run` on an overlay of the image's
// layers: what a sandbox create costs without hutch.
type floor struct {
	runc   string
	dir    string // bundles and runc's state live here
	lowers []string
	config []byte
	null   *os.File
	errs   *os.File // runc's stderr, for errors; a file, like stdout
}

// lowerDirs returns the image's layer dirs, top first, from the image store.
func lowerDirs(cacheDir, image string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(cacheDir, "images", image+".json"))
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", image, err)
	}
	var img struct {
		Layers []string `json:"layers"`
	}
	if err := json.Unmarshal(b, &img); err != nil {
		return nil, fmt.Errorf("image %q: %w", image, err)
	}
	if len(img.Layers) == 0 {
		return nil, fmt.Errorf("image %q: no layers", image)
	}
	var dirs []string
	for i := len(img.Layers) - 1; i >= 0; i-- {
		algo, hex, ok := strings.Cut(img.Layers[i], ":")
		if !ok {
			return nil, fmt.Errorf("image %q: bad layer %q", image, img.Layers[i])
		}
		dirs = append(dirs, filepath.Join(cacheDir, "layers", algo, hex))
	}
	return dirs, nil
}

// floorSpec is a minimal container: /bin/true in its own pid, ipc, uts,
// mount and network namespaces, with the usual /proc and /dev.
func floorSpec() *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Args:         []string{"/bin/true"},
			Env:          []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
			Cwd:          "/",
			Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
		},
		Hostname: "floor",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			},
		},
	}
}

func newFloor(cacheDir, image, dir string) (*floor, error) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		return nil, fmt.Errorf("runc: %w", err)
	}
	lowers, err := lowerDirs(cacheDir, image)
	if err != nil {
		return nil, err
	}
	config, err := json.Marshal(floorSpec())
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	errs, err := os.Create(filepath.Join(dir, "runc.err"))
	if err != nil {
		null.Close()
		return nil, err
	}
	return &floor{runc: runc, dir: dir, lowers: lowers, config: config, null: null, errs: errs}, nil
}

func (f *floor) close() {
	f.null.Close()
	f.errs.Close()
}

// bench times runs of create+run, after one untimed warm-up.
func (f *floor) bench(ctx context.Context, runs int) (latency, error) {
	var ds []time.Duration
	for i := -1; i < runs; i++ {
		d, err := f.once(ctx, fmt.Sprintf("hutch-bench-floor-%d", i+1))
		if err != nil {
			return latency{}, err
		}
		if i >= 0 {
			ds = append(ds, d)
		}
	}
	return summarize(ds), nil
}

// once times one run end to end: a fresh upper dir, the overlay mount, the
// config and `runc run` in the foreground. Teardown is not timed.
func (f *floor) once(ctx context.Context, id string) (time.Duration, error) {
	bundle := filepath.Join(f.dir, id)
	root := filepath.Join(bundle, "rootfs")
	defer os.RemoveAll(bundle)
	defer rootfs.Unmount(root)
	t0 := time.Now()
	if err := rootfs.Mount(f.lowers, filepath.Join(bundle, "upper"), filepath.Join(bundle, "work"), root); err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), f.config, 0o600); err != nil {
		return 0, err
	}
	off, _ := f.errs.Seek(0, 2)
	cmd := exec.CommandContext(ctx, f.runc, "--root", filepath.Join(f.dir, "runc"), "run", "--bundle", bundle, id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = f.null, f.null, f.errs
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		msg, _ := os.ReadFile(f.errs.Name())
		return 0, fmt.Errorf("runc run %s: %w: %s", id, err, strings.TrimSpace(string(msg[min(off, int64(len(msg))):])))
	}
	return d, nil
}
