package image

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// EnsureDefault returns the image "default", building it from the embedded
// recipe when it is missing, incomplete or was built from another recipe.
func (s *Store) EnsureDefault(ctx context.Context, progress io.Writer) (*Image, error) {
	r, err := DefaultRecipe()
	if err != nil {
		return nil, fmt.Errorf("default recipe: %w", errors.Join(err, errdefs.ErrInternal))
	}
	return s.Ensure(ctx, DefaultName, r, progress)
}

// Ensure returns image name if it was built from r and its layers are
// present, and builds it otherwise.
func (s *Store) Ensure(ctx context.Context, name string, r Recipe, progress io.Writer) (*Image, error) {
	if img, ok := s.current(name, r); ok {
		return img, nil
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Another process may have built it while we waited for the lock.
	if img, ok := s.current(name, r); ok {
		return img, nil
	}
	return s.build(ctx, name, r, progress)
}

func (s *Store) current(name string, r Recipe) (*Image, bool) {
	img, err := s.Get(name)
	if err != nil || img.Source != r.Source() {
		return nil, false
	}
	for _, d := range s.LowerDirs(img) {
		if _, err := os.Stat(d); err != nil {
			return nil, false
		}
	}
	return img, true
}

// Build builds r with mmdebstrap into a one-layer image called name,
// replacing any image of that name. It takes 1–2 minutes for the default
// recipe and reports its progress on progress (which may be nil).
func (s *Store) Build(ctx context.Context, name string, r Recipe, progress io.Writer) (*Image, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.build(ctx, name, r, progress)
}

// build runs with the store lock held.
func (s *Store) build(ctx context.Context, name string, r Recipe, progress io.Writer) (*Image, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	rep := newReporter(progress)
	ok := false
	defer func() {
		if !ok {
			rep.Close("build of image " + name + " failed")
		}
	}()
	work, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "build-")
	if err != nil {
		return nil, fmt.Errorf("build image %q: %w", name, err)
	}
	defer func() {
		if err := removeAll(work); err != nil {
			s.log.Warn("remove build dir", "image", name, "err", err)
		}
	}()
	tarPath := filepath.Join(work, "rootfs.tar")
	start := time.Now()
	s.log.Info("building image", "image", name, "source", r.Source(), "packages", len(r.Packages))
	if err := s.mmdebstrap(ctx, r, work, tarPath, rep); err != nil {
		return nil, fmt.Errorf("build image %q: %w", name, err)
	}

	rep.Phase("hashing")
	digest, tarSize, err := hashFile(tarPath)
	if err != nil {
		return nil, fmt.Errorf("build image %q: %w", name, err)
	}
	rep.Phase("unpacking")
	var shown time.Time
	size, err := s.ensureLayer(ctx, digest, func() (io.ReadCloser, error) { return os.Open(tarPath) }, func(n int64) {
		if time.Since(shown) >= 250*time.Millisecond {
			shown = time.Now()
			rep.Detail(fmt.Sprintf("%s / %s", humanBytes(n), humanBytes(tarSize)))
		}
	})
	if err != nil {
		return nil, fmt.Errorf("build image %q: %w", name, err)
	}
	if err := ensureWorkspace(s.layerDir(digest)); err != nil {
		return nil, fmt.Errorf("build image %q: %w", name, err)
	}
	img := &Image{
		Name:       name,
		Digest:     digest,
		Layers:     []string{digest},
		Env:        append([]string(nil), r.Env...),
		WorkingDir: "/workspace",
		Source:     r.Source(),
		Created:    time.Now().UTC(),
		Size:       size,
	}
	if err := s.put(img); err != nil {
		return nil, err
	}
	ok = true
	rep.Close(fmt.Sprintf("built image %s (%s)", name, humanBytes(size)))
	s.log.Info("built image", "image", name, "layer", digest, "size", size, "took", time.Since(start).Round(time.Second))
	return img, nil
}

