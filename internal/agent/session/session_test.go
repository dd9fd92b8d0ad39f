package session

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agent/agenttest"
	"github.com/hutch-sh/hutch/internal/agent/exec"
	"github.com/hutch-sh/hutch/internal/agent/registry"
	"github.com/hutch-sh/hutch/internal/agent/spawn"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

// execs names exec.Service apart from this package's Service in handler.
type execs = exec.Service

// handler serves exec and the session calls, as the agent does; the rest
// of the ProcessService is unimplemented here.
type handler struct {
	*execs
	*Service
	agenttest.Unimplemented
}

// newSessionClient serves a Service as the agent does (Exec through the raw
// handler) and closes it, killing its shells, when the test ends.
func newSessionClient(t *testing.T) (*Service, hutchv1connect.ProcessServiceClient) {
	t.Helper()
	log, sp, table := slog.New(slog.DiscardHandler), agenttest.Spawner(t, nil), exec.NewTable()
	svc := New(log, sp, table)
	ex := exec.New(log, sp, table, svc)
	path, h := hutchv1connect.NewProcessServiceHandler(handler{execs: ex, Service: svc})
	mux := http.NewServeMux()
	mux.Handle(path, h)
	mux.Handle(hutchv1connect.ProcessServiceExecProcedure, ex.ExecHandler(h, 1<<20))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(svc.Close)
	return svc, hutchv1connect.NewProcessServiceClient(srv.Client(), srv.URL)
}

func createSession(t *testing.T, c hutchv1connect.ProcessServiceClient, req *hutchv1.CreateSessionRequest) *hutchv1.SessionInfo {
	t.Helper()
	res, err := c.CreateSession(context.Background(), connect.NewRequest(req))
	if err != nil {
		t.Fatalf("create session %+v: %v", req, err)
	}
	return res.Msg
}

// inSession runs shell in session and fails the test unless it exits 0.
func inSession(t *testing.T, c hutchv1connect.ProcessServiceClient, session, shell string) string {
	t.Helper()
	res := agenttest.Exec(context.Background(), c, &hutchv1.ExecRequest{Session: session, Shell: shell}, nil)
	if res.Err != nil || res.Exit == nil || res.Exit.Code != 0 {
		t.Fatalf("session %s: %q: err %v exit %v stdout %q stderr %q", session, shell, res.Err, res.Exit, res.Stdout.String(), res.Stderr.String())
	}
	return res.Stdout.String()
}

