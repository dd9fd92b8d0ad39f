package proc

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
)

// newSessionClient serves a Service as the agent does (Exec through the raw
// handler) and closes it, killing its shells, when the test ends.
func newSessionClient(t *testing.T) (*Service, hutchv1connect.ProcessServiceClient) {
	t.Helper()
	svc := New(slog.New(slog.DiscardHandler), reaper, os.Environ(), t.TempDir())
	path, h := hutchv1connect.NewProcessServiceHandler(svc)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	mux.Handle(hutchv1connect.ProcessServiceExecProcedure, svc.ExecHandler(h, 1<<20))
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
	res := execStream(context.Background(), c, &hutchv1.ExecRequest{Session: session, Shell: shell}, nil)
	if res.err != nil || res.exit == nil || res.exit.Code != 0 {
		t.Fatalf("session %s: %q: err %v exit %v stdout %q stderr %q", session, shell, res.err, res.exit, res.stdout.String(), res.stderr.String())
	}
	return res.stdout.String()
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
	res := execStream(context.Background(), c, &hutchv1.ExecRequest{Session: id, Argv: []string{"show", "a b", "$HOME", "*"}}, nil)
	if res.err != nil || res.stdout.String() != "<a b><$HOME><*>" {
		t.Fatalf("argv in session: err %v stdout %q", res.err, res.stdout.String())
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
	if got := inSession(t, c, "default", "pwd; cd /tmp"); got != svc.workdir+"\n" {
		t.Fatalf("default starts in %q, want the workdir %q", got, svc.workdir)
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
	if got := inSession(t, c, "default", "pwd"); got != svc.workdir+"\n" {
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
			res := execStream(context.Background(), c, tt.req, nil)
			if res.err != nil || res.exit == nil || res.exit.Code != tt.code {
				t.Fatalf("err %v exit %v, want code %d; stderr %q", res.err, res.exit, tt.code, res.stderr.String())
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
	outs := make([]*result, 4)
	for i := range outs {
		wg.Go(func() {
			// A builtin loop and an external command per line, so the shell
			// and its children both write.
			sh := fmt.Sprintf("i=0; while [ $i -lt 100 ]; do echo m%d; /bin/echo m%d; i=$((i+1)); done", i, i)
			outs[i] = execStream(context.Background(), c, &hutchv1.ExecRequest{Session: id, Shell: sh}, nil)
		})
	}
	wg.Wait()
	// Each exec's output holds only its own lines, all of them. (Event
	// arrival times are no guide: a session is free for the next exec as
	// soon as the command's status is in, while its Exit event is still on
	// the way.)
	for i, r := range outs {
		want := strings.Repeat(fmt.Sprintf("m%d\n", i), 200)
		if r.err != nil || r.exit == nil || r.exit.Code != 0 || r.stdout.String() != want {
			t.Fatalf("exec %d: err %v exit %v, stdout (%d bytes) is not 200 of its own lines: %q", i, r.err, r.exit, r.stdout.Len(), trunc(r.stdout.String()))
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
		res := execStream(ctx, c, &hutchv1.ExecRequest{Session: id, Shell: sh}, nil)
		cancel()
		if res.err != nil || res.exit == nil || time.Since(start) > 2*time.Second {
			t.Fatalf("%q: err %v exit %v after %v", sh, res.err, res.exit, time.Since(start))
		}
	}
	if got := inSession(t, c, id, "echo alive"); got != "alive\n" {
		t.Fatalf("after stdin readers: %q", got)
	}
	res := execStream(context.Background(), c, &hutchv1.ExecRequest{Session: id, Shell: "cat", Stdin: true}, nil)
	if connect.CodeOf(res.err) != connect.CodeInvalidArgument {
		t.Fatalf("stdin=true in a session: %v", res.err)
	}
}

func TestSessionStreamsLive(t *testing.T) {
	t.Parallel()
	_, c := newSessionClient(t)
	start := time.Now()
	var first, errFirst time.Duration
	res := execStream(context.Background(), c, &hutchv1.ExecRequest{Session: "default", Shell: "echo first; echo e >&2; sleep 1; echo second"}, func(r *result, ev *hutchv1.ExecEvent) {
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
	if res.err != nil || res.stdout.String() != "first\nsecond\n" || res.stderr.String() != "e\n" {
		t.Fatalf("err %v stdout %q stderr %q", res.err, res.stdout.String(), res.stderr.String())
	}
	if first > 500*time.Millisecond || errFirst > 500*time.Millisecond || total < time.Second {
		t.Fatalf("first stdout after %v, stderr after %v, end after %v: not live", first, errFirst, total)
	}
	if res.id == "" || res.pid == 0 {
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
	res := execStream(context.Background(), c, &hutchv1.ExecRequest{Session: id, Shell: "echo $$ ; sleep 30 & echo $!; wait", TimeoutMs: 300}, nil)
	if connect.CodeOf(res.err) != connect.CodeDeadlineExceeded || time.Since(start) > 3*time.Second {
		t.Fatalf("sleep 30 with a timeout: err %v after %v", res.err, time.Since(start))
	}
	pids := pidsOf(t, res.stdout.String())
	requireGone(t, pids[1:], time.Second)
	if !alive(pids[0]) {
		t.Fatal("the shell was killed with its command")
	}
	if got := inSession(t, c, id, "pwd; echo $KEPT"); got != dir+"\n1\n" {
		t.Fatalf("after timeout: %q", got)
	}

	// A builtin loop keeps the shell itself busy: the shell is restarted
	// in its cwd, and the error says the state is lost.
	start = time.Now()
	res = execStream(context.Background(), c, &hutchv1.ExecRequest{Session: id, Shell: "while :; do :; done", TimeoutMs: 200}, nil)
	if connect.CodeOf(res.err) != connect.CodeDeadlineExceeded || !strings.Contains(res.err.Error(), "lost") || time.Since(start) > 3*time.Second {
		t.Fatalf("builtin loop with a timeout: err %v after %v", res.err, time.Since(start))
	}
	if got := inSession(t, c, id, "pwd; echo ${KEPT-unset}"); got != dir+"\nunset\n" {
		t.Fatalf("after restart: %q", got)
	}

	// Cancelling the call kills the command the same way.
	ctx, cancel := context.WithCancel(context.Background())
	res = execStream(ctx, c, &hutchv1.ExecRequest{Session: id, Shell: "echo start; sleep 30 & echo $!; wait"}, func(r *result, ev *hutchv1.ExecEvent) {
		if strings.Count(r.stdout.String(), "\n") == 2 {
			cancel()
		}
	})
	cancel()
	if res.err == nil {
		t.Fatal("cancelled exec ended without error")
	}
	requireGone(t, pidsOf(t, strings.TrimPrefix(res.stdout.String(), "start\n")), time.Second)
	if got := inSession(t, c, id, "pwd"); got != dir+"\n" {
		t.Fatalf("after cancel: %q", got)
	}
}

func TestSessionExecEnvAndCwd(t *testing.T) {
	t.Parallel()
	_, c := newSessionClient(t)
	dir := t.TempDir()
	res := execStream(context.Background(), c, &hutchv1.ExecRequest{Session: "default", Shell: "echo $X; pwd", Cwd: dir, Env: map[string]string{"X": "it's"}}, nil)
	if res.err != nil || res.stdout.String() != "it's\n"+dir+"\n" {
		t.Fatalf("env and cwd: err %v stdout %q", res.err, res.stdout.String())
	}
	// env is for that command only; cd persists as if typed.
	if got := inSession(t, c, "default", "echo ${X-unset}; pwd"); got != "unset\n"+dir+"\n" {
		t.Fatalf("next exec: %q", got)
	}
	res = execStream(context.Background(), c, &hutchv1.ExecRequest{Session: "default", Shell: "true", Env: map[string]string{"A-B": "1"}}, nil)
	if connect.CodeOf(res.err) != connect.CodeInvalidArgument {
		t.Fatalf("bad env name: %v", res.err)
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
	if res := execStream(ctx, c, &hutchv1.ExecRequest{Shell: "echo $SB"}, nil); res.stdout.String() != "1\n" {
		t.Fatalf("plain exec: %q %v", res.stdout.String(), res.err)
	}
	if err := setEnv(&hutchv1.SetEnvRequest{Unset: []string{"SB"}}); err != nil {
		t.Fatal(err)
	}
	if got := inSession(t, c, createSession(t, c, &hutchv1.CreateSessionRequest{}).Id, "echo ${SB-unset}"); got != "unset\n" {
		t.Fatalf("new session after unset: %q", got)
	}

	errs := []struct {
		name string
		req  *hutchv1.SetEnvRequest
		code connect.Code
	}{
		{"bad name", &hutchv1.SetEnvRequest{Set: map[string]string{"1X": "v"}}, connect.CodeInvalidArgument},
		{"bad unset name", &hutchv1.SetEnvRequest{Session: old, Unset: []string{"A B"}}, connect.CodeInvalidArgument},
		{"set and unset", &hutchv1.SetEnvRequest{Set: map[string]string{"X": "v"}, Unset: []string{"X"}}, connect.CodeInvalidArgument},
		{"unknown session", &hutchv1.SetEnvRequest{Session: "nope", Set: map[string]string{"X": "v"}}, connect.CodeNotFound},
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
	execStream(context.Background(), c, &hutchv1.ExecRequest{Session: "default", Shell: "exit 1"}, nil)
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
	pids := pidsOf(t, out)

	// A running exec ends when its session is deleted.
	done := make(chan *result)
	go func() { done <- execStream(ctx, c, &hutchv1.ExecRequest{Session: id, Shell: "sleep 100"}, nil) }()
	time.Sleep(100 * time.Millisecond)
	if _, err := c.DeleteSession(ctx, connect.NewRequest(&hutchv1.DeleteSessionRequest{Id: id})); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.exit == nil && r.err == nil {
			t.Fatalf("exec in a deleted session: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("exec in a deleted session did not end")
	}
	requireGone(t, pids, time.Second)
	res := execStream(ctx, c, &hutchv1.ExecRequest{Session: id, Shell: "true"}, nil)
	if connect.CodeOf(res.err) != connect.CodeNotFound {
		t.Fatalf("exec after delete: %v", res.err)
	}
	if _, err := c.DeleteSession(ctx, connect.NewRequest(&hutchv1.DeleteSessionRequest{Id: id})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("delete twice: %v", err)
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
	if !validID.MatchString(gen.Id) {
		t.Errorf("generated id %q", gen.Id)
	}
	for _, id := range []string{"a/b", "nope"} {
		res := execStream(ctx, c, &hutchv1.ExecRequest{Session: id, Shell: "true"}, nil)
		want := connect.CodeNotFound
		if id == "a/b" {
			want = connect.CodeInvalidArgument
		}
		if connect.CodeOf(res.err) != want {
			t.Errorf("exec in %q: %v, want %v", id, res.err, want)
		}
	}
	list, err := c.ListSessions(ctx, connect.NewRequest(&hutchv1.ListSessionsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range list.Msg.Sessions {
		ids = append(ids, s.Id)
	}
	if !sortedStrings(ids) || len(ids) != 4 {
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
		pids = append(pids, pidsOf(t, inSession(t, c, s, "echo $$; sleep 100 >/dev/null 2>&1 & echo $!"))...)
	}
	svc.Close()
	requireGone(t, pids, time.Second)
	res := execStream(context.Background(), c, &hutchv1.ExecRequest{Session: "default", Shell: "true"}, nil)
	if connect.CodeOf(res.err) != connect.CodeNotFound {
		t.Fatalf("exec after Close: %v", res.err)
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
	res := execStream(context.Background(), c, &hutchv1.ExecRequest{Session: id, Shell: "echo 'unterminated"}, nil)
	if res.err != nil || res.exit == nil || res.exit.Code == 0 {
		t.Fatalf("syntax error: err %v exit %v", res.err, res.exit)
	}
	res = execStream(context.Background(), c, &hutchv1.ExecRequest{Session: id, Shell: "echo $Y", Env: map[string]string{"Y": "scoped"}}, nil)
	if res.stdout.String() != "scoped\n" {
		t.Fatalf("env: %q %v", res.stdout.String(), res.err)
	}
	if got := inSession(t, c, id, "f; pwd; echo ${Y-unset}"); got != "fn 1\n"+dir+"\nunset\n" {
		t.Fatalf("state: %q", got)
	}
}
