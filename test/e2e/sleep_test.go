package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/client"
	"github.com/hutch-sh/hutch/internal/testutil"
)

// Sleep through the CLI; a preview URL wakes the sandbox; ports keep their
// URLs and serve again once their server runs again.
func TestSleepAndWake(t *testing.T) {
	d := newDaemon(t)
	ctx := context.Background()
	c := d.Client
	d.run("nap", "sh", "-c", "echo kept > /workspace/f")
	u, err := c.ExposePort(ctx, "nap", 8000)
	if err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := d.hutch("", "sleep", "nap"); code != 0 || out != "nap\n" {
		t.Fatalf("hutch sleep: %d %q %s", code, out, stderr)
	}
	out, _, code := d.hutch("", "status", "nap")
	if code != 0 || !strings.Contains(out, "sleeping") || !strings.Contains(out, "asleep; the next call wakes it") {
		t.Fatalf("status of a sleeping sandbox:\n%s", out)
	}
	// A preview request wakes it; nothing listens yet.
	if status, body := previewGet(t, d, u, "/"); status != 502 || !strings.Contains(body, "nothing listens on port 8000") {
		t.Errorf("preview of a sleeping sandbox: %d %q, want it woken and 502", status, body)
	}
	if s, _ := c.Get(ctx, "nap"); s.State != hutchv1.State_STATE_RUNNING {
		t.Errorf("after a preview request: %s, want running", s.State)
	}
	p, err := c.StartProcess(ctx, "nap", []string{"python3", "-m", "http.server", "8000"}, client.ProcessOptions{Cwd: "/workspace"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitForPort(ctx, "nap", p.Id, 8000, client.PortOptions{HTTP: true}, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if again, _ := c.ExposePort(ctx, "nap", 8000); again != u {
		t.Errorf("URL after sleep %q, want %q", again, u)
	}
	if status, body := previewGet(t, d, u, "/f"); status != 200 || body != "kept\n" {
		t.Errorf("preview after wake: %d %q", status, body)
	}

	// Idle: it falls asleep by itself; exec wakes it.
	if _, stderr, code := d.hutch("", "sleep", "nap", "--after", "1s"); code != 0 {
		t.Fatalf("hutch sleep --after: %s", stderr)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		s, err := c.Get(ctx, "nap")
		if err != nil {
			return err
		}
		if s.State != hutchv1.State_STATE_SLEEPING {
			return fmt.Errorf("state %s after sleepAfter 1s, want sleeping", s.State)
		}
		return nil
	})
	if out := d.run("nap", "cat", "/workspace/f"); out != "kept\n" {
		t.Errorf("after idle sleep: %q", out)
	}
	if _, stderr, code := d.hutch("", "sleep", "nobody"); code != 1 || !strings.Contains(stderr, "not found") {
		t.Errorf("sleep of a missing sandbox: %d %s", code, stderr)
	}
	if _, stderr, code := d.hutch("", "sleep", "nap", "--after", "1ms"); code != 1 || !strings.Contains(stderr, "at least 1s") {
		t.Errorf("sleep --after 1ms: %d %s", code, stderr)
	}
}

// A sleeping sandbox waits with its next container prepared: nothing of it
// runs, a killed daemon's successor keeps it, a wake starts it, and rm
// leaves nothing, before or after the restart.
func TestSleepingPreparedAcrossRestartAndRemove(t *testing.T) {
	d := newDaemon(t)
	ctx := context.Background()
	ids := map[string]string{}
	for _, name := range []string{"nap-a", "nap-b"} {
		d.run(name, "sh", "-c", "echo kept > /workspace/f; sleep 1000 &")
		sb, err := d.Client.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = sb.Id
		if _, err := d.Client.Sleep(ctx, name); err != nil {
			t.Fatal(err)
		}
		if pids := pidsInCgroup(sb.Id); len(pids) != 1 {
			t.Errorf("processes of sleeping %s: %v, want only runc's waiting init", name, pids)
		}
	}
	if _, stderr, code := d.hutch("", "rm", "nap-a"); code != 0 {
		t.Fatalf("rm of a sleeping sandbox: %s", stderr)
	}
	assertGone(t, d, ids["nap-a"])

	d.kill()
	d.start()
	if s, err := d.Client.Get(ctx, "nap-b"); err != nil || s.State != hutchv1.State_STATE_SLEEPING {
		t.Fatalf("after restart: %v %v, want sleeping", s, err)
	}
	if out := d.run("nap-b", "sh", "-c", "cat /workspace/f; pgrep -c -x sleep || true"); out != "kept\n0\n" {
		t.Errorf("after wake: %q, want the file kept and no process left", out)
	}
	if _, err := d.Client.Sleep(ctx, "nap-b"); err != nil {
		t.Fatal(err)
	}
	d.stop()
	d.start()
	if _, stderr, code := d.hutch("", "rm", "nap-b"); code != 0 {
		t.Fatalf("rm of a sleeping sandbox after restart: %s", stderr)
	}
	assertGone(t, d, ids["nap-b"])
}
