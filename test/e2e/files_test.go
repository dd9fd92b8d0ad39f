package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hutch-sh/hutch/client"
)

func TestFilesRoundTrip(t *testing.T) {
	d := newDaemon(t)
	ctx := context.Background()
	c := d.Client
	bin := []byte("abc\x00def\xff\xfe")
	if err := c.WriteFile(ctx, "fs", "/workspace/bin.dat", bytes.NewReader(bin), client.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	r, n, err := c.ReadFile(ctx, "fs", "bin.dat") // relative to /workspace
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, bin) || n != int64(len(bin)) {
		t.Fatalf("read %q (%d), want %q", got, n, bin)
	}
	if out := d.run("fs", "od", "-An", "-c", "/workspace/bin.dat"); !strings.Contains(out, `\0`) {
		t.Fatalf("exec does not see the file: %q", out)
	}
	if err := c.MakeDir(ctx, "fs", "/workspace/a/b/c", true); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFile(ctx, "fs", "/workspace/a/b/c/x.txt", strings.NewReader("x"), client.WriteOptions{Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	ents, err := c.ListDir(ctx, "fs", "/workspace/a", true)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range ents {
		paths = append(paths, e.Path)
	}
	if want := "/workspace/a/b /workspace/a/b/c /workspace/a/b/c/x.txt"; strings.Join(paths, " ") != want {
		t.Fatalf("list: %v, want %s", paths, want)
	}
	info, ok, err := c.Stat(ctx, "fs", "/workspace/a/b/c/x.txt")
	if err != nil || !ok || info.Size != 1 || info.Mode != 0o600 {
		t.Fatalf("stat: %v %v %v", info, ok, err)
	}
	if err := c.Rename(ctx, "fs", "/workspace/a/b/c/x.txt", "/workspace/y.txt", false); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Stat(ctx, "fs", "/workspace/a/b/c/x.txt"); ok {
		t.Fatal("rename left the source")
	}
	if err := c.Remove(ctx, "fs", "/workspace/a", false); !errors.Is(err, client.ErrFailedPrecondition) {
		t.Fatalf("non-recursive remove of a tree: %v", err)
	}
	if err := c.Remove(ctx, "fs", "/workspace/a", true); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Stat(ctx, "fs", "/workspace/a"); ok {
		t.Fatal("remove -r left the tree")
	}
	// CLI cp both ways, with - for stdin and stdout.
	if _, stderr, code := d.hutch("via stdin", "cp", "-", "fs:/workspace/cp.txt"); code != 0 {
		t.Fatalf("cp in: %s", stderr)
	}
	if out, stderr, code := d.hutch("", "cp", "fs:/workspace/cp.txt", "-"); code != 0 || out != "via stdin" {
		t.Fatalf("cp out: %q %s", out, stderr)
	}
	local := filepath.Join(t.TempDir(), "local.txt")
	if _, stderr, code := d.hutch("", "cp", "fs:/workspace/cp.txt", local); code != 0 {
		t.Fatalf("cp to file: %s", stderr)
	}
	if b, _ := os.ReadFile(local); string(b) != "via stdin" {
		t.Fatalf("local copy %q", b)
	}
}

// Paths resolve inside the sandbox: '..' and symlinks never reach the host.
func TestFilesCannotEscape(t *testing.T) {
	d := newDaemon(t)
	ctx := context.Background()
	c := d.Client
	host := t.TempDir()
	secret := filepath.Join(host, "secret")
	if err := os.WriteFile(secret, []byte("host-only"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.run("esc", "ln", "-s", host, "/workspace/hostlink")
	d.run("esc", "ln", "-s", "../../../../../../../../"+host, "/workspace/rellink")
	for _, p := range []string{
		"/workspace/hostlink/secret", "/workspace/rellink/secret",
		"/../../../../" + secret, "../../../../../.." + secret,
	} {
		if r, _, err := c.ReadFile(ctx, "esc", p); err == nil {
			b, _ := io.ReadAll(r)
			r.Close()
			if string(b) == "host-only" {
				t.Fatalf("read %s returned the host's file", p)
			}
		}
		_ = c.WriteFile(ctx, "esc", p, strings.NewReader("pwned"), client.WriteOptions{Parents: true})
		_ = c.Remove(ctx, "esc", p, true)
	}
	if b, err := os.ReadFile(secret); err != nil || string(b) != "host-only" {
		t.Fatalf("host file changed: %q %v", b, err)
	}
	if ents, _ := os.ReadDir(host); len(ents) != 1 {
		t.Fatalf("host dir gained entries: %v", ents)
	}
	for _, p := range []string{"", "/work\x00space/x"} {
		if _, _, err := c.Stat(ctx, "esc", p); !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("stat %q: %v, want invalid argument", p, err)
		}
	}
}

// A big file streams through without the daemon holding it in memory.
func TestFilesLargeStreaming(t *testing.T) {
	d := newDaemon(t)
	ctx := context.Background()
	const size = 512 << 20
	src := io.LimitReader(&pattern{}, size)
	h := sha256.New()
	if err := d.Client.WriteFile(ctx, "big", "/workspace/big", io.TeeReader(src, h), client.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := h.Sum(nil)
	r, n, err := d.Client.ReadFile(ctx, "big", "/workspace/big")
	if err != nil {
		t.Fatal(err)
	}
	h2 := sha256.New()
	got, err := io.Copy(h2, r)
	r.Close()
	if err != nil || got != size || n != size || !bytes.Equal(h2.Sum(nil), want) {
		t.Fatalf("read back %d bytes (len %d), err %v, hash match %v", got, n, err, bytes.Equal(h2.Sum(nil), want))
	}
	if hwm := peakRSS(t, d.cmd.Process.Pid); hwm > 150<<20 {
		t.Fatalf("daemon peak RSS %d MiB while streaming %d MiB: it buffers", hwm>>20, size>>20)
	}
}

type pattern struct{ n byte }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = p.n
		p.n = p.n*31 + 7
	}
	return len(b), nil
}

// peakRSS is a process's high-water resident memory in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}
