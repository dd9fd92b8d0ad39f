package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sys/unix"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
)

// One reaper for the whole binary: it calls wait4(-1), so two would steal
// each other's children, and nothing else here may start children (no os/exec).
var reaper *Reaper

func TestMain(m *testing.M) {
	// As the agent is PID 1, orphans of killed trees come back to it; being
	// a subreaper makes this test process behave the same way.
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	reaper = NewReaper()
	code := m.Run()
	reaper.Stop()
	os.Exit(code)
}

// newClient serves a Service over HTTP in-process and returns its client.
func newClient(t *testing.T, baseEnv []string) hutchv1connect.ProcessServiceClient {
	t.Helper()
	if baseEnv == nil {
		baseEnv = os.Environ()
	}
	return newClientOpts(t, baseEnv)
}

// newClientOpts serves a Service as the agent does (Exec through the raw
// envelope handler for binary-codec callers) and returns a client made
// with opts.
func newClientOpts(t *testing.T, baseEnv []string, opts ...connect.ClientOption) hutchv1connect.ProcessServiceClient {
	t.Helper()
	if baseEnv == nil {
		baseEnv = os.Environ()
	}
	svc := New(slog.New(slog.DiscardHandler), reaper, baseEnv, t.TempDir())
	path, h := hutchv1connect.NewProcessServiceHandler(svc)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	mux.Handle(hutchv1connect.ProcessServiceExecProcedure, svc.ExecHandler(h, 1<<20))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return hutchv1connect.NewProcessServiceClient(srv.Client(), srv.URL, opts...)
}

// The generic Connect path (JSON codec, as curl uses it) streams the same
// events as the raw path.
func TestExecJSONCodec(t *testing.T) {
	c := newClientOpts(t, nil, connect.WithProtoJSON())
	res := execStream(context.Background(), c, &hutchv1.ExecRequest{Shell: "echo out; echo err >&2; exit 3"}, nil)
	if res.err != nil || res.exit == nil || res.exit.Code != 3 || res.stdout.String() != "out\n" || res.stderr.String() != "err\n" {
		t.Fatalf("JSON exec: err %v exit %v stdout %q stderr %q", res.err, res.exit, res.stdout.String(), res.stderr.String())
	}
}

// result is everything one exec stream delivered.
type result struct {
	id             string
	pid            int
	stdout, stderr bytes.Buffer
	exit           *hutchv1.ExecExit
	keepalives     int
	err            error
}

// execStream runs req and calls onEvent (if set) for every event as it
// arrives, before collecting it.
func execStream(ctx context.Context, c hutchv1connect.ProcessServiceClient, req *hutchv1.ExecRequest, onEvent func(*result, *hutchv1.ExecEvent)) *result {
	r := &result{}
	s, err := c.Exec(ctx, connect.NewRequest(req))
	if err != nil {
		r.err = err
		return r
	}
	defer s.Close()
	for s.Receive() {
		ev := s.Msg()
		switch e := ev.Event.(type) {
		case *hutchv1.ExecEvent_Started:
			r.id, r.pid = e.Started.Id, int(e.Started.Pid)
		case *hutchv1.ExecEvent_Stdout:
			r.stdout.Write(e.Stdout)
		case *hutchv1.ExecEvent_Stderr:
			r.stderr.Write(e.Stderr)
		case *hutchv1.ExecEvent_Exit:
			r.exit = e.Exit
		case *hutchv1.ExecEvent_Keepalive:
			r.keepalives++
		}
		if onEvent != nil {
			onEvent(r, ev)
		}
	}
	r.err = s.Err()
	return r
}