// mmdebstrap runs the build, keeping its full output in <root>/build.log.
func (s *Store) mmdebstrap(ctx context.Context, r Recipe, work, out string, rep *reporter) error {
	logf, err := os.Create(filepath.Join(s.root, "build.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	args := []string{
		"--variant=" + r.Variant,
		"--verbose", // apt's per-package lines: progress detail and a useful build.log
		// A setup hook runs for every variant (customize hooks do not for extract/custom).
		`--setup-hook=mkdir -p "$1/workspace" && chmod 0755 "$1/workspace"`,
	}
	if len(r.Packages) > 0 {
		args = append(args, "--include="+strings.Join(r.Packages, ","))
	}
	if len(r.Npm) > 0 {
		args = append(args, npmHooks(r.Npm)...)
	}
	args = append(args, r.Suite, out, r.Mirror)
	fmt.Fprintf(logf, "# mmdebstrap %s\n", strings.Join(args, " "))

	cmd := exec.CommandContext(ctx, "mmdebstrap", args...)
	// Stdin stays nil (/dev/null): mmdebstrap reads sources from a non-tty stdin.
	cmd.Env = append(os.Environ(), "TMPDIR="+work)
	cmd.Stdout = logf
	// SIGTERM lets mmdebstrap unmount and remove its chroot.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	rep.Phase("starting mmdebstrap")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mmdebstrap: %w", err)
	}
	var tail []string
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(logf, line)
		tail = append(tail, line)
		if len(tail) > 15 {
			tail = tail[1:]
		}
		if p := mmdebstrapPhase(line); p != "" {
			rep.Phase(p)
		} else if d := aptDetail(line); d != "" {
			rep.Detail(d)
		}
	}
	io.Copy(io.Discard, stderr) //nolint:errcheck // a too-long line: keep the pipe drained
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("mmdebstrap: %w", ctx.Err())
		}
		return fmt.Errorf("mmdebstrap: %v (full log in %s):\n%s", err, logf.Name(), strings.Join(tail, "\n"))
	}
	return nil
}

// npmHooks install npm packages with the image's own npm. npm verifies TLS
// with the build host's CA bundle (copied in for the install, then removed),
// so a host behind an intercepting proxy with its own CA can build too.
func npmHooks(pkgs []string) []string {
	return []string{
		`--customize-hook=cp /etc/ssl/certs/ca-certificates.crt "$1/tmp/hutch-build-ca.crt" 2>/dev/null || cp "$1/etc/ssl/certs/ca-certificates.crt" "$1/tmp/hutch-build-ca.crt"`,
		`--customize-hook=chroot "$1" npm install --global --prefix /usr/local --cafile /tmp/hutch-build-ca.crt --no-audit --no-fund --no-update-notifier ` + strings.Join(pkgs, " "),
		`--customize-hook=rm -f "$1/tmp/hutch-build-ca.crt" && rm -rf "$1/root/.npm"`,
	}
}

// mmdebstrapPhase maps mmdebstrap's "I: ..." lines to the phases we show.
func mmdebstrapPhase(line string) string {
	msg, ok := strings.CutPrefix(line, "I: ")
	if !ok {
		return ""
	}
	for _, p := range []struct{ prefix, phase string }{
		{"running apt-get update", "resolving"},
		{"downloading", "downloading"},
		{"extracting", "extracting"},
		{"installing", "installing"},
		{"running --customize-hook", "installing"},
		{"cleaning", "cleaning"},
		{"creating tarball", "packing"},
	} {
		if strings.HasPrefix(msg, p.prefix) {
			return p.phase
		}
	}
	return ""
}

// aptDetail picks the package name out of apt's and dpkg's progress lines.
func aptDetail(line string) string {
	f := strings.Fields(line)
	switch {
	case len(f) >= 7 && strings.HasPrefix(f[0], "Get:"):
		return f[4] // Get:N URL suite/component arch NAME arch version [size]
	case len(f) >= 3 && (f[0] == "Unpacking" || f[0] == "Setting") && strings.HasPrefix(f[len(f)-2], "("):
		if f[0] == "Setting" {
			return f[2] // Setting up NAME (version) ...
		}
		return f[1]
	}
	return ""
}

func hashFile(p string) (digest string, size int64, err error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", p, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), n, nil
}

// ensureWorkspace creates /workspace in a layer dir if the build did not.
func ensureWorkspace(layer string) error {
	p, err := securejoin.SecureJoin(layer, "workspace")
	if err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	if _, err := os.Lstat(p); err == nil {
		return nil
	}
	if err := os.Mkdir(p, 0o755); err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	return nil
}
