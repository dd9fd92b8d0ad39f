// Package agenttest is what the tests of the agent's services share: one
// reaper per test binary (it waits for any child, so two would steal each
// other's), a Spawner in a fresh workdir, running an exec to its end, and
// checking that processes are gone.
package agenttest

import (
	"bytes"
	"context"
	"fmt"
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
	"github.com/hutch-sh/hutch/internal/agent/spawn"
	"github.com/hutch-sh/hutch/internal/testutil"
)

// reaper is the test binary's one Reaper, set by Main before any test runs.
var reaper *spawn.Reaper

// Main runs a package's tests the way the agent runs its children: as a
// child subreaper (the agent is PID 1, so orphans of killed trees come
// back to it) with one Reaper. Nothing else in the binary may start
// children (no os/exec). Call it from TestMain.
func Main(m *testing.M) {
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	reaper = spawn.NewReaper()
	code := m.Run()
	reaper.Stop()
	os.Exit(code)
}

// Spawner returns a Spawner with env (the test's environment when nil) in
// a fresh workdir.
func Spawner(tb testing.TB, env []string) *spawn.Spawner {
	tb.Helper()
	if reaper == nil {
		tb.Fatal("agenttest.Main must run the tests (call it from TestMain)")
	}
	if env == nil {
		env = os.Environ()
	}
	return spawn.New(reaper, env, tb.TempDir())
}

// ExecResult is everything one Exec stream delivered.
type ExecResult struct {
	ID             string
	Pid            int
	Stdout, Stderr bytes.Buffer
	Exit           *hutchv1.ExecExit
	Keepalives     int
	Err            error
}

// Exec runs req and calls onEvent (if set) for every event as it arrives,
// after collecting it.
func Exec(ctx context.Context, c hutchv1connect.ProcessServiceClient, req *hutchv1.ExecRequest, onEvent func(*ExecResult, *hutchv1.ExecEvent)) *ExecResult {
	r := &ExecResult{}
	s, err := c.Exec(ctx, connect.NewRequest(req))
	if err != nil {
		r.Err = err
		return r
	}
	defer s.Close()
	for s.Receive() {
		ev := s.Msg()
		switch e := ev.Event.(type) {
		case *hutchv1.ExecEvent_Started:
			r.ID, r.Pid = e.Started.Id, int(e.Started.Pid)
		case *hutchv1.ExecEvent_Stdout:
			r.Stdout.Write(e.Stdout)
		case *hutchv1.ExecEvent_Stderr:
			r.Stderr.Write(e.Stderr)
		case *hutchv1.ExecEvent_Exit:
			r.Exit = e.Exit
		case *hutchv1.ExecEvent_Keepalive:
			r.Keepalives++
		}
		if onEvent != nil {
			onEvent(r, ev)
		}
	}
	r.Err = s.Err()
	return r
}

// Trunc shortens s for a failure message.
func Trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

// PidsOf parses whitespace-separated pids a command printed.
func PidsOf(tb testing.TB, out string) []int {
	tb.Helper()
	var pids []int
	for _, f := range strings.Fields(out) {
		p, err := strconv.Atoi(f)
		if err != nil {
			tb.Fatalf("bad pid %q in output %q", f, out)
		}
		pids = append(pids, p)
	}
	return pids
}

// RequireGone fails tb unless every pid is gone (a zombie counts as gone)
// within d, and kills what is left.
func RequireGone(tb testing.TB, pids []int, d time.Duration) {
	tb.Helper()
	err := testutil.Poll(d, func() error {
		for _, p := range pids {
			if spawn.IsRunning(p) {
				return fmt.Errorf("pid %d still alive", p)
			}
		}
		return nil
	})
	if err != nil {
		tb.Errorf("after %v: %v", d, err)
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
}

// Unimplemented answers every ProcessService call unimplemented. Embedded
// in a test's handler beside the services under test, its methods are one
// level deeper than theirs, so theirs win.
type Unimplemented struct {
	hutchv1connect.UnimplementedProcessServiceHandler
}