func TestExec(t *testing.T) {
	t.Parallel()
	c := newClient(t, nil)
	tests := []struct {
		name       string
		req        *hutchv1.ExecRequest
		wantStdout string
		wantStderr string
		wantCode   int32
		wantSignal string
	}{
		{name: "argv", req: &hutchv1.ExecRequest{Argv: []string{"echo", "a b", "c"}}, wantStdout: "a b c\n"},
		{name: "argv is not split by a shell", req: &hutchv1.ExecRequest{Argv: []string{"printf", "%s|", "$HOME", "*"}}, wantStdout: "$HOME|*|"},
		{name: "shell", req: &hutchv1.ExecRequest{Shell: "echo $((6*7)) | tr 4 x"}, wantStdout: "x2\n"},
		{name: "stdout and stderr separate", req: &hutchv1.ExecRequest{Shell: "echo out; echo err >&2; echo out2"}, wantStdout: "out\nout2\n", wantStderr: "err\n"},
		{name: "exit code", req: &hutchv1.ExecRequest{Shell: "exit 7"}, wantCode: 7},
		{name: "exit 255", req: &hutchv1.ExecRequest{Argv: []string{"sh", "-c", "exit 255"}}, wantCode: 255},
		{name: "false", req: &hutchv1.ExecRequest{Argv: []string{"false"}}, wantCode: 1},
		{name: "killed by SIGTERM", req: &hutchv1.ExecRequest{Shell: "kill -TERM $$"}, wantCode: 128 + 15, wantSignal: "SIGTERM"},
		{name: "killed by SIGKILL", req: &hutchv1.ExecRequest{Shell: "kill -9 $$"}, wantCode: 137, wantSignal: "SIGKILL"},
		{name: "stdin is /dev/null without stdin", req: &hutchv1.ExecRequest{Argv: []string{"cat"}}, wantStdout: ""},
		{name: "cwd", req: &hutchv1.ExecRequest{Argv: []string{"pwd"}, Cwd: "/tmp"}, wantStdout: "/tmp\n"},
		{name: "large output", req: &hutchv1.ExecRequest{Shell: "head -c 3000000 /dev/zero | tr '\\0' x"}, wantStdout: strings.Repeat("x", 3000000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := execStream(context.Background(), c, tt.req, nil)
			if r.err != nil {
				t.Fatalf("exec: %v", r.err)
			}
			if r.id == "" || r.pid <= 0 {
				t.Errorf("started event: id %q pid %d", r.id, r.pid)
			}
			if r.exit == nil {
				t.Fatal("no exit event")
			}
			if got := r.stdout.String(); got != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", trunc(got), trunc(tt.wantStdout))
			}
			if got := r.stderr.String(); got != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", got, tt.wantStderr)
			}
			if r.exit.Code != tt.wantCode || r.exit.Signal != tt.wantSignal {
				t.Errorf("exit = %d %q, want %d %q", r.exit.Code, r.exit.Signal, tt.wantCode, tt.wantSignal)
			}
		})
	}
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

func TestExecErrors(t *testing.T) {
	t.Parallel()
	c := newClient(t, nil)
	notExec := t.TempDir() + "/script"
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		req      *hutchv1.ExecRequest
		wantCode connect.Code
		wantMsg  string
	}{
		{"missing binary", &hutchv1.ExecRequest{Argv: []string{"no-such-binary-xyz", "arg"}}, connect.CodeNotFound, "no-such-binary-xyz"},
		{"missing absolute path", &hutchv1.ExecRequest{Argv: []string{"/nope/tool"}}, connect.CodeNotFound, "/nope/tool"},
		{"not executable", &hutchv1.ExecRequest{Argv: []string{notExec}}, connect.CodePermissionDenied, "not an executable"},
		{"missing cwd", &hutchv1.ExecRequest{Argv: []string{"true"}, Cwd: "/no/such/dir"}, connect.CodeNotFound, "/no/such/dir"},
		{"empty", &hutchv1.ExecRequest{}, connect.CodeInvalidArgument, "empty"},
		{"argv and shell", &hutchv1.ExecRequest{Argv: []string{"true"}, Shell: "true"}, connect.CodeInvalidArgument, "not both"},
		{"NUL in argv", &hutchv1.ExecRequest{Argv: []string{"echo", "a\x00b"}}, connect.CodeInvalidArgument, "NUL"},
		{"negative timeout", &hutchv1.ExecRequest{Argv: []string{"true"}, TimeoutMs: -1}, connect.CodeInvalidArgument, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := execStream(context.Background(), c, tt.req, nil)
			if r.exit != nil {
				t.Fatalf("got exit %v, want an error", r.exit)
			}
			if got := connect.CodeOf(r.err); got != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, r.err, tt.wantCode)
			}
			if !strings.Contains(r.err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", r.err, tt.wantMsg)
			}
		})
	}
}

