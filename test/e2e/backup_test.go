package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hutch-sh/hutch/client"
)

func TestDirectoryBackups(t *testing.T) {
	d := newDaemon(t)
	ctx := context.Background()
	c := d.Client
	d.run("a", "sh", "-c", `cd /workspace && mkdir -p src node_modules/x && echo code > src/main.js && echo dep > node_modules/x/i.js &&
		echo '*.log' > .gitignore && echo noise > build.log && ln -s /etc/passwd pw && ln -s / esc`)
	out, stderr, code := d.hutch("", "backup", "a", "/workspace", "--exclude", "node_modules", "--gitignore", "--name", "src")
	if code != 0 {
		t.Fatalf("hutch backup: %s", stderr)
	}
	id := strings.TrimSpace(out)
	list := func(name string) string {
		return d.run(name, "sh", "-c", "cd /workspace && find . | sort | tr '\\n' ' '")
	}
	want := ". ./.gitignore ./esc ./pw ./src ./src/main.js "
	// After writes, a restore puts back exactly the backed-up tree.
	d.run("a", "sh", "-c", "cd /workspace && echo new > new && echo changed > src/main.js")
	for range 2 { // twice: the same result
		if _, stderr, code := d.hutch("", "restore", id, "a"); code != 0 {
			t.Fatalf("hutch restore: %s", stderr)
		}
		if got := list("a"); got != want {
			t.Errorf("after restore: %q, want %q", got, want)
		}
	}
	if got := d.run("a", "cat", "/workspace/src/main.js"); got != "code\n" {
		t.Errorf("restored file: %q", got)
	}
	if got := d.run("a", "readlink", "/workspace/pw"); got != "/etc/passwd\n" {
		t.Errorf("symlink restored as %q", got)
	}
	// Into another sandbox and another directory.
	if err := c.RestoreBackup(ctx, id, "b", "/srv/copy"); err != nil {
		t.Fatal(err)
	}
	if got := d.run("b", "cat", "/srv/copy/src/main.js"); got != "code\n" {
		t.Errorf("restore into b: %q", got)
	}

	bad := []struct {
		name string
		err  error
		want error
	}{
		{"system dir", backupErr(c, "a", "/etc"), client.ErrPermissionDenied},
		{"system dir via symlink", backupErr(c, "a", "/workspace/esc/usr"), client.ErrPermissionDenied},
		{"relative", backupErr(c, "a", "workspace"), client.ErrInvalidArgument},
		{"dotdot", backupErr(c, "a", "/workspace/../etc"), client.ErrInvalidArgument},
		{"root", backupErr(c, "a", "/"), client.ErrInvalidArgument},
		{"missing dir", backupErr(c, "a", "/nope"), client.ErrNotFound},
		{"missing sandbox", backupErr(c, "nobody", "/workspace"), client.ErrNotFound},
		{"restore missing", c.RestoreBackup(ctx, "bk-000000000000", "a", ""), client.ErrNotFound},
		{"restore malformed", c.RestoreBackup(ctx, "../x", "a", ""), client.ErrInvalidArgument},
		{"restore into system dir", c.RestoreBackup(ctx, id, "a", "/usr/lib"), client.ErrPermissionDenied},
	}
	for _, b := range bad {
		if !errors.Is(b.err, b.want) {
			t.Errorf("%s: %v, want %v", b.name, b.err, b.want)
		}
	}
	// A corrupt archive is refused and changes nothing.
	blobFile := filepath.Join(d.data, "blobs", "backups", id+".tar.zst")
	if err := os.WriteFile(blobFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.run("a", "sh", "-c", "echo after > /workspace/after")
	if err := c.RestoreBackup(ctx, id, "a", ""); !errors.Is(err, client.ErrFailedPrecondition) || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("restore of a corrupt backup: %v", err)
	}
	if got := d.run("a", "cat", "/workspace/after"); got != "after\n" {
		t.Errorf("a failed restore changed the dir: %q", got)
	}
	if got := d.run("a", "sh", "-c", "ls -a /workspace | grep -c hutch-restore || true"); got != "0\n" {
		t.Errorf("a failed restore left its work dir: %q", got)
	}
	if _, stderr, code := d.hutch("", "backup", "--rm", id); code != 0 {
		t.Errorf("backup --rm: %s", stderr)
	}
	if bs, _ := c.Backups(ctx); len(bs) != 0 {
		t.Errorf("backups after rm: %v", bs)
	}
}

func backupErr(c *client.Client, sandbox, dir string) error {
	_, err := c.CreateBackup(context.Background(), sandbox, dir, client.BackupOptions{})
	return err
}
