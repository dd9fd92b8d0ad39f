package exec

import (
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

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agent/agenttest"
	"github.com/hutch-sh/hutch/internal/agent/spawn"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/testutil"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

// noSessions refuses execs in a session: package session tests those.
type noSessions struct{}

func (noSessions) Run(context.Context, *hutchv1.ExecRequest, Sink) error {
	return fmt.Errorf("no sessions in exec's tests: %w", errdefs.ErrFailedPrecondition)
}

// handler serves the exec calls; the rest of the ProcessService is
// unimplemented here.
type handler struct {
	*Service
	agenttest.Unimplemented
}

func newService(tb testing.TB, baseEnv []string) *Service {
	return New(slog.New(slog.DiscardHandler), agenttest.Spawner(tb, baseEnv), NewTable(), noSessions{})
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
	svc := newService(t, baseEnv)
	path, h := hutchv1connect.NewProcessServiceHandler(handler{Service: svc})
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
	res := agenttest.Exec(context.Background(), c, &hutchv1.ExecRequest{Shell: "echo out; echo err >&2; exit 3"}, nil)
	if res.Err != nil || res.Exit == nil || res.Exit.Code != 3 || res.Stdout.String() != "out\n" || res.Stderr.String() != "err\n" {
		t.Fatalf("JSON exec: err %v exit %v stdout %q stderr %q", res.Err, res.Exit, res.Stdout.String(), res.Stderr.String())
	}
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
			r := agenttest.Exec(context.Background(), c, tt.req, nil)
			if r.Err != nil {
				t.Fatalf("exec: %v", r.Err)
			}
			if r.ID == "" || r.Pid <= 0 {
				t.Errorf("started event: id %q pid %d", r.ID, r.Pid)
			}
			if r.Exit == nil {
				t.Fatal("no exit event")
			}
			if got := r.Stdout.String(); got != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", agenttest.Trunc(got), agenttest.Trunc(tt.wantStdout))
			}
			if got := r.Stderr.String(); got != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", got, tt.wantStderr)
			}
			if r.Exit.Code != tt.wantCode || r.Exit.Signal != tt.wantSignal {
				t.Errorf("exit = %d %q, want %d %q", r.Exit.Code, r.Exit.Signal, tt.wantCode, tt.wantSignal)
			}
		})
	}
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
			r := agenttest.Exec(context.Background(), c, tt.req, nil)
			if r.Exit != nil {
				t.Fatalf("got exit %v, want an error", r.Exit)
			}
			if got := connect.CodeOf(r.Err); got != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, r.Err, tt.wantCode)
			}
			if !strings.Contains(r.Err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", r.Err, tt.wantMsg)
			}
		})
	}
}

func TestExecEnv(t *testing.T) {
	t.Parallel()
	c := newClient(t, []string{"PATH=/usr/bin:/bin", "A=base", "B=base"})
	r := agenttest.Exec(context.Background(), c, &hutchv1.ExecRequest{
		Shell: `echo "$A $B $C"; env | grep -c '^B='`,
		Env:   map[string]string{"B": "req", "C": "x y"},
	}, nil)
	if r.Err != nil || r.Exit == nil || r.Exit.Code != 0 {
		t.Fatalf("exec: %v %v %s", r.Err, r.Exit, r.Stderr.String())
	}
	if got, want := r.Stdout.String(), "base req x y\n1\n"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
}

func TestWriteStdin(t *testing.T) {
	t.Parallel()
	c := newClient(t, nil)
	ctx := context.Background()

	t.Run("data then eof", func(t *testing.T) {
		t.Parallel()
		var stdinErr error
		r := agenttest.Exec(ctx, c, &hutchv1.ExecRequest{Argv: []string{"cat"}, Stdin: true}, func(r *agenttest.ExecResult, ev *hutchv1.ExecEvent) {
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
		if r.Err != nil || r.Exit == nil || r.Exit.Code != 0 {
			t.Fatalf("exec: %v %v", r.Err, r.Exit)
		}
		if got := r.Stdout.String(); got != "hello\nworld\n" {
			t.Errorf("stdout = %q", got)
		}
	})

	t.Run("write after eof", func(t *testing.T) {
		t.Parallel()
		var second error
		r := agenttest.Exec(ctx, c, &hutchv1.ExecRequest{Shell: "cat; sleep 0.5", Stdin: true}, func(r *agenttest.ExecResult, ev *hutchv1.ExecEvent) {
			if st, ok := ev.Event.(*hutchv1.ExecEvent_Started); ok {
				if _, err := c.WriteStdin(ctx, connect.NewRequest(&hutchv1.WriteStdinRequest{Id: st.Started.Id, Eof: true})); err != nil {
					t.Errorf("eof: %v", err)
				}
				_, second = c.WriteStdin(ctx, connect.NewRequest(&hutchv1.WriteStdinRequest{Id: st.Started.Id, Data: []byte("late")}))
			}
		})
		if r.Err != nil || r.Exit == nil {
			t.Fatalf("exec: %v", r.Err)
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
			r := agenttest.Exec(ctx, c, tt.req, func(r *agenttest.ExecResult, ev *hutchv1.ExecEvent) {
				// Signal once the command is running (after its first output, if it has one).
				_, started := ev.Event.(*hutchv1.ExecEvent_Started)
				_, out := ev.Event.(*hutchv1.ExecEvent_Stdout)
				if sent || (started && tt.wantStdout != "") || !(started || out) {
					return
				}
				sent = true
				// A signal before the exec would reach the test binary's
				// handlers in the child, not the command's.
				waitExeced(t, r.Pid)
				if _, err := c.Signal(ctx, connect.NewRequest(&hutchv1.SignalRequest{Id: r.ID, Signal: tt.signal})); err != nil {
					t.Errorf("Signal: %v", err)
				}
			})
			if r.Err != nil || r.Exit == nil {
				t.Fatalf("exec: %v", r.Err)
			}
			if r.Exit.Code != tt.wantCode || r.Exit.Signal != tt.wantSignal {
				t.Errorf("exit = %d %q, want %d %q", r.Exit.Code, r.Exit.Signal, tt.wantCode, tt.wantSignal)
			}
			if got := r.Stdout.String(); got != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", got, tt.wantStdout)
			}
		})
	}
}

// waitExeced waits until pid runs another program than this test binary.
func waitExeced(t *testing.T, pid int) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); err != nil || exe == self {
			return fmt.Errorf("pid %d has not exec'd its command yet (%q, %v)", pid, exe, err)
		}
		return nil
	})
}