func TestSessionKeepsState(t *testing.T) {
	t.Parallel()
	_, c := newSessionClient(t)
	dir := t.TempDir()
	tests := []struct {
		name  string
		steps []string // every step but the last must print nothing
		want  string   // stdout of the last step
	}{
		{name: "cd", steps: []string{"cd " + dir, "pwd"}, want: dir + "\n"},
		{name: "export", steps: []string{"export X=1", "echo x=$X; sh -c 'echo child=$X'"}, want: "x=1\nchild=1\n"},
		{name: "shell variable", steps: []string{"Y=2", "echo y=$Y"}, want: "y=2\n"},
		{name: "function", steps: []string{"greet() { echo hi \"$1\"; }", "greet you"}, want: "hi you\n"},
		{name: "argv is quoted", steps: []string{"Z='a  b'", `printf '%s|' $Z "$Z"`}, want: "a|b|a  b|"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := createSession(t, c, &hutchv1.CreateSessionRequest{}).Id
			var got string
			for _, step := range tt.steps {
				got = inSession(t, c, id, step)
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	// argv runs quoted in the session, so it sees the session's functions
	// but is not split again.
	id := createSession(t, c, &hutchv1.CreateSessionRequest{}).Id
	inSession(t, c, id, `show() { printf '<%s>' "$@"; }`)
	res := agenttest.Exec(context.Background(), c, &hutchv1.ExecRequest{Session: id, Argv: []string{"show", "a b", "$HOME", "*"}}, nil)
	if res.Err != nil || res.Stdout.String() != "<a b><$HOME><*>" {
		t.Fatalf("argv in session: err %v stdout %q", res.Err, res.Stdout.String())
	}
}

func TestSessionsIsolated(t *testing.T) {
	t.Parallel()
	_, c := newSessionClient(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	a := createSession(t, c, &hutchv1.CreateSessionRequest{Id: "a", Cwd: dirA, Env: map[string]string{"WHO": "a"}})
	b := createSession(t, c, &hutchv1.CreateSessionRequest{Id: "b", Cwd: dirB, Env: map[string]string{"WHO": "b"}})
	if a.Cwd != dirA || b.Cwd != dirB {
		t.Fatalf("cwd: a %q b %q", a.Cwd, b.Cwd)
	}
	inSession(t, c, "a", "export ONLY_A=1; echo shared > "+filepath.Join(dirB, "f"))
	if got := inSession(t, c, "a", "pwd; echo $WHO ${ONLY_A-unset}"); got != dirA+"\na 1\n" {
		t.Fatalf("session a: %q", got)
	}
	if got := inSession(t, c, "b", "pwd; echo $WHO ${ONLY_A-unset}; cat f"); got != dirB+"\nb unset\nshared\n" {
		t.Fatalf("session b: %q", got)
	}
	res, err := c.ListSessions(context.Background(), connect.NewRequest(&hutchv1.ListSessionsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range res.Msg.Sessions {
		ids = append(ids, s.Id+":"+s.Cwd)
	}
	if got, want := strings.Join(ids, ","), "a:"+dirA+",b:"+dirB+",default:"; !strings.HasPrefix(got, want) {
		t.Fatalf("list: %s, want %s...", got, want)
	}
}

func TestDefaultSession(t *testing.T) {
	t.Parallel()
	svc, c := newSessionClient(t)
	if got := inSession(t, c, "default", "pwd; cd /tmp"); got != svc.spawner.Workdir()+"\n" {
		t.Fatalf("default starts in %q, want the workdir %q", got, svc.spawner.Workdir())
	}
	if got := inSession(t, c, "default", "pwd"); got != "/tmp\n" {
		t.Fatalf("default after cd: %q", got)
	}
	if _, err := c.CreateSession(context.Background(), connect.NewRequest(&hutchv1.CreateSessionRequest{Id: "default"})); connect.CodeOf(err) != connect.CodeAlreadyExists {
		t.Fatalf("create default: %v", err)
	}
	// Deleting default resets it.
	if _, err := c.DeleteSession(context.Background(), connect.NewRequest(&hutchv1.DeleteSessionRequest{Id: "default"})); err != nil {
		t.Fatal(err)
	}
	if got := inSession(t, c, "default", "pwd"); got != svc.spawner.Workdir()+"\n" {
		t.Fatalf("default after delete: %q", got)
	}
}

func TestSessionExitCodes(t *testing.T) {
	t.Parallel()
	_, c := newSessionClient(t)
	dir := t.TempDir()
	id := createSession(t, c, &hutchv1.CreateSessionRequest{Cwd: dir}).Id
	tests := []struct {
		name     string
		req      *hutchv1.ExecRequest
		code     int32
		restarts bool // the shell ends: exports are lost, cwd is kept
	}{
		{name: "true", req: &hutchv1.ExecRequest{Shell: "true"}},
		{name: "false", req: &hutchv1.ExecRequest{Shell: "false"}, code: 1},
		{name: "exit in a subshell", req: &hutchv1.ExecRequest{Shell: "(exit 7)"}, code: 7},
		{name: "last command counts", req: &hutchv1.ExecRequest{Shell: "false; true"}},
		{name: "argv", req: &hutchv1.ExecRequest{Argv: []string{"sh", "-c", "exit 3"}}, code: 3},
		{name: "not found", req: &hutchv1.ExecRequest{Argv: []string{"no-such-command-x"}}, code: 127},
		{name: "killed", req: &hutchv1.ExecRequest{Shell: "sh -c 'kill -9 $$'"}, code: 137},
		{name: "syntax error", req: &hutchv1.ExecRequest{Shell: "echo 'unterminated"}, code: 2},
		// A bare exit ends the shell: its code is reported and the session
		// restarts in its last cwd.
		{name: "exit ends the shell", req: &hutchv1.ExecRequest{Shell: "exit 9"}, code: 9, restarts: true},
		{name: "set -e ends the shell", req: &hutchv1.ExecRequest{Shell: "set -e; false"}, code: 1, restarts: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inSession(t, c, id, "export MARK=1")
			tt.req.Session = id
			res := agenttest.Exec(context.Background(), c, tt.req, nil)
			if res.Err != nil || res.Exit == nil || res.Exit.Code != tt.code {
				t.Fatalf("err %v exit %v, want code %d; stderr %q", res.Err, res.Exit, tt.code, res.Stderr.String())
			}
			want := "ok 1\n" + dir + "\n"
			if tt.restarts {
				want = "ok\n" + dir + "\n"
			}
			if got := inSession(t, c, id, "echo ok $MARK; pwd"); got != want {
				t.Fatalf("session after: %q, want %q", got, want)
			}
		})
	}
}

func TestSessionExecsDoNotInterleave(t *testing.T) {
	t.Parallel()
	_, c := newSessionClient(t)
	id := createSession(t, c, &hutchv1.CreateSessionRequest{}).Id
	var wg sync.WaitGroup
	outs := make([]*agenttest.ExecResult, 4)
	for i := range outs {
		wg.Go(func() {
			// A builtin loop and an external command per line, so the shell
			// and its children both write.
			sh := fmt.Sprintf("i=0; while [ $i -lt 100 ]; do echo m%d; /bin/echo m%d; i=$((i+1)); done", i, i)
			outs[i] = agenttest.Exec(context.Background(), c, &hutchv1.ExecRequest{Session: id, Shell: sh}, nil)
		})
	}
	wg.Wait()
	// Each exec's output holds only its own lines, all of them. (Event
	// arrival times are no guide: a session is free for the next exec as
	// soon as the command's status is in, while its Exit event is still on
	// the way.)
	for i, r := range outs {
		want := strings.Repeat(fmt.Sprintf("m%d\n", i), 200)
		if r.Err != nil || r.Exit == nil || r.Exit.Code != 0 || r.Stdout.String() != want {
			t.Fatalf("exec %d: err %v exit %v, stdout (%d bytes) is not 200 of its own lines: %q", i, r.Err, r.Exit, r.Stdout.Len(), agenttest.Trunc(r.Stdout.String()))
		}
	}
}

func TestSessionStdin(t *testing.T) {
	t.Parallel()
	_, c := newSessionClient(t)
	id := createSession(t, c, &hutchv1.CreateSessionRequest{}).Id
	for _, sh := range []string{"cat", "read x; echo read=$?", "head -c 10"} {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res := agenttest.Exec(ctx, c, &hutchv1.ExecRequest{Session: id, Shell: sh}, nil)
		cancel()
		if res.Err != nil || res.Exit == nil || time.Since(start) > 2*time.Second {
			t.Fatalf("%q: err %v exit %v after %v", sh, res.Err, res.Exit, time.Since(start))
		}
	}
	if got := inSession(t, c, id, "echo alive"); got != "alive\n" {
		t.Fatalf("after stdin readers: %q", got)
	}
	res := agenttest.Exec(context.Background(), c, &hutchv1.ExecRequest{Session: id, Shell: "cat", Stdin: true}, nil)
	if connect.CodeOf(res.Err) != connect.CodeInvalidArgument {
		t.Fatalf("stdin=true in a session: %v", res.Err)
	}
}

func TestSessionStreamsLive(t *testing.T) {
	t.Parallel()
	_, c := newSessionClient(t)
	start := time.Now()
	var first, errFirst time.Duration
	res := agenttest.Exec(context.Background(), c, &hutchv1.ExecRequest{Session: "default", Shell: "echo first; echo e >&2; sleep 1; echo second"}, func(r *agenttest.ExecResult, ev *hutchv1.ExecEvent) {
		switch ev.Event.(type) {
		case *hutchv1.ExecEvent_Stdout:
			if first == 0 {
				first = time.Since(start)
			}
		case *hutchv1.ExecEvent_Stderr:
			if errFirst == 0 {
				errFirst = time.Since(start)
			}
		}
	})
	total := time.Since(start)
	if res.Err != nil || res.Stdout.String() != "first\nsecond\n" || res.Stderr.String() != "e\n" {
		t.Fatalf("err %v stdout %q stderr %q", res.Err, res.Stdout.String(), res.Stderr.String())
	}
	if first > 500*time.Millisecond || errFirst > 500*time.Millisecond || total < time.Second {
		t.Fatalf("first stdout after %v, stderr after %v, end after %v: not live", first, errFirst, total)
	}
	if res.ID == "" || res.Pid == 0 {
		t.Fatalf("no Started event: %+v", res)
	}
}

func TestSessionTimeout(t *testing.T) {
	t.Parallel()
	_, c := newSessionClient(t)
	dir := t.TempDir()
	id := createSession(t, c, &hutchv1.CreateSessionRequest{}).Id
	inSession(t, c, id, "cd "+dir+"; export KEPT=1")

	start := time.Now()
	res := agenttest.Exec(context.Background(), c, &hutchv1.ExecRequest{Session: id, Shell: "echo $$ ; sleep 30 & echo $!; wait", TimeoutMs: 300}, nil)
	if connect.CodeOf(res.Err) != connect.CodeDeadlineExceeded || time.Since(start) > 3*time.Second {
		t.Fatalf("sleep 30 with a timeout: err %v after %v", res.Err, time.Since(start))
	}
	pids := agenttest.PidsOf(t, res.Stdout.String())
	agenttest.RequireGone(t, pids[1:], time.Second)
	if !spawn.IsRunning(pids[0]) {
		t.Fatal("the shell was killed with its command")
	}
	if got := inSession(t, c, id, "pwd; echo $KEPT"); got != dir+"\n1\n" {
		t.Fatalf("after timeout: %q", got)
	}

	// A builtin loop keeps the shell itself busy: the shell is restarted
	// in its cwd, and the error says the state is lost.
	start = time.Now()
	res = agenttest.Exec(context.Background(), c, &hutchv1.ExecRequest{Session: id, Shell: "while :; do :; done", TimeoutMs: 200}, nil)
	if connect.CodeOf(res.Err) != connect.CodeDeadlineExceeded || !strings.Contains(res.Err.Error(), "lost") || time.Since(start) > 3*time.Second {
		t.Fatalf("builtin loop with a timeout: err %v after %v", res.Err, time.Since(start))
	}
	if got := inSession(t, c, id, "pwd; echo ${KEPT-unset}"); got != dir+"\nunset\n" {
		t.Fatalf("after restart: %q", got)
	}

	// Cancelling the call kills the command the same way.
	ctx, cancel := context.WithCancel(context.Background())
	res = agenttest.Exec(ctx, c, &hutchv1.ExecRequest{Session: id, Shell: "echo start; sleep 30 & echo $!; wait"}, func(r *agenttest.ExecResult, ev *hutchv1.ExecEvent) {
		if strings.Count(r.Stdout.String(), "\n") == 2 {
			cancel()
		}
	})
	cancel()
	if res.Err == nil {
		t.Fatal("cancelled exec ended without error")
	}
	agenttest.RequireGone(t, agenttest.PidsOf(t, strings.TrimPrefix(res.Stdout.String(), "start\n")), time.Second)
	if got := inSession(t, c, id, "pwd"); got != dir+"\n" {
		t.Fatalf("after cancel: %q", got)
	}
}

func TestSessionExecEnvAndCwd(t *testing.T) {
	t.Parallel()
	_, c := newSessionClient(t)
	dir := t.TempDir()
	res := agenttest.Exec(context.Background(), c, &hutchv1.ExecRequest{Session: "default", Shell: "echo $X; pwd", Cwd: dir, Env: map[string]string{"X": "it's"}}, nil)
	if res.Err != nil || res.Stdout.String() != "it's\n"+dir+"\n" {
		t.Fatalf("env and cwd: err %v stdout %q", res.Err, res.Stdout.String())
	}
	// env is for that command only; cd persists as if typed.
	if got := inSession(t, c, "default", "echo ${X-unset}; pwd"); got != "unset\n"+dir+"\n" {
		t.Fatalf("next exec: %q", got)
	}
	res = agenttest.Exec(context.Background(), c, &hutchv1.ExecRequest{Session: "default", Shell: "true", Env: map[string]string{"A-B": "1"}}, nil)
	if connect.CodeOf(res.Err) != connect.CodeInvalidArgument {
		t.Fatalf("bad env name: %v", res.Err)
	}
}

func TestSessionSetEnv(t *testing.T) {
	t.Parallel()
	_, c := newSessionClient(t)
	ctx := context.Background()
	setEnv := func(req *hutchv1.SetEnvRequest) error {
		_, err := c.SetEnv(ctx, connect.NewRequest(req))
		return err
	}
	old := createSession(t, c, &hutchv1.CreateSessionRequest{}).Id
	other := createSession(t, c, &hutchv1.CreateSessionRequest{}).Id
	inSession(t, c, old, "export GONE=1")

	// On one session: exported there only, quoted as given.
	val := `it's "$HOME" \n`
	if err := setEnv(&hutchv1.SetEnvRequest{Session: old, Set: map[string]string{"S": val}, Unset: []string{"GONE"}}); err != nil {
		t.Fatal(err)
	}
	if got := inSession(t, c, old, `printf '%s|' "$S" "${GONE-unset}"; sh -c 'printf %s "$S"'`); got != val+"|unset|"+val {
		t.Fatalf("session env: %q", got)
	}
	if got := inSession(t, c, other, "echo ${S-unset}"); got != "unset\n" {
		t.Fatalf("other session: %q", got)
	}

	// On the sandbox: later sessions and execs see it, existing sessions do not.
	if err := setEnv(&hutchv1.SetEnvRequest{Set: map[string]string{"SB": "1"}}); err != nil {
		t.Fatal(err)
	}
	fresh := createSession(t, c, &hutchv1.CreateSessionRequest{}).Id
	if got := inSession(t, c, fresh, "echo ${SB-unset}"); got != "1\n" {
		t.Fatalf("new session: %q", got)
	}
	if got := inSession(t, c, old, "echo ${SB-unset}"); got != "unset\n" {
		t.Fatalf("existing session: %q", got)
	}
	if res := agenttest.Exec(ctx, c, &hutchv1.ExecRequest{Shell: "echo $SB"}, nil); res.Stdout.String() != "1\n" {
		t.Fatalf("plain exec: %q %v", res.Stdout.String(), res.Err)
	}
	if err := setEnv(&hutchv1.SetEnvRequest{Unset: []string{"SB"}}); err != nil {
		t.Fatal(err)
	}
	if got := inSession(t, c, createSession(t, c, &hutchv1.CreateSessionRequest{}).Id, "echo ${SB-unset}"); got != "unset\n" {
		t.Fatalf("new session after unset: %q", got)
	}

	// An unknown session is created, as by an exec in it.
	if err := setEnv(&hutchv1.SetEnvRequest{Session: "fresh", Set: map[string]string{"X": "v"}}); err != nil {
		t.Fatalf("set env in a new session: %v", err)
	}
	if got := inSession(t, c, "fresh", "echo $X"); got != "v\n" {
		t.Fatalf("session created by SetEnv: X=%q", got)
	}

	errs := []struct {
		name string
		req  *hutchv1.SetEnvRequest
		code connect.Code
	}{
		{"bad name", &hutchv1.SetEnvRequest{Set: map[string]string{"1X": "v"}}, connect.CodeInvalidArgument},
		{"bad unset name", &hutchv1.SetEnvRequest{Session: old, Unset: []string{"A B"}}, connect.CodeInvalidArgument},
		{"set and unset", &hutchv1.SetEnvRequest{Set: map[string]string{"X": "v"}, Unset: []string{"X"}}, connect.CodeInvalidArgument},
		{"readonly", &hutchv1.SetEnvRequest{Session: old, Set: map[string]string{"UID": "0"}}, connect.CodeFailedPrecondition},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			if err := setEnv(tt.req); connect.CodeOf(err) != tt.code {
				t.Fatalf("got %v, want %v", err, tt.code)
			}
		})
	}
}

func TestSessionSetEnvSurvivesRestart(t *testing.T) {
	t.Parallel()
	_, c := newSessionClient(t)
	if _, err := c.SetEnv(context.Background(), connect.NewRequest(&hutchv1.SetEnvRequest{Session: "default", Set: map[string]string{"K": "v"}})); err != nil {
		t.Fatal(err)
	}
	agenttest.Exec(context.Background(), c, &hutchv1.ExecRequest{Session: "default", Shell: "exit 1"}, nil)
	if got := inSession(t, c, "default", "echo $K"); got != "v\n" {
		t.Fatalf("after restart: %q", got)
	}
}

func TestDeleteSession(t *testing.T) {
	t.Parallel()
	_, c := newSessionClient(t)
	ctx := context.Background()
	id := createSession(t, c, &hutchv1.CreateSessionRequest{}).Id
	out := inSession(t, c, id, "echo $$; sleep 100 >/dev/null 2>&1 & echo $!")
	pids := agenttest.PidsOf(t, out)

	// A running exec ends when its session is deleted.
	done := make(chan *agenttest.ExecResult)
	started := make(chan struct{})
	go func() {
		done <- agenttest.Exec(ctx, c, &hutchv1.ExecRequest{Session: id, Shell: "sleep 100"}, func(_ *agenttest.ExecResult, ev *hutchv1.ExecEvent) {
			if _, ok := ev.Event.(*hutchv1.ExecEvent_Started); ok {
				close(started)
			}
		})
	}()
	<-started
	if _, err := c.DeleteSession(ctx, connect.NewRequest(&hutchv1.DeleteSessionRequest{Id: id})); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.Exit == nil && r.Err == nil {
			t.Fatalf("exec in a deleted session: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("exec in a deleted session did not end")
	}
	agenttest.RequireGone(t, pids, time.Second)
	if _, err := c.DeleteSession(ctx, connect.NewRequest(&hutchv1.DeleteSessionRequest{Id: id})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("delete twice: %v", err)
	}
	// An exec after the delete gets a new session under the id: a new
	// shell in the workdir.
	if got := agenttest.PidsOf(t, inSession(t, c, id, "echo $$")); got[0] == pids[0] {
		t.Fatalf("exec after delete ran in the deleted shell %d", pids[0])
	}
}

func TestSessionIDs(t *testing.T) {
	t.Parallel()
	_, c := newSessionClient(t)
	ctx := context.Background()
	tests := []struct {
		id   string
		code connect.Code // 0: created
	}{
		{id: "ok-1.x_y"},
		{id: "ok-1.x_y", code: connect.CodeAlreadyExists},
		{id: strings.Repeat("a", 64)},
		{id: strings.Repeat("a", 65), code: connect.CodeInvalidArgument},
		{id: "a/b", code: connect.CodeInvalidArgument},
		{id: "a b", code: connect.CodeInvalidArgument},
		{id: "../x", code: connect.CodeInvalidArgument},
	}
	for _, tt := range tests {
		_, err := c.CreateSession(ctx, connect.NewRequest(&hutchv1.CreateSessionRequest{Id: tt.id}))
		if connect.CodeOf(err) != tt.code && !(tt.code == 0 && err == nil) {
			t.Errorf("create %q: %v, want %v", tt.id, err, tt.code)
		}
	}
	if _, err := c.CreateSession(ctx, connect.NewRequest(&hutchv1.CreateSessionRequest{Cwd: "/no/such/dir"})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("create in a missing cwd: %v", err)
	}
	gen := createSession(t, c, &hutchv1.CreateSessionRequest{})
	if registry.CheckID("session", gen.Id) != nil {
		t.Errorf("generated id %q", gen.Id)
	}
	if res := agenttest.Exec(ctx, c, &hutchv1.ExecRequest{Session: "a/b", Shell: "true"}, nil); connect.CodeOf(res.Err) != connect.CodeInvalidArgument {
		t.Errorf("exec in %q: %v, want %v", "a/b", res.Err, connect.CodeInvalidArgument)
	}
	inSession(t, c, "nope", "true") // created by the exec
	list, err := c.ListSessions(ctx, connect.NewRequest(&hutchv1.ListSessionsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range list.Msg.Sessions {
		ids = append(ids, s.Id)
	}
	if !sortedStrings(ids) || len(ids) != 5 || !slices.Contains(ids, "nope") {
		t.Errorf("list: %v", ids)
	}
}

func sortedStrings(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return false
		}
	}
	return true
}

// Close kills every shell and what runs in it.
func TestCloseKillsSessions(t *testing.T) {
	t.Parallel()
	svc, c := newSessionClient(t)
	id := createSession(t, c, &hutchv1.CreateSessionRequest{}).Id
	var pids []int
	for _, s := range []string{id, "default"} {
		pids = append(pids, agenttest.PidsOf(t, inSession(t, c, s, "echo $$; sleep 100 >/dev/null 2>&1 & echo $!"))...)
	}
	svc.Close()
	agenttest.RequireGone(t, pids, time.Second)
	res := agenttest.Exec(context.Background(), c, &hutchv1.ExecRequest{Session: "default", Shell: "true"}, nil)
	if connect.CodeOf(res.Err) != connect.CodeUnavailable {
		t.Fatalf("exec after Close: %v", res.Err)
	}
}

// Without bash on the PATH a session runs sh, with the same behaviour.
func TestSessionPOSIXShell(t *testing.T) {
	t.Parallel()
	_, c := newSessionClient(t)
	bin, dir := t.TempDir(), t.TempDir()
	if err := os.Symlink("/bin/sh", filepath.Join(bin, "sh")); err != nil {
		t.Fatal(err)
	}
	id := createSession(t, c, &hutchv1.CreateSessionRequest{Env: map[string]string{"PATH": bin}}).Id
	if got := inSession(t, c, id, "echo ${BASH_VERSION-none}"); got != "none\n" {
		t.Fatalf("not sh: %q", got)
	}
	inSession(t, c, id, "cd "+dir+"; export X=1; f() { echo fn $X; }")
	res := agenttest.Exec(context.Background(), c, &hutchv1.ExecRequest{Session: id, Shell: "echo 'unterminated"}, nil)
	if res.Err != nil || res.Exit == nil || res.Exit.Code == 0 {
		t.Fatalf("syntax error: err %v exit %v", res.Err, res.Exit)
	}
	res = agenttest.Exec(context.Background(), c, &hutchv1.ExecRequest{Session: id, Shell: "echo $Y", Env: map[string]string{"Y": "scoped"}}, nil)
	if res.Stdout.String() != "scoped\n" {
		t.Fatalf("env: %q %v", res.Stdout.String(), res.Err)
	}
	if got := inSession(t, c, id, "f; pwd; echo ${Y-unset}"); got != "fn 1\n"+dir+"\nunset\n" {
		t.Fatalf("state: %q", got)
	}
}

// An exec in a session that does not exist yet creates it, with the
// defaults of CreateSession, as sandboxes are created by name: the next
// exec finds the cwd the first one left. Concurrent first execs get one
// session.
func TestExecCreatesSession(t *testing.T) {
	t.Parallel()
	svc, c := newSessionClient(t)
	ctx := context.Background()
	if got := inSession(t, c, "s1", "cd /tmp"); got != "" {
		t.Fatalf("cd printed %q", got)
	}
	if got := inSession(t, c, "s1", "pwd"); got != "/tmp\n" {
		t.Fatalf("pwd after cd in a new session: %q, want /tmp", got)
	}
	if got := inSession(t, c, "s2", "pwd"); got != svc.spawner.Workdir()+"\n" {
		t.Fatalf("a new session starts in %q, want the workdir %q", got, svc.spawner.Workdir())
	}
	list, err := c.ListSessions(ctx, connect.NewRequest(&hutchv1.ListSessionsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	cwds := map[string]string{}
	for _, s := range list.Msg.Sessions {
		cwds[s.Id] = s.Cwd
	}
	if len(cwds) != 3 || cwds["s1"] != "/tmp" || cwds["s2"] != svc.spawner.Workdir() || cwds["default"] == "" {
		t.Fatalf("sessions %v, want default, s1 in /tmp and s2 in the workdir", cwds)
	}

	const n = 8
	shells := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			res := agenttest.Exec(ctx, c, &hutchv1.ExecRequest{Session: "s3", Shell: "echo $$"}, nil)
			if res.Err != nil || res.Exit == nil || res.Exit.Code != 0 {
				t.Errorf("exec in s3: %v %v", res.Err, res.Exit)
			}
			shells <- res.Stdout.String()
		})
	}
	wg.Wait()
	close(shells)
	first := <-shells
	for sh := range shells {
		if sh != first {
			t.Fatalf("concurrent first execs ran in shells %q and %q, want one session", first, sh)
		}
	}
}
