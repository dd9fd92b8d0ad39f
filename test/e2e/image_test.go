package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/hutch-sh/hutch/client"
	"github.com/hutch-sh/hutch/internal/image"
	"github.com/hutch-sh/hutch/internal/testutil"
)

// busyboxLayout writes an OCI layout of an image holding only the host's
// static busybox: no libc, no shell but busybox's.
func busyboxLayout(t *testing.T) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		testutil.Unavailable(t, "needs a static /bin/busybox: %v", err)
	}
	// Fixed times keep the layer's digest stable, so reruns share one layer.
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range []*tar.Header{
		{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb))},
		{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777},
		{Name: "bin/cat", Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777},
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777},
	} {
		h.ModTime = mtime
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Name == "bin/busybox" {
			if _, err := tw.Write(bb); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Env: []string{"PATH=/bin", "TINY=1"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestImportedNonGlibcImage(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	dir := busyboxLayout(t)
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := "bb-" + hex.EncodeToString(rnd[:])

	stdout, stderr, code := d.hutch("", "image", "import", dir, "--name", name, "--cache", cacheDir)
	if code != 0 {
		t.Fatalf("image import: exit %d: %s", code, stderr)
	}
	t.Cleanup(func() {
		s, err := image.Open(cacheDir, nil)
		if err != nil {
			t.Errorf("cleanup: open image store: %v", err)
			return
		}
		if err := s.Remove(name); err != nil {
			t.Errorf("cleanup: remove image %s: %v", name, err)
		}
	})
	if !bytes.HasPrefix([]byte(stdout), []byte(name+" sha256:")) {
		t.Errorf("import printed %q", stdout)
	}
	ls, _, code := d.hutch("", "image", "ls", "--cache", cacheDir)
	if code != 0 || !bytes.Contains([]byte(ls), []byte(name)) {
		t.Errorf("image ls (exit %d) lacks %s:\n%s", code, name, ls)
	}

	ctx := context.Background()
	sb, err := d.Client.Create(ctx, "tiny", client.CreateOptions{Image: name})
	if err != nil {
		t.Fatalf("create from %s: %v", name, err)
	}
	if sb.Image != name {
		t.Errorf("sandbox image %q, want %q", sb.Image, name)
	}
	tests := []struct {
		name string
		argv []string
		want string
	}{
		{"arithmetic in busybox sh", []string{"sh", "-c", "echo $((6*7))"}, "42\n"},
		{"image env", []string{"sh", "-c", "echo $PATH $TINY"}, "/bin 1\n"},
		{"no libc in the image", []string{"sh", "-c", "test -e /lib || test -e /lib64 || test -e /usr || echo none"}, "none\n"},
		{"workdir made by the agent", []string{"sh", "-c", "pwd"}, "/workspace\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.run("tiny", tt.argv...); got != tt.want {
				t.Errorf("%v = %q, want %q", tt.argv, got, tt.want)
			}
		})
	}
	// The CLI creates from an image with --image, and refuses a sandbox
	// that exists with another one.
	if out, stderr, code := d.hutch("", "exec", "tiny-cli", "--image", name, "--", "sh", "-c", "echo $TINY"); code != 0 || out != "1\n" {
		t.Errorf("exec --image: exit %d, %q %q", code, out, stderr)
	}
	d.run("other", "true")
	if _, stderr, code := d.hutch("", "exec", "other", "--image", name, "--", "true"); code != 1 || !bytes.Contains([]byte(stderr), []byte("already exists with image")) {
		t.Errorf("exec --image on a sandbox of another image: exit %d, %q", code, stderr)
	}
	// Files work there too.
	if err := d.Client.WriteFile(ctx, "tiny", "/workspace/n", bytes.NewReader([]byte("hi")), client.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := d.run("tiny", "cat", "/workspace/n"); got != "hi" {
		t.Errorf("file = %q", got)
	}
}

// hutch image asks the daemon: ls lists the default image from the
// daemon's store, build finds it current, and an unknown pull fails.
func TestImageThroughDaemon(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	s, err := image.Open(cacheDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	def, err := s.Get("default")
	if err != nil {
		t.Fatal(err)
	}

	out, stderr, code := d.hutch("", "image", "ls", "--json")
	if code != 0 {
		t.Fatalf("image ls --json: exit %d: %s", code, stderr)
	}
	var imgs []struct{ Name, Digest, Size string }
	if err := json.Unmarshal([]byte(out), &imgs); err != nil {
		t.Fatalf("image ls --json: %v:\n%s", err, out)
	}
	found := false
	for _, i := range imgs {
		if i.Name == "default" {
			found = true
			if i.Digest != def.Digest || i.Size != strconv.FormatInt(def.Size, 10) {
				t.Errorf("default image listed as %+v, the store has %s of %d bytes", i, def.Digest, def.Size)
			}
		}
	}
	if !found {
		t.Errorf("image ls --json lacks the default image:\n%s", out)
	}

	if out, stderr, code := d.hutch("", "image", "build"); code != 0 || !strings.HasPrefix(out, "default "+def.Digest+" ") {
		t.Errorf("image build: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if _, stderr, code := d.hutch("", "image", "pull", "127.0.0.1:1/nothing:here"); code != 1 || !strings.Contains(stderr, "nothing") {
		t.Errorf("pull from nowhere: exit %d, stderr %q", code, stderr)
	}
	if _, stderr, code := d.hutchEnv([]string{"HUTCH_URL=" + closedURL(t)}, "", "image", "ls"); code != 1 || !strings.Contains(stderr, "no hutch daemon answers") {
		t.Errorf("image ls without a daemon: exit %d, stderr %q", code, stderr)
	}
}

// closedURL is a loopback address nothing listens on.
func closedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String()
}
