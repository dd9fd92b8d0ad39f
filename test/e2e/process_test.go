package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/client"
	"github.com/hutch-sh/hutch/internal/testutil"
)

// A dev server started in the background, waited on until it really
// answers, inspected, and killed with its whole tree; all through the CLI.
func TestBackgroundProcesses(t *testing.T) {
	d := newDaemon(t)
	out, stderr, code := d.hutch("", "start", "bg", "--id", "web", "--", "python3", "-m", "http.server", "8000", "--bind", "127.0.0.1")
	if code != 0 || out != "web\n" {
		t.Fatalf("start: exit %d, %q %q", code, out, stderr)
	}
	if _, stderr, code := d.hutch("", "wait", "bg", "web", "--port", "8000", "--http", "--timeout", "20s"); code != 0 {
		t.Fatalf("wait --port: exit %d, %q", code, stderr)
	}
	if got := d.run("bg", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:8000/"); got != "200" {
		t.Fatalf("server answered %q", got)
	}
	if out, _, _ := d.hutch("", "ps", "bg"); !strings.Contains(out, "web") || !strings.Contains(out, "running") {
		t.Fatalf("ps:\n%s", out)
	}
	// http.server logs requests to stderr.
	if _, stderr, code := d.hutch("", "logs", "bg", "web"); code != 0 || !strings.Contains(stderr, `"GET / HTTP/1.1" 200`) {
		t.Fatalf("logs: exit %d, stderr %q", code, stderr)
	}
	if out, stderr, code := d.hutch("", "kill", "bg", "web"); code != 0 || !strings.Contains(out, "killed") {
		t.Fatalf("kill: exit %d, %q %q", code, out, stderr)
	}
	if _, stderr, code := d.hutch("", "kill", "bg", "nope"); code != 1 || !strings.Contains(stderr, "nope") {
		t.Fatalf("kill of an unknown id: exit %d, %q", code, stderr)
	}
}

// A process that dies before it is ready fails the wait at once, with its
// exit code and last output, instead of at the timeout.
func TestWaitFailsWhenProcessExits(t *testing.T) {
	d := newDaemon(t)
	if _, stderr, code := d.hutch("", "start", "early", "--id", "bad", "--", "sh", "-c", "echo boom-happened; exit 3"); code != 0 {
		t.Fatal(stderr)
	}
	start := time.Now()
	_, stderr, code := d.hutch("", "wait", "early", "bad", "--port", "9999", "--timeout", "30s")
	if code != 1 || !strings.Contains(stderr, "3") || !strings.Contains(stderr, "boom-happened") {
		t.Fatalf("wait: exit %d, %q", code, stderr)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("the wait took %v: it waited for the timeout", el)
	}
}

func TestProcessLogsFollowAndTreeKill(t *testing.T) {
	d := newDaemon(t)
	ctx := context.Background()
	c := d.Client
	p, err := c.StartProcess(ctx, "logs", nil, client.ProcessOptions{Shell: "for i in 1 2 3; do echo line$i; sleep 0.3; done"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	exit, pos, err := c.ProcessLogs(ctx, "logs", p.Id, client.LogOptions{Follow: true, Stdout: &out})
	if err != nil || exit == nil || exit.ExitCode != 0 {
		t.Fatalf("follow: exit %v err %v", exit, err)
	}
	if out.String() != "line1\nline2\nline3\n" || pos.Stdout != int64(out.Len()) {
		t.Fatalf("followed %q, position %+v", out.String(), pos)
	}
	// Resuming from the position gives nothing twice.
	out.Reset()
	if _, _, err := c.ProcessLogs(ctx, "logs", p.Id, client.LogOptions{StdoutOffset: pos.Stdout, Stdout: &out}); err != nil || out.Len() != 0 {
		t.Fatalf("resume: %q %v", out.String(), err)
	}

	tree, err := c.StartProcess(ctx, "logs", nil, client.ProcessOptions{ID: "tree", Shell: "sleep 3001 & setsid sleep 3002 & sleep 3003"})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := strings.Count(pgrep(t, d, "logs", "sleep 300"), "\n"); n < 3 {
			return fmt.Errorf("%d of the tree's 3 sleeps running", n)
		}
		return nil
	})
	if _, err := c.KillProcess(ctx, "logs", tree.Id, "", time.Second); err != nil {
		t.Fatal(err)
	}
	if left := pgrep(t, d, "logs", "sleep 300"); left != "" {
		t.Fatalf("processes survived the kill:\n%s", left)
	}
	if _, err := c.Process(ctx, "logs", "no-such-id"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("get of an unknown id: %v", err)
	}
}

// A process that floods its logs neither slows the sandbox's other calls
// nor grows the agent's memory past its bounded buffers; a process with 100
// children dies with all of them.
func TestProcessFloodAndForkKill(t *testing.T) {
	d := newDaemon(t)
	ctx := context.Background()
	c := d.Client
	// At least 4 s of flood and at least 5 MiB of it, however slow a busy
	// machine makes the writer.
	flood := `import sys, time
end = time.time() + 4
i = n = 0
while time.time() < end or n < 5 << 20:
    for _ in range(100):
        line = "log line %d with some padding to look like a real log line\n" % i; i += 1
        sys.stdout.write(line); n += len(line)
    sys.stdout.flush(); time.sleep(0.005)
`
	if _, err := c.StartProcess(ctx, "flood", []string{"python3", "-c", flood}, client.ProcessOptions{ID: "flood"}); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		t0 := time.Now()
		d.run("flood", "true")
		if el := time.Since(t0); el > time.Second {
			t.Fatalf("exec took %v during the log flood", el)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := c.WaitForExit(ctx, "flood", "flood", 20*time.Second); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, pos, err := c.ProcessLogs(ctx, "flood", "flood", client.LogOptions{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if !pos.Truncated || out.Len() > 2<<20 || pos.Stdout < 4<<20 {
		t.Fatalf("flood logs: kept %d bytes of %d, truncated %v: want a bounded tail", out.Len(), pos.Stdout, pos.Truncated)
	}
	rss := d.run("flood", "sh", "-c", "grep VmRSS /proc/1/status | tr -s ' ' | cut -d' ' -f2")
	if kb, _ := strconv.Atoi(strings.TrimSpace(rss)); kb == 0 || kb > 64<<10 {
		t.Fatalf("agent RSS %s kB after the flood", strings.TrimSpace(rss))
	}

	p, err := c.StartProcess(ctx, "flood", nil, client.ProcessOptions{ID: "forker", Shell: "for i in $(seq 100); do sleep 4000 & done; wait"})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := strings.Count(pgrep(t, d, "flood", "^sleep 4000"), "\n"); n != 100 {
			return fmt.Errorf("%d children running, want 100", n)
		}
		return nil
	})
	if _, err := c.KillProcess(ctx, "flood", p.Id, "", time.Second); err != nil {
		t.Fatal(err)
	}
	if left := pgrep(t, d, "flood", "^sleep 4000"); left != "" {
		t.Fatalf("%d children survived the kill", strings.Count(left, "\n"))
	}
}
