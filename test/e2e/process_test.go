package e2e

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/client"
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
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(pgrep(t, d, "logs", "sleep 300"), "\n") < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
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