func TestExecEnv(t *testing.T) {
	t.Parallel()
	c := newClient(t, []string{"PATH=/usr/bin:/bin", "A=base", "B=base"})
	r := execStream(context.Background(), c, &hutchv1.ExecRequest{
		Shell: `echo "$A $B $C"; env | grep -c '^B='`,
		Env:   map[string]string{"B": "req", "C": "x y"},
	}, nil)
	if r.err != nil || r.exit == nil || r.exit.Code != 0 {
		t.Fatalf("exec: %v %v %s", r.err, r.exit, r.stderr.String())
	}
	if got, want := r.stdout.String(), "base req x y\n1\n"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
}

func TestMergeEnv(t *testing.T) {
	tests := []struct {
		name  string
		base  []string
		extra map[string]string
		want  []string
	}{
		{"empty", nil, nil, []string{}},
		{"base only, sorted", []string{"B=2", "A=1"}, nil, []string{"A=1", "B=2"}},
		{"request overrides base", []string{"A=1", "B=2"}, map[string]string{"B": "3"}, []string{"A=1", "B=3"}},
		{"value with =", nil, map[string]string{"A": "x=y"}, []string{"A=x=y"}},
		{"empty value kept", nil, map[string]string{"A": ""}, []string{"A="}},
		{"bad keys dropped", nil, map[string]string{"": "x", "A=B": "x", "N\x00": "x", "OK": "1"}, []string{"OK=1"}},
		{"NUL value dropped", nil, map[string]string{"A": "x\x00y"}, []string{}},
		{"base without = ignored", []string{"JUNK", "A=1"}, nil, []string{"A=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mergeEnv(tt.base, tt.extra)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") || len(got) != len(tt.want) {
				t.Errorf("mergeEnv = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWriteStdin(t *testing.T) {
	t.Parallel()
	c := newClient(t, nil)
	ctx := context.Background()

	t.Run("data then eof", func(t *testing.T) {
		t.Parallel()
		var stdinErr error
		r := execStream(ctx, c, &hutchv1.ExecRequest{Argv: []string{"cat"}, Stdin: true}, func(r *result, ev *hutchv1.ExecEvent) {
			st, ok := ev.Event.(*hutchv1.ExecEvent_Started)
			if !ok {
				return
			}
			for _, w := range []*hutchv1.WriteStdinRequest{
				{Id: st.Started.Id, Data: []byte("hello\n")},
				{Id: st.Started.Id, Data: []byte("world\n"), Eof: true},
			} {
				if _, err := c.WriteStdin(ctx, connect.NewRequest(w)); err != nil {
					stdinErr = err
				}
			}
		})
		if stdinErr != nil {
			t.Fatalf("WriteStdin: %v", stdinErr)
		}
		if r.err != nil || r.exit == nil || r.exit.Code != 0 {
			t.Fatalf("exec: %v %v", r.err, r.exit)
		}
		if got := r.stdout.String(); got != "hello\nworld\n" {
			t.Errorf("stdout = %q", got)
		}
	})

	t.Run("write after eof", func(t *testing.T) {
		t.Parallel()
		var second error
		r := execStream(ctx, c, &hutchv1.ExecRequest{Shell: "cat; sleep 0.5", Stdin: true}, func(r *result, ev *hutchv1.ExecEvent) {
			if st, ok := ev.Event.(*hutchv1.ExecEvent_Started); ok {
				if _, err := c.WriteStdin(ctx, connect.NewRequest(&hutchv1.WriteStdinRequest{Id: st.Started.Id, Eof: true})); err != nil {
					t.Errorf("eof: %v", err)
				}
				_, second = c.WriteStdin(ctx, connect.NewRequest(&hutchv1.WriteStdinRequest{Id: st.Started.Id, Data: []byte("late")}))
			}
		})
		if r.err != nil || r.exit == nil {
			t.Fatalf("exec: %v", r.err)
		}
		if connect.CodeOf(second) != connect.CodeFailedPrecondition {
			t.Errorf("write after eof: %v, want failed_precondition", second)
		}
	})

	t.Run("unknown id", func(t *testing.T) {
		t.Parallel()
		_, err := c.WriteStdin(ctx, connect.NewRequest(&hutchv1.WriteStdinRequest{Id: "nope", Data: []byte("x")}))
		if connect.CodeOf(err) != connect.CodeNotFound {
			t.Fatalf("WriteStdin to unknown id: %v, want not_found", err)
		}
	})

	t.Run("signal unknown id", func(t *testing.T) {
		t.Parallel()
		_, err := c.Signal(ctx, connect.NewRequest(&hutchv1.SignalRequest{Id: "nope", Signal: "INT"}))
		if connect.CodeOf(err) != connect.CodeNotFound {
			t.Fatalf("Signal to unknown id: %v, want not_found", err)
		}
	})
}

func TestSignal(t *testing.T) {
	t.Parallel()
	c := newClient(t, nil)
	ctx := context.Background()
	tests := []struct {
		name       string
		req        *hutchv1.ExecRequest
		signal     string
		wantCode   int32
		wantSignal string
		wantStdout string
	}{
		{"SIGINT kills sleep", &hutchv1.ExecRequest{Argv: []string{"sleep", "100"}}, "SIGINT", 130, "SIGINT", ""},
		{"short name", &hutchv1.ExecRequest{Argv: []string{"sleep", "100"}}, "term", 143, "SIGTERM", ""},
		{"trapped by the command", &hutchv1.ExecRequest{Shell: `trap 'echo got; exit 3' INT; echo ready; while :; do sleep 0.05; done`}, "INT", 3, "", "ready\ngot\n"},
		{"SIGKILL", &hutchv1.ExecRequest{Argv: []string{"sleep", "100"}}, "KILL", 137, "SIGKILL", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			sent := false
			r := execStream(ctx, c, tt.req, func(r *result, ev *hutchv1.ExecEvent) {
				// Signal once the command is running (after its first output, if it has one).
				_, started := ev.Event.(*hutchv1.ExecEvent_Started)
				_, out := ev.Event.(*hutchv1.ExecEvent_Stdout)
				if sent || (started && tt.wantStdout != "") || !(started || out) {
					return
				}
				sent = true
				time.Sleep(50 * time.Millisecond)
				if _, err := c.Signal(ctx, connect.NewRequest(&hutchv1.SignalRequest{Id: r.id, Signal: tt.signal})); err != nil {
					t.Errorf("Signal: %v", err)
				}
			})
			if r.err != nil || r.exit == nil {
				t.Fatalf("exec: %v", r.err)
			}
			if r.exit.Code != tt.wantCode || r.exit.Signal != tt.wantSignal {
				t.Errorf("exit = %d %q, want %d %q", r.exit.Code, r.exit.Signal, tt.wantCode, tt.wantSignal)
			}
			if got := r.stdout.String(); got != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", got, tt.wantStdout)
			}
		})
	}
}

func TestParseSignal(t *testing.T) {
	tests := []struct {
		in      string
		want    syscall.Signal
		wantErr bool
	}{
		{"", syscall.SIGTERM, false},
		{"SIGINT", syscall.SIGINT, false},
		{"INT", syscall.SIGINT, false},
		{"int", syscall.SIGINT, false},
		{"sigkill", syscall.SIGKILL, false},
		{"Hup", syscall.SIGHUP, false},
		{"9", syscall.SIGKILL, false},
		{"15", syscall.SIGTERM, false},
		{"64", syscall.Signal(64), false},
		{"0", 0, true},
		{"65", 0, true},
		{"-1", 0, true},
		{"+9", 0, true},
		{" 9", 0, true},
		{"SIGFOO", 0, true},
		{"SIG", 0, true},
		{"9x", 0, true},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := ParseSignal(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseSignal(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSignal(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

// treeScript prints the pid of a shell, then of a grandchild that left the
// process group with setsid, then blocks.
const treeScript = `setsid sh -c 'echo $$; exec sleep 100' & echo $$; sleep 100`

// pidsOf parses the pids treeScript printed.
func pidsOf(t *testing.T, out string) []int {
	t.Helper()
	var pids []int
	for _, f := range strings.Fields(out) {
		p, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("bad pid %q in output %q", f, out)
		}
		pids = append(pids, p)
	}
	return pids
}

// alive reports whether pid runs; a zombie waiting to be reaped is dead.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || !strings.HasPrefix(s[i+1:], " Z")
}

func requireGone(t *testing.T, pids []int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for _, p := range pids {
		for alive(p) {
			if time.Now().After(deadline) {
				t.Errorf("pid %d still alive after %v", p, within)
				_ = syscall.Kill(p, syscall.SIGKILL)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func TestTimeoutKillsTree(t *testing.T) {
	t.Parallel()
	c := newClient(t, nil)
	start := time.Now()
	r := execStream(context.Background(), c, &hutchv1.ExecRequest{Shell: treeScript, TimeoutMs: 1000}, nil)
	took := time.Since(start)
	pids := pidsOf(t, r.stdout.String())
	if len(pids) != 2 {
		t.Fatalf("want 2 pids printed, got %q (err %v)", r.stdout.String(), r.err)
	}
	if r.exit != nil {
		t.Errorf("got exit %v, want deadline_exceeded", r.exit)
	}
	if connect.CodeOf(r.err) != connect.CodeDeadlineExceeded {
		t.Errorf("err = %v, want deadline_exceeded", r.err)
	}
	if took > 5*time.Second {
		t.Errorf("exec took %v with a 1s timeout", took)
	}
	requireGone(t, append(pids, r.pid), 3*time.Second)
}

func TestCancelKillsTree(t *testing.T) {
	t.Parallel()
	c := newClient(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := execStream(ctx, c, &hutchv1.ExecRequest{Shell: treeScript}, func(r *result, ev *hutchv1.ExecEvent) {
		if len(strings.Fields(r.stdout.String())) == 2 {
			cancel()
		}
	})
	pids := pidsOf(t, r.stdout.String())
	if len(pids) != 2 {
		t.Fatalf("want 2 pids printed, got %q (err %v)", r.stdout.String(), r.err)
	}
	if r.exit != nil || !errors.Is(r.err, context.Canceled) && connect.CodeOf(r.err) != connect.CodeCanceled {
		t.Errorf("exit %v err %v, want canceled", r.exit, r.err)
	}
	requireGone(t, append(pids, r.pid), 5*time.Second)
}

func TestBackgroundChildDoesNotHang(t *testing.T) {
	t.Parallel()
	c := newClient(t, nil)
	start := time.Now()
	// The background sleep inherits stdout and keeps it open after sh exits.
	r := execStream(context.Background(), c, &hutchv1.ExecRequest{Shell: "sleep 30 & echo $!"}, nil)
	took := time.Since(start)
	if r.err != nil || r.exit == nil || r.exit.Code != 0 {
		t.Fatalf("exec: %v %v", r.err, r.exit)
	}
	pids := pidsOf(t, r.stdout.String())
	if len(pids) != 1 {
		t.Fatalf("stdout %q, want the background pid", r.stdout.String())
	}
	t.Cleanup(func() { _ = syscall.Kill(pids[0], syscall.SIGKILL) })
	if took > 3*time.Second {
		t.Errorf("exec took %v; a background child must not hold it past the ~1s drain grace", took)
	}
	if !alive(pids[0]) {
		t.Errorf("background child %d was killed; only the output drain should stop", pids[0])
	}
}

// A timeout on a command that already printed still reports what it printed.
func TestTimeoutKeepsOutput(t *testing.T) {
	t.Parallel()
	c := newClient(t, nil)
	r := execStream(context.Background(), c, &hutchv1.ExecRequest{Shell: "echo before; sleep 100", TimeoutMs: 300}, nil)
	if connect.CodeOf(r.err) != connect.CodeDeadlineExceeded {
		t.Fatalf("err = %v, want deadline_exceeded", r.err)
	}
	if r.stdout.String() != "before\n" {
		t.Errorf("stdout = %q", r.stdout.String())
	}
}
