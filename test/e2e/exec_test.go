package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/client"
	"github.com/hutch-sh/hutch/internal/testutil"
)

func TestExecCreatesOnDemandAndReuses(t *testing.T) {
	d := newDaemon(t)
	out, errOut, code := d.hutch("", "exec", "demo", "--", "python3", "-c", "print(6*7)")
	if code != 0 || out != "42\n" {
		t.Fatalf("exec: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	d.run("demo", "sh", "-c", "echo kept > /workspace/note")
	if got := d.run("demo", "cat", "/workspace/note"); got != "kept\n" {
		t.Fatalf("second exec sees %q, want the file written by the first", got)
	}
	if got := d.run("demo", "pwd"); got != "/workspace\n" {
		t.Fatalf("default cwd %q, want /workspace", got)
	}
	sbs, err := d.Client.List(context.Background())
	if err != nil || len(sbs) != 1 || sbs[0].Name != "demo" {
		t.Fatalf("list: %v %v", sbs, err)
	}
}

func TestExecExitCodesAndSignals(t *testing.T) {
	d := newDaemon(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"exit code", []string{"sh", "-c", "exit 7"}, 7, ""},
		{"killed by signal", []string{"sh", "-c", "kill -9 $$"}, 137, "SIGKILL"},
		{"missing binary", []string{"no-such-tool", "x"}, 127, `"no-such-tool"`},
		{"not executable", []string{"/etc/hostname"}, 126, "not an executable"},
		{"missing cwd", []string{"--cwd", "/nope", "--", "true"}, 127, "/nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"exec", "codes"}, tc.args...)
			if tc.args[0] != "--cwd" {
				args = append([]string{"exec", "codes", "--"}, tc.args...)
			}
			_, stderr, code := d.hutch("", args...)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.wantCode, stderr)
			}
			if !strings.Contains(stderr, tc.wantErr) {
				t.Errorf("stderr %q does not mention %q", stderr, tc.wantErr)
			}
		})
	}
}

func TestExecStdinCwdEnv(t *testing.T) {
	d := newDaemon(t)
	out, _, code := d.hutch("hello\nworld\n", "exec", "io", "--", "cat")
	if code != 0 || out != "hello\nworld\n" {
		t.Fatalf("stdin: code %d out %q", code, out)
	}
	d.run("io", "mkdir", "-p", "/srv/app")
	out, _, code = d.hutch("", "exec", "io", "--cwd", "/srv/app", "--env", "GREETING=hi there", "-e", "X=1", "--", "sh", "-c", `echo "$PWD $GREETING $X"`)
	if code != 0 || out != "/srv/app hi there 1\n" {
		t.Fatalf("cwd/env: code %d out %q", code, out)
	}
	// Large stdin round trip through the API.
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	var got bytes.Buffer
	st, err := d.Client.Exec(context.Background(), "io", client.Command{Argv: []string{"cat"}, Stdin: bytes.NewReader(data), Stdout: &got})
	if err != nil || st.Code != 0 || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("4 MiB stdin: err %v, got %d bytes", err, got.Len())
	}
}

// Output reaches the caller while the command still runs.
func TestExecStreamsLive(t *testing.T) {
	d := newDaemon(t)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := d.Client.Exec(context.Background(), "live", client.Command{Shell: "echo first; sleep 3; echo second", Stdout: pw})
		pw.CloseWithError(err)
		done <- err
	}()
	start := time.Now()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() || sc.Text() != "first" {
		t.Fatalf("first line: %q %v", sc.Text(), sc.Err())
	}
	if first := time.Since(start); first > 2500*time.Millisecond {
		t.Fatalf("first line took %v: output is not streamed", first)
	}
	if !sc.Scan() || sc.Text() != "second" {
		t.Fatalf("second line: %q", sc.Text())
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func pgrep(t *testing.T, d *daemon, name, pattern string) string {
	t.Helper()
	var out bytes.Buffer
	_, err := d.Client.Exec(context.Background(), name, client.Command{Argv: []string{"pgrep", "-af", pattern}, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestExecTimeoutKillsTree(t *testing.T) {
	d := newDaemon(t)
	start := time.Now()
	// A grandchild in its own session must die too.
	_, err := d.Client.Exec(context.Background(), "slow", client.Command{
		Shell:   "setsid sleep 1001 & sleep 1002 & sleep 1003",
		Timeout: 500 * time.Millisecond,
	})
	if !errors.Is(err, client.ErrDeadlineExceeded) {
		t.Fatalf("err %v, want deadline exceeded", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("timeout took %v", el)
	}
	if left := pgrep(t, d, "slow", "sleep 100"); left != "" {
		t.Fatalf("processes survived the timeout:\n%s", left)
	}
	_, stderr, code := d.hutch("", "exec", "slow", "--timeout", "300ms", "--", "sleep", "30")
	if code != 124 || !strings.Contains(stderr, "timed out") {
		t.Fatalf("CLI timeout: code %d stderr %q", code, stderr)
	}
}

func TestExecCancelKillsTree(t *testing.T) {
	d := newDaemon(t)
	d.run("cancel", "true")
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := d.Client.Exec(ctx, "cancel", client.Command{
			Shell:   "sleep 2001 & setsid sleep 2002 & sleep 2003",
			Started: func(string, int) { close(started) },
		})
		done <- err
	}()
	<-started
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := strings.Count(pgrep(t, d, "cancel", "sleep 200"), "\n"); n < 3 {
			return fmt.Errorf("%d of the command's 3 sleeps running", n)
		}
		return nil
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want canceled", err)
	}
	testutil.Eventually(t, 3*time.Second, func() error {
		if left := pgrep(t, d, "cancel", "sleep 200"); left != "" {
			return fmt.Errorf("processes survived the cancelled call:\n%s", left)
		}
		return nil
	})
}
