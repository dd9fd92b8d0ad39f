package e2e

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/client"
	"github.com/hutch-sh/hutch/internal/testutil"
)

func TestSnapshotForkCLI(t *testing.T) {
	d := newDaemon(t)
	d.run("src", "sh", "-c", "echo one > /workspace/f")
	out, stderr, code := d.hutch("", "snapshot", "src")
	if code != 0 {
		t.Fatalf("hutch snapshot: %s", stderr)
	}
	id := strings.TrimSpace(out)
	if out, stderr, code := d.hutch("", "fork", "src", "kid", "--snapshot", id, "-n", "2"); code != 0 || out != "kid-1\nkid-2\n" {
		t.Fatalf("hutch fork -n 2: %d %q %s", code, out, stderr)
	}
	d.run("kid-1", "sh", "-c", "echo two > /workspace/f")
	for name, want := range map[string]string{"src": "one\n", "kid-1": "two\n", "kid-2": "one\n"} {
		if got := d.run(name, "cat", "/workspace/f"); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	// Without --snapshot, fork takes one now.
	if out, stderr, code := d.hutch("", "fork", "src", "now"); code != 0 || out != "now\n" || !strings.Contains(stderr, "from snapshot sn-") {
		t.Fatalf("hutch fork: %d %q %s", code, out, stderr)
	}
	out, _, _ = d.hutch("", "snapshot", "--list", "src", "--json")
	var snaps []struct {
		ID     string   `json:"id"`
		UsedBy []string `json:"usedBy"`
	}
	if err := json.Unmarshal([]byte(out), &snaps); err != nil || len(snaps) != 2 || snaps[0].ID != id || strings.Join(snaps[0].UsedBy, ",") != "kid-1,kid-2" {
		t.Fatalf("snapshot --list: %v %s", err, out)
	}
	if _, stderr, code := d.hutch("", "snapshot", "--rm", id); code != 1 || !strings.Contains(stderr, "kid-1, kid-2 were created from it") {
		t.Errorf("rm of a snapshot forks stand on: %d %s", code, stderr)
	}
	d.hutch("", "rm", "kid-1", "kid-2")
	if _, stderr, code := d.hutch("", "snapshot", "--rm", id); code != 0 {
		t.Errorf("rm of an unused snapshot: %s", stderr)
	}
	for _, bad := range [][]string{
		{"fork", "src", "src"},
		{"fork", "src", "x", "--snapshot", "sn-000000000000"},
		{"fork", "src", "Bad_Name"},
		{"snapshot", "nobody"},
	} {
		if _, stderr, code := d.hutch("", bad...); code != 1 || !strings.HasPrefix(stderr, "hutch: ") {
			t.Errorf("hutch %v: %d %s", bad, code, stderr)
		}
	}
}

// The headline: a real npm install through the sandbox's own network,
// snapshotted, destroyed and restored into a new sandbox in far less time
// than the install took.
func TestNpmSnapshotRestore(t *testing.T) {
	d := newDaemon(t)
	ctx := context.Background()
	c := d.Client
	trustHostCAs(t, d, "proj")
	t0 := time.Now()
	d.run("proj", "sh", "-c", "cd /workspace && npm init -y >/dev/null && npm install --no-audit --no-fund axios >/dev/null")
	fresh := time.Since(t0)
	t0 = time.Now()
	snap, err := c.Snapshot(ctx, "proj", 0)
	if err != nil {
		t.Fatal(err)
	}
	snapTook := time.Since(t0)
	if err := c.Delete(ctx, "proj"); err != nil {
		t.Fatal(err)
	}
	t0 = time.Now()
	if _, _, err := c.Fork(ctx, "", []string{"restored"}, client.ForkOptions{Snapshot: snap.Id}); err != nil {
		t.Fatal(err)
	}
	out := d.run("restored", "node", "-e", "console.log(typeof require('/workspace/node_modules/axios'))")
	restore := time.Since(t0)
	if out != "function\n" {
		t.Fatalf("require('axios') after restore: %q", out)
	}
	if got := d.run("restored", "sh", "-c", "cd /workspace && node -e \"require('axios'); console.log('ok')\""); got != "ok\n" {
		t.Fatalf("require from the project dir: %q", got)
	}
	t0 = time.Now()
	if _, _, err := c.Fork(ctx, "", []string{"f-1", "f-2", "f-3", "f-4"}, client.ForkOptions{Snapshot: snap.Id}); err != nil {
		t.Fatal(err)
	}
	forks := time.Since(t0)
	t.Logf("npm install axios: fresh %v; snapshot %v (%d MB); restore + first require %v; 4 forks %v",
		fresh.Round(time.Millisecond), snapTook.Round(time.Millisecond), snap.Size>>20, restore.Round(time.Millisecond), forks.Round(time.Millisecond))
	if restore >= fresh {
		t.Errorf("restore %v is not faster than a fresh install %v", restore, fresh)
	}
}

// trustHostCAs makes npm in sandbox name trust what this host trusts: the
// machines tests run on may reach registries through a TLS-intercepting
// egress proxy whose CA only the host's bundle has.
func trustHostCAs(t *testing.T, d *daemon, name string) {
	t.Helper()
	f, err := os.Open("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		testutil.Unavailable(t, "no host CA bundle: %v", err)
	}
	defer f.Close()
	if err := d.Client.WriteFile(context.Background(), name, "/etc/ssl/certs/host-ca.crt", f, client.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	d.run(name, "npm", "config", "set", "--global", "cafile", "/etc/ssl/certs/host-ca.crt")
}
