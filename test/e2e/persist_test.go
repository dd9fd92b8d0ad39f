package e2e

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/hutch-sh/hutch/client"
)

// persistAcrossSessions: a sandbox put to sleep on one daemon wakes on
// another that shares only the blob store, with its disk, env and ports.
func TestPersistAcrossSessions(t *testing.T) {
	blobs := filepath.Join(t.TempDir(), "blobs")
	a := newDaemonArgs(t, "", "--blobs", blobs)
	ctx := context.Background()
	a.run("roam", "sh", "-c", "echo kept > /workspace/f")
	url, err := a.Client.ExposePort(ctx, "roam", 8000)
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := a.hutch("", "sleep", "roam", "--persist"); code != 0 {
		t.Fatalf("sleep --persist: %s", stderr)
	}
	if _, stderr, code := a.hutch("", "sleep", "roam"); code != 0 {
		t.Fatalf("sleep: %s", stderr)
	}
	b := newDaemonArgs(t, "", "--blobs", blobs)
	// A plain read wakes it on b; it was never created there.
	if got := b.run("roam", "cat", "/workspace/f"); got != "kept\n" {
		t.Fatalf("on the other daemon: %q", got)
	}
	if again, _ := b.Client.ExposePort(ctx, "roam", 8000); filepath.Base(again) == "" || again[len("http://8000-roam-"):][:16] != url[len("http://8000-roam-"):][:16] {
		t.Errorf("preview token on the other daemon %q, want the one of %q", again, url)
	}
	if si, err := b.Client.GetSleep(ctx, "roam"); err != nil || !si.PersistAcrossSessions {
		t.Errorf("persist setting on the other daemon: %+v %v", si, err)
	}
	// Unknown everywhere: still not found, and not created.
	if _, _, err := b.Client.ReadFile(ctx, "nobody", "/workspace/f"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("read from a sandbox no daemon knows: %v", err)
	}
	// Removed on b: a third daemon does not bring it back.
	if err := b.Client.Delete(ctx, "roam"); err != nil {
		t.Fatal(err)
	}
	c := newDaemonArgs(t, "", "--blobs", blobs)
	if _, err := c.Client.Get(ctx, "roam"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("after rm: %v", err)
	}
	if _, _, err := c.Client.ReadFile(ctx, "roam", "/workspace/f"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("read after rm on another daemon: %v, want not found", err)
	}
	// Without a blob store, persisting is refused.
	d := newDaemon(t)
	d.run("x", "true")
	if _, stderr, code := d.hutch("", "sleep", "x", "--persist"); code != 1 {
		t.Errorf("sleep --persist without --blobs: %d %s", code, stderr)
	}
}