const treeScript = `setsid sh -c 'echo $$; exec sleep 100' & echo $$; sleep 100`

func TestTimeoutKillsTree(t *testing.T) {
	t.Parallel()
	c := newClient(t, nil)
	start := time.Now()
	r := agenttest.Exec(context.Background(), c, &hutchv1.ExecRequest{Shell: treeScript, TimeoutMs: 1000}, nil)
	took := time.Since(start)
	pids := agenttest.PidsOf(t, r.Stdout.String())
	if len(pids) != 2 {
		t.Fatalf("want 2 pids printed, got %q (err %v)", r.Stdout.String(), r.Err)
	}
	if r.Exit != nil {
		t.Errorf("got exit %v, want deadline_exceeded", r.Exit)
	}
	if connect.CodeOf(r.Err) != connect.CodeDeadlineExceeded {
		t.Errorf("err = %v, want deadline_exceeded", r.Err)
	}
	if took > 5*time.Second {
		t.Errorf("exec took %v with a 1s timeout", took)
	}
	agenttest.RequireGone(t, append(pids, r.Pid), 3*time.Second)
}

func TestCancelKillsTree(t *testing.T) {
	t.Parallel()
	c := newClient(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := agenttest.Exec(ctx, c, &hutchv1.ExecRequest{Shell: treeScript}, func(r *agenttest.ExecResult, ev *hutchv1.ExecEvent) {
		if len(strings.Fields(r.Stdout.String())) == 2 {
			cancel()
		}
	})
	pids := agenttest.PidsOf(t, r.Stdout.String())
	if len(pids) != 2 {
		t.Fatalf("want 2 pids printed, got %q (err %v)", r.Stdout.String(), r.Err)
	}
	if r.Exit != nil || !errors.Is(r.Err, context.Canceled) && connect.CodeOf(r.Err) != connect.CodeCanceled {
		t.Errorf("exit %v err %v, want canceled", r.Exit, r.Err)
	}
	agenttest.RequireGone(t, append(pids, r.Pid), 5*time.Second)
}

func TestBackgroundChildDoesNotHang(t *testing.T) {
	t.Parallel()
	c := newClient(t, nil)
	start := time.Now()
	// The background sleep inherits stdout and keeps it open after sh exits.
	r := agenttest.Exec(context.Background(), c, &hutchv1.ExecRequest{Shell: "sleep 30 & echo $!"}, nil)
	took := time.Since(start)
	if r.Err != nil || r.Exit == nil || r.Exit.Code != 0 {
		t.Fatalf("exec: %v %v", r.Err, r.Exit)
	}
	pids := agenttest.PidsOf(t, r.Stdout.String())
	if len(pids) != 1 {
		t.Fatalf("stdout %q, want the background pid", r.Stdout.String())
	}
	t.Cleanup(func() { _ = syscall.Kill(pids[0], syscall.SIGKILL) })
	if took > 3*time.Second {
		t.Errorf("exec took %v; a background child must not hold it past the ~1s drain grace", took)
	}
	if !spawn.IsRunning(pids[0]) {
		t.Errorf("background child %d was killed; only the output drain should stop", pids[0])
	}
}

// A timeout on a command that already printed still reports what it printed.
func TestTimeoutKeepsOutput(t *testing.T) {
	t.Parallel()
	c := newClient(t, nil)
	r := agenttest.Exec(context.Background(), c, &hutchv1.ExecRequest{Shell: "echo before; sleep 100", TimeoutMs: 300}, nil)
	if connect.CodeOf(r.Err) != connect.CodeDeadlineExceeded {
		t.Fatalf("err = %v, want deadline_exceeded", r.Err)
	}
	if r.Stdout.String() != "before\n" {
		t.Errorf("stdout = %q", r.Stdout.String())
	}
}
