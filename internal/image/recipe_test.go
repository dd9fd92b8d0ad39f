package image

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/testutil"
)

func TestParseRecipe(t *testing.T) {
	const base = "suite bookworm\nmirror http://deb.debian.org/debian\nvariant minbase\n"
	for _, tc := range []struct {
		name string
		in   string
		want *Recipe // nil: must fail with invalid argument
	}{
		{"minimal", base, &Recipe{Suite: "bookworm", Mirror: "http://deb.debian.org/debian", Variant: "minbase"}},
		{"full", "# c\n" + base + "packages aa b2  # trailing\npackages libstdc++6 python3.11\n\nenv A=1\nenv B=x y\n",
			&Recipe{Suite: "bookworm", Mirror: "http://deb.debian.org/debian", Variant: "minbase",
				Packages: []string{"aa", "b2", "libstdc++6", "python3.11"}, Env: []string{"A=1", "B=x y"}}},
		{"npm", base + "packages nodejs npm\nnpm acorn@8.15.0 @scope/pkg@1.2.3-rc.1\n",
			&Recipe{Suite: "bookworm", Mirror: "http://deb.debian.org/debian", Variant: "minbase",
				Packages: []string{"nodejs", "npm"}, Npm: []string{"acorn@8.15.0", "@scope/pkg@1.2.3-rc.1"}}},
		{"npm without npm", base + "npm acorn@8.15.0\n", nil},
		{"npm unpinned", base + "packages npm\nnpm acorn\n", nil},
		{"npm range", base + "packages npm\nnpm acorn@^8\n", nil},
		{"npm option smuggled", base + "packages npm\nnpm --registry=http://x@1.0.0\n", nil},
		{"missing suite", "mirror http://x/debian\nvariant minbase\n", nil},
		{"missing mirror", "suite bookworm\nvariant minbase\n", nil},
		{"bad variant", "suite bookworm\nmirror http://x/d\nvariant huge\n", nil},
		{"mirror not url", "suite bookworm\nmirror /srv/debian\nvariant minbase\n", nil},
		{"option smuggled as package", base + "packages --hook-dir=/tmp\n", nil},
		{"package with comma", base + "packages aa,bb\n", nil},
		{"suite twice", base + "suite trixie\n", nil},
		{"suite two values", "suite a b\n", nil},
		{"empty packages", base + "packages\n", nil},
		{"unknown directive", base + "apt-opt x\n", nil},
		{"env without =", base + "env FOO\n", nil},
		{"env bad key", base + "env 1A=2\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRecipe([]byte(tc.in))
			if tc.want == nil {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("err = %v, want invalid argument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Suite != tc.want.Suite || got.Mirror != tc.want.Mirror || got.Variant != tc.want.Variant ||
				!slices.Equal(got.Packages, tc.want.Packages) || !slices.Equal(got.Npm, tc.want.Npm) || !slices.Equal(got.Env, tc.want.Env) {
				t.Errorf("got %+v, want %+v", got, *tc.want)
			}
			// The canonical form parses back to the same recipe.
			again, err := ParseRecipe(got.Canonical())
			if err != nil || again.Source() != got.Source() {
				t.Errorf("canonical round trip: %v", err)
			}
		})
	}
}

func TestDefaultRecipe(t *testing.T) {
	r, err := DefaultRecipe()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"bash", "coreutils", "git", "curl", "ca-certificates", "python3", "python3-ipykernel",
		"python3-numpy", "python3-pandas", "python3-matplotlib", "nodejs", "npm", "procps", "inotify-tools"} {
		if !slices.Contains(r.Packages, p) {
			t.Errorf("default recipe lacks %s", p)
		}
	}
	for _, e := range []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root", "MPLBACKEND=Agg"} {
		if !slices.Contains(r.Env, e) {
			t.Errorf("default recipe lacks env %s", e)
		}
	}
	if !strings.HasPrefix(r.Source(), "recipe:") || len(r.Source()) != len("recipe:")+64 {
		t.Errorf("source %q", r.Source())
	}
}

func TestMmdebstrapPhase(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"I: running apt-get update...", "resolving"},
		{"I: downloading packages with apt...", "downloading"},
		{"I: extracting archives...", "extracting"},
		{"I: installing essential packages...", "installing"},
		{"I: installing remaining packages inside the chroot...", "installing"},
		{"I: creating tarball...", "packing"},
		{"I: automatically chosen mode: root", ""},
		{"W: skipping mounting of sysfs", ""},
	} {
		t.Run(tc.line, func(t *testing.T) {
			if got := mmdebstrapPhase(tc.line); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAptDetail(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"Get:2 http://deb.debian.org/debian bookworm/main amd64 libc6 amd64 2.36-9+deb12u14 [2759 kB]", "libc6"},
		{"Get:1 http://deb.debian.org/debian bookworm InRelease [151 kB]", ""},
		{"Unpacking less (590-2.1~deb12u2) ...", "less"},
		{"Setting up libc6:amd64 (2.36-9+deb12u14) ...", "libc6:amd64"},
		{"Setting up the thing", ""},
		{"Fetched 8941 kB in 1s (7708 kB/s)", ""},
	} {
		t.Run(tc.line, func(t *testing.T) {
			if got := aptDetail(tc.line); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReporterPlain(t *testing.T) {
	var b bytes.Buffer
	r := newReporter(&b)
	r.Phase("downloading")
	r.Phase("downloading")
	r.Detail("1 MiB / 2 MiB")
	r.Phase("unpacking")
	r.Close("done")
	want := "downloading (0s)\ndownloading 1 MiB / 2 MiB (0s)\nunpacking (0s)\ndone (0s)\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

// TestBuild runs a real mmdebstrap build of a tiny recipe (extract variant:
// dash and its libraries, a few seconds) twice at once and once more: only
// one build may happen.
func TestBuild(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.RequiresTool(t, "mmdebstrap")
	r, err := ParseRecipe([]byte("suite bookworm\nmirror http://deb.debian.org/debian\nvariant extract\npackages dash\nenv PATH=/bin\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, logs := newStore(t)

	var wg sync.WaitGroup
	imgs := make([]*Image, 2)
	outs := make([]bytes.Buffer, 2)
	for i := range imgs {
		wg.Go(func() {
			img, err := s.Ensure(ctx, "tiny", r, &outs[i])
			if err != nil {
				t.Errorf("Ensure: %v", err)
			}
			imgs[i] = img
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if n := logs.count("built image"); n != 1 {
		t.Fatalf("%d builds, want 1", n)
	}
	progress := outs[0].String() + outs[1].String()
	for _, p := range []string{"resolving", "downloading", "packing", "unpacking", "built image tiny"} {
		if !strings.Contains(progress, p) {
			t.Errorf("progress lacks %q:\n%s", p, progress)
		}
	}
	img := imgs[0]
	if img.Source != r.Source() || img.Digest != img.Layers[0] || img.Size == 0 || len(img.Layers) != 1 {
		t.Errorf("image %+v", img)
	}
	layer := s.LowerDirs(img)[0]
	if l, err := os.Readlink(filepath.Join(layer, "bin/sh")); err != nil || l != "dash" {
		t.Errorf("bin/sh -> %q, %v", l, err)
	}
	if fi, err := os.Stat(filepath.Join(layer, "bin/dash")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/dash: %v", err)
	}
	if fi, err := os.Lstat(filepath.Join(layer, "workspace")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Errorf("workspace: %v %v", fi, err)
	}
	if b, err := os.ReadFile(filepath.Join(s.root, "build.log")); err != nil || !bytes.Contains(b, []byte("I: success")) {
		t.Errorf("build.log: %v", err)
	}

	again, err := s.Ensure(ctx, "tiny", r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := logs.count("built image"); n != 1 || !again.Created.Equal(img.Created) {
		t.Errorf("second Ensure rebuilt (%d builds)", n)
	}
}

func TestBuildFailure(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.RequiresTool(t, "mmdebstrap")
	r, err := ParseRecipe([]byte("suite bookworm\nmirror http://deb.debian.org/debian\nvariant extract\npackages no-such-package-hutch\n"))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newStore(t)
	var out bytes.Buffer
	_, err = s.Build(context.Background(), "broken", r, &out)
	if err == nil || !strings.Contains(err.Error(), "no-such-package-hutch") {
		t.Fatalf("err = %v, want mmdebstrap's complaint about the package", err)
	}
	if !strings.Contains(out.String(), "failed") {
		t.Errorf("progress does not say it failed: %q", out.String())
	}
	if _, err := s.Get("broken"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("failed build left a record: %v", err)
	}
}

// TestEnsureDefault builds the real default image (1.5 GiB, 1–5 minutes):
// opt in with HUTCH_TEST_DEFAULT_IMAGE=1.
func TestEnsureDefault(t *testing.T) {
	testutil.RequiresRoot(t)
	if os.Getenv("HUTCH_TEST_DEFAULT_IMAGE") == "" {
		t.Skip("set HUTCH_TEST_DEFAULT_IMAGE=1 to build the default image")
	}
	s, logs := newStore(t)
	ctx := context.Background()
	img, err := s.EnsureDefault(ctx, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	layer := s.LowerDirs(img)[0]
	for _, p := range []string{"usr/bin/python3", "usr/bin/node", "usr/bin/npm", "usr/bin/git", "usr/bin/inotifywait", "workspace"} {
		if _, err := os.Stat(filepath.Join(layer, p)); err != nil {
			t.Errorf("default image lacks /%s: %v", p, err)
		}
	}
	if _, err := s.EnsureDefault(ctx, nil); err != nil || logs.count("built image") != 1 {
		t.Errorf("second EnsureDefault: %v, %d builds", err, logs.count("built image"))
	}
}
