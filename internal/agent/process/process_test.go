package process

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agent/agenttest"
	"github.com/hutch-sh/hutch/internal/agent/exec"
	"github.com/hutch-sh/hutch/internal/agent/registry"
	"github.com/hutch-sh/hutch/internal/agent/spawn"
	"github.com/hutch-sh/hutch/internal/testutil"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

// handler serves the background-process calls; the rest of the
// ProcessService is unimplemented here.
type handler struct {
	*Service
	agenttest.Unimplemented
}

// newBg serves a Service in-process; tune (if set) adjusts its limits
// first. Cleanup kills what the test left running.
func newBg(t *testing.T, tune func(*limits)) (*Service, hutchv1connect.ProcessServiceClient) {
	t.Helper()
	l := limits{ringSize: defaultRingSize, maxEnded: defaultMaxEnded, keepAlive: spawn.KeepAliveInterval}
	if tune != nil {
		tune(&l)
	}
	svc := newService(slog.New(slog.DiscardHandler), agenttest.Spawner(t, nil), exec.NewTable(), l)
	path, h := hutchv1connect.NewProcessServiceHandler(handler{Service: svc})
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(svc.Close) // runs first: ends follow streams before the server waits for them
	return svc, hutchv1connect.NewProcessServiceClient(srv.Client(), srv.URL)
}

func startBg(t *testing.T, c hutchv1connect.ProcessServiceClient, req *hutchv1.StartProcessRequest) *hutchv1.ProcessInfo {
	t.Helper()
	res, err := c.StartProcess(context.Background(), connect.NewRequest(req))
	if err != nil {
		t.Fatalf("StartProcess(%v): %v", req, err)
	}
	return res.Msg
}

func waitBg(t *testing.T, c hutchv1connect.ProcessServiceClient, req *hutchv1.WaitProcessRequest) (*hutchv1.WaitProcessResponse, error) {
	t.Helper()
	res, err := c.WaitProcess(context.Background(), connect.NewRequest(req))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

func waitEnd(t *testing.T, c hutchv1connect.ProcessServiceClient, id string) *hutchv1.ProcessInfo {
	t.Helper()
	res, err := waitBg(t, c, &hutchv1.WaitProcessRequest{Id: id, Condition: &hutchv1.WaitProcessRequest_Exit{Exit: true}, TimeoutMs: 20000})
	if err != nil {
		t.Fatalf("wait for %q to exit: %v", id, err)
	}
	return res.Process
}

// logResult is everything one ProcessLogs stream delivered.
type logResult struct {
	stdout, stderr bytes.Buffer
	chunks         []*hutchv1.LogChunk // stdout and stderr, in order
	exit           *hutchv1.ProcessInfo
	keepalives     int
	err            error
}

// readLogs collects a log stream; onEvent (if set) sees each event as it
// arrives and may return false to stop reading.
func readLogs(ctx context.Context, c hutchv1connect.ProcessServiceClient, req *hutchv1.ProcessLogsRequest, onEvent func(*logResult, *hutchv1.ProcessLogEvent) bool) *logResult {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &logResult{}
	s, err := c.ProcessLogs(ctx, connect.NewRequest(req))
	if err != nil {
		r.err = err
		return r
	}
	defer s.Close()
	for s.Receive() {
		ev := s.Msg()
		switch e := ev.Event.(type) {
		case *hutchv1.ProcessLogEvent_Stdout:
			r.stdout.Write(e.Stdout.Data)
			r.chunks = append(r.chunks, e.Stdout)
		case *hutchv1.ProcessLogEvent_Stderr:
			r.stderr.Write(e.Stderr.Data)
			r.chunks = append(r.chunks, e.Stderr)
		case *hutchv1.ProcessLogEvent_Exit:
			r.exit = e.Exit
		case *hutchv1.ProcessLogEvent_Keepalive:
			r.keepalives++
		}
		if onEvent != nil && !onEvent(r, ev) {
			return r
		}
	}
	r.err = s.Err()
	return r
}

func TestStartProcess(t *testing.T) {
	t.Parallel()
	_, c := newBg(t, nil)
	tests := []struct {
		name       string
		req        *hutchv1.StartProcessRequest
		wantArgv   []string
		wantCwd    string
		wantStdout string
		wantCode   int32
	}{
		{"argv", &hutchv1.StartProcessRequest{Argv: []string{"echo", "a b", "$HOME"}}, []string{"echo", "a b", "$HOME"}, "", "a b $HOME\n", 0},
		{"shell", &hutchv1.StartProcessRequest{Shell: "echo $((6*7)); exit 5"}, []string{"/bin/sh", "-c", "echo $((6*7)); exit 5"}, "", "42\n", 5},
		{"cwd and env", &hutchv1.StartProcessRequest{Shell: `pwd; echo "$X"`, Cwd: "/tmp", Env: map[string]string{"X": "y z"}}, nil, "/tmp", "/tmp\ny z\n", 0},
		{"stdin is /dev/null", &hutchv1.StartProcessRequest{Argv: []string{"cat"}}, []string{"cat"}, "", "", 0},
		{"hostname set", &hutchv1.StartProcessRequest{Shell: `test -n "$HOSTNAME" && echo ok`}, nil, "", "ok\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pi := startBg(t, c, tt.req)
			if pi.Id == "" || pi.Pid <= 0 || pi.Status != hutchv1.ProcessStatus_PROCESS_STATUS_RUNNING || pi.StartedAt == nil {
				t.Errorf("started: %v, want an id, a pid, RUNNING and a start time", pi)
			}
			if tt.wantArgv != nil && strings.Join(pi.Argv, "\x00") != strings.Join(tt.wantArgv, "\x00") {
				t.Errorf("argv = %q, want %q", pi.Argv, tt.wantArgv)
			}
			if tt.wantCwd != "" && pi.Cwd != tt.wantCwd {
				t.Errorf("cwd = %q, want %q", pi.Cwd, tt.wantCwd)
			}
			end := waitEnd(t, c, pi.Id)
			if end.Status != hutchv1.ProcessStatus_PROCESS_STATUS_EXITED || end.ExitCode != tt.wantCode || end.EndedAt == nil {
				t.Errorf("ended: %v, want EXITED with code %d", end, tt.wantCode)
			}
			r := readLogs(context.Background(), c, &hutchv1.ProcessLogsRequest{Id: pi.Id}, nil)
			if r.err != nil || r.stdout.String() != tt.wantStdout {
				t.Errorf("logs: stdout %q err %v, want %q", r.stdout.String(), r.err, tt.wantStdout)
			}
		})
	}
}

func TestStartProcessErrors(t *testing.T) {
	t.Parallel()
	_, c := newBg(t, nil)
	tests := []struct {
		name     string
		req      *hutchv1.StartProcessRequest
		wantCode connect.Code
		wantMsg  string
	}{
		{"missing binary", &hutchv1.StartProcessRequest{Argv: []string{"no-such-binary-xyz"}}, connect.CodeNotFound, "no-such-binary-xyz"},
		{"missing cwd", &hutchv1.StartProcessRequest{Argv: []string{"true"}, Cwd: "/no/such/dir"}, connect.CodeNotFound, "/no/such/dir"},
		{"empty", &hutchv1.StartProcessRequest{}, connect.CodeInvalidArgument, "empty"},
		{"argv and shell", &hutchv1.StartProcessRequest{Argv: []string{"true"}, Shell: "true"}, connect.CodeInvalidArgument, "not both"},
		{"NUL in argv", &hutchv1.StartProcessRequest{Argv: []string{"echo", "a\x00b"}}, connect.CodeInvalidArgument, "NUL"},
		{"id with a slash", &hutchv1.StartProcessRequest{Id: "a/b", Argv: []string{"true"}}, connect.CodeInvalidArgument, "a/b"},
		{"id with a space", &hutchv1.StartProcessRequest{Id: "a b", Argv: []string{"true"}}, connect.CodeInvalidArgument, "a b"},
		{"id too long", &hutchv1.StartProcessRequest{Id: strings.Repeat("x", 65), Argv: []string{"true"}}, connect.CodeInvalidArgument, "1-64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.StartProcess(context.Background(), connect.NewRequest(tt.req))
			if connect.CodeOf(err) != tt.wantCode {
				t.Fatalf("err = %v, want %v", err, tt.wantCode)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
		})
	}
}

func TestProcessIDs(t *testing.T) {
	t.Parallel()
	_, c := newBg(t, nil)
	ctx := context.Background()
	long := strings.Repeat("a", 64)
	pi := startBg(t, c, &hutchv1.StartProcessRequest{Id: "web.server_1-x", Argv: []string{"sleep", "100"}})
	if pi.Id != "web.server_1-x" {
		t.Errorf("id = %q, want the requested one", pi.Id)
	}
	if got := startBg(t, c, &hutchv1.StartProcessRequest{Id: long, Argv: []string{"true"}}); got.Id != long {
		t.Errorf("64-character id = %q", got.Id)
	}
	_, err := c.StartProcess(ctx, connect.NewRequest(&hutchv1.StartProcessRequest{Id: "web.server_1-x", Argv: []string{"true"}}))
	if connect.CodeOf(err) != connect.CodeAlreadyExists || !strings.Contains(err.Error(), "web.server_1-x") {
		t.Fatalf("duplicate running id: %v, want already_exists naming the id", err)
	}
	if _, err := c.KillProcess(ctx, connect.NewRequest(&hutchv1.KillProcessRequest{Id: pi.Id})); err != nil {
		t.Fatalf("kill: %v", err)
	}
	// An ended process's id can be reused; the new process replaces it.
	again := startBg(t, c, &hutchv1.StartProcessRequest{Id: "web.server_1-x", Shell: "echo second"})
	if again.Pid == pi.Pid {
		t.Errorf("reused id kept the old pid %d", pi.Pid)
	}
	waitEnd(t, c, again.Id)
	r := readLogs(ctx, c, &hutchv1.ProcessLogsRequest{Id: again.Id}, nil)
	if r.stdout.String() != "second\n" || r.exit == nil || r.exit.Pid != again.Pid {
		t.Errorf("logs of the replacement: %q exit %v", r.stdout.String(), r.exit)
	}
	// Generated ids are distinct.
	a := startBg(t, c, &hutchv1.StartProcessRequest{Argv: []string{"true"}})
	b := startBg(t, c, &hutchv1.StartProcessRequest{Argv: []string{"true"}})
	if a.Id == b.Id || registry.CheckID("process", a.Id) != nil {
		t.Errorf("generated ids %q and %q", a.Id, b.Id)
	}
}

func TestListAndGetProcess(t *testing.T) {
	t.Parallel()
	_, c := newBg(t, nil)
	ctx := context.Background()
	run := startBg(t, c, &hutchv1.StartProcessRequest{Id: "runs", Argv: []string{"sleep", "100"}})
	done := startBg(t, c, &hutchv1.StartProcessRequest{Id: "done", Shell: "exit 2"})
	waitEnd(t, c, done.Id)

	list, err := c.ListProcesses(ctx, connect.NewRequest(&hutchv1.ListProcessesRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]hutchv1.ProcessStatus{}
	for _, p := range list.Msg.Processes {
		got[p.Id] = p.Status
	}
	if len(got) != 2 || got["runs"] != hutchv1.ProcessStatus_PROCESS_STATUS_RUNNING || got["done"] != hutchv1.ProcessStatus_PROCESS_STATUS_EXITED {
		t.Errorf("list = %v, want runs RUNNING and done EXITED", got)
	}

	tests := []struct {
		id         string
		wantCode   connect.Code
		wantStatus hutchv1.ProcessStatus
		wantPid    int32
	}{
		{"runs", 0, hutchv1.ProcessStatus_PROCESS_STATUS_RUNNING, run.Pid},
		{"done", 0, hutchv1.ProcessStatus_PROCESS_STATUS_EXITED, done.Pid},
		{"nope", connect.CodeNotFound, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			res, err := c.GetProcess(ctx, connect.NewRequest(&hutchv1.ProcessRef{Id: tt.id}))
			if tt.wantCode != 0 {
				if connect.CodeOf(err) != tt.wantCode || !strings.Contains(err.Error(), tt.id) {
					t.Fatalf("get %q: %v, want %v naming the id", tt.id, err, tt.wantCode)
				}
				return
			}
			if err != nil || res.Msg.Status != tt.wantStatus || res.Msg.Pid != tt.wantPid {
				t.Fatalf("get %q: %v %v, want status %v pid %d", tt.id, res, err, tt.wantStatus, tt.wantPid)
			}
		})
	}
}

// Only the newest ended processes stay listed.
func TestEndedProcessesCapped(t *testing.T) {
	t.Parallel()
	_, c := newBg(t, func(r *limits) { r.maxEnded = 3 })
	ctx := context.Background()
	startBg(t, c, &hutchv1.StartProcessRequest{Id: "long", Argv: []string{"sleep", "100"}})
	for i := range 6 {
		id := fmt.Sprintf("p%d", i)
		startBg(t, c, &hutchv1.StartProcessRequest{Id: id, Argv: []string{"true"}})
		waitEnd(t, c, id)
	}
	list, err := c.ListProcesses(ctx, connect.NewRequest(&hutchv1.ListProcessesRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range list.Msg.Processes {
		ids = append(ids, p.Id)
	}
	if got, want := strings.Join(ids, ","), "long,p3,p4,p5"; got != want {
		t.Errorf("listed %s, want %s", got, want)
	}
}

func TestProcessLogsEnded(t *testing.T) {
	t.Parallel()
	_, c := newBg(t, nil)
	pi := startBg(t, c, &hutchv1.StartProcessRequest{Shell: `printf 'one\ntwo\nthree'; printf 'e1\ne2\n' >&2; exit 3`})
	waitEnd(t, c, pi.Id)
	tests := []struct {
		name       string
		req        *hutchv1.ProcessLogsRequest
		wantStdout string
		wantStderr string
		wantFirst  int64 // offset of the first stdout chunk
	}{
		{"everything", &hutchv1.ProcessLogsRequest{}, "one\ntwo\nthree", "e1\ne2\n", 0},
		{"from offsets", &hutchv1.ProcessLogsRequest{StdoutOffset: 4, StderrOffset: 3}, "two\nthree", "e2\n", 4},
		{"offsets at the end", &hutchv1.ProcessLogsRequest{StdoutOffset: 13, StderrOffset: 6}, "", "", -1},
		{"offsets past the end", &hutchv1.ProcessLogsRequest{StdoutOffset: 1000, StderrOffset: 1000}, "", "", -1},
		{"from now", &hutchv1.ProcessLogsRequest{FromNow: true}, "", "", -1},
		{"follow", &hutchv1.ProcessLogsRequest{Follow: true, StdoutOffset: 8}, "three", "e1\ne2\n", 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.req.Id = pi.Id
			r := readLogs(context.Background(), c, tt.req, nil)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.stdout.String() != tt.wantStdout || r.stderr.String() != tt.wantStderr {
				t.Errorf("stdout %q stderr %q, want %q %q", r.stdout.String(), r.stderr.String(), tt.wantStdout, tt.wantStderr)
			}
			first := int64(-1)
			for _, ch := range r.chunks {
				if ch.Truncated {
					t.Errorf("chunk at %d marked truncated", ch.Offset)
				}
			}
			if len(r.chunks) > 0 && r.stdout.Len() > 0 {
				first = r.chunks[0].Offset
			}
			if first != tt.wantFirst {
				t.Errorf("first stdout chunk at %d, want %d", first, tt.wantFirst)
			}
			if r.exit == nil || r.exit.Status != hutchv1.ProcessStatus_PROCESS_STATUS_EXITED || r.exit.ExitCode != 3 {
				t.Errorf("exit event %v, want EXITED with code 3", r.exit)
			}
		})
	}
	t.Run("unknown id", func(t *testing.T) {
		r := readLogs(context.Background(), c, &hutchv1.ProcessLogsRequest{Id: "nope"}, nil)
		if connect.CodeOf(r.err) != connect.CodeNotFound {
			t.Errorf("err = %v, want not_found", r.err)
		}
	})
	t.Run("negative offset", func(t *testing.T) {
		r := readLogs(context.Background(), c, &hutchv1.ProcessLogsRequest{Id: pi.Id, StdoutOffset: -1}, nil)
		if connect.CodeOf(r.err) != connect.CodeInvalidArgument {
			t.Errorf("err = %v, want invalid_argument", r.err)
		}
	})
}

const ticker = `for i in 1 2 3 4 5 6 7 8; do echo line$i; sleep 0.1; done`

func TestProcessLogsFollow(t *testing.T) {
	t.Parallel()
	_, c := newBg(t, nil)
	ctx := context.Background()
	pi := startBg(t, c, &hutchv1.StartProcessRequest{Shell: ticker})
	var firstWhileRunning bool
	r := readLogs(ctx, c, &hutchv1.ProcessLogsRequest{Id: pi.Id, Follow: true}, func(r *logResult, ev *hutchv1.ProcessLogEvent) bool {
		if _, ok := ev.Event.(*hutchv1.ProcessLogEvent_Stdout); ok && len(r.chunks) == 1 {
			g, err := c.GetProcess(ctx, connect.NewRequest(&hutchv1.ProcessRef{Id: pi.Id}))
			firstWhileRunning = err == nil && g.Msg.Status == hutchv1.ProcessStatus_PROCESS_STATUS_RUNNING
		}
		return true
	})
	if r.err != nil || r.exit == nil {
		t.Fatalf("follow: err %v exit %v", r.err, r.exit)
	}
	if !firstWhileRunning {
		t.Error("the first line did not arrive while the process was running")
	}
	if len(r.chunks) < 4 {
		t.Errorf("got %d chunks, want the lines to arrive live one by one", len(r.chunks))
	}
	if want := "line1\nline2\nline3\nline4\nline5\nline6\nline7\nline8\n"; r.stdout.String() != want {
		t.Errorf("stdout %q, want %q", r.stdout.String(), want)
	}
}

// Reading part of the output, then following from the offsets reached,
// gives every byte exactly once.
func TestProcessLogsResume(t *testing.T) {
	t.Parallel()
	_, c := newBg(t, nil)
	ctx := context.Background()
	pi := startBg(t, c, &hutchv1.StartProcessRequest{Shell: `for i in 1 2 3 4 5 6; do echo out$i; echo err$i >&2; sleep 0.1; done`})
	if _, err := waitBg(t, c, &hutchv1.WaitProcessRequest{Id: pi.Id, Condition: &hutchv1.WaitProcessRequest_Log{Log: "^out2$"}, TimeoutMs: 10000}); err != nil {
		t.Fatal(err)
	}
	first := readLogs(ctx, c, &hutchv1.ProcessLogsRequest{Id: pi.Id}, nil)
	if first.err != nil || first.exit != nil || first.stdout.Len() == 0 {
		t.Fatalf("first read: stdout %q exit %v err %v; want output and no exit event yet", first.stdout.String(), first.exit, first.err)
	}
	rest := readLogs(ctx, c, &hutchv1.ProcessLogsRequest{Id: pi.Id, Follow: true, StdoutOffset: int64(first.stdout.Len()), StderrOffset: int64(first.stderr.Len())}, nil)
	if rest.err != nil || rest.exit == nil {
		t.Fatalf("follow: %v %v", rest.err, rest.exit)
	}
	if len(rest.chunks) > 0 && rest.chunks[0].Offset != int64(first.stdout.Len()) && rest.chunks[0].Offset != int64(first.stderr.Len()) {
		t.Errorf("resumed chunk at offset %d", rest.chunks[0].Offset)
	}
	if got, want := first.stdout.String()+rest.stdout.String(), "out1\nout2\nout3\nout4\nout5\nout6\n"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	if got, want := first.stderr.String()+rest.stderr.String(), "err1\nerr2\nerr3\nerr4\nerr5\nerr6\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}

func TestProcessLogsKeepAlive(t *testing.T) {
	t.Parallel()
	_, c := newBg(t, func(r *limits) { r.keepAlive = 50 * time.Millisecond })
	pi := startBg(t, c, &hutchv1.StartProcessRequest{Argv: []string{"sleep", "100"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := readLogs(ctx, c, &hutchv1.ProcessLogsRequest{Id: pi.Id, Follow: true}, func(r *logResult, _ *hutchv1.ProcessLogEvent) bool {
		return r.keepalives < 2
	})
	if r.keepalives < 2 {
		t.Errorf("got %d keep-alives (err %v), want 2", r.keepalives, r.err)
	}
}

// A small ring keeps only the newest output; a reader from offset 0 learns
// that the rest was dropped.
func TestProcessLogsTruncated(t *testing.T) {
	t.Parallel()
	const size = 4096
	svc, c := newBg(t, func(r *limits) { r.ringSize = size })
	ctx := context.Background()
	// 20000 lines of "%05d\n": 120000 bytes.
	pi := startBg(t, c, &hutchv1.StartProcessRequest{Shell: `i=0; while [ $i -lt 20000 ]; do printf '%05d\n' $i; i=$((i+1)); done; echo done >&2`})
	waitEnd(t, c, pi.Id)
	tests := []struct {
		name      string
		offset    int64
		wantAt    int64
		wantTrunc bool
	}{
		{"from the start", 0, 120000 - size, true},
		{"from a dropped offset", 50000, 120000 - size, true},
		{"from a kept offset", 120000 - 600, 120000 - 600, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := readLogs(ctx, c, &hutchv1.ProcessLogsRequest{Id: pi.Id, StdoutOffset: tt.offset}, nil)
			if r.err != nil || r.exit == nil || len(r.chunks) == 0 {
				t.Fatalf("logs: %v exit %v chunks %d", r.err, r.exit, len(r.chunks))
			}
			ch := r.chunks[0]
			if ch.Offset != tt.wantAt || ch.Truncated != tt.wantTrunc {
				t.Errorf("first chunk at %d truncated %v, want %d %v", ch.Offset, ch.Truncated, tt.wantAt, tt.wantTrunc)
			}
			if want := int(120000 - tt.wantAt); r.stdout.Len() != want || !strings.HasSuffix(r.stdout.String(), "19999\n") {
				t.Errorf("got %d bytes ending %q, want the last %d", r.stdout.Len(), r.stdout.String()[max(0, r.stdout.Len()-6):], want)
			}
			if r.stderr.String() != "done\n" {
				t.Errorf("stderr %q", r.stderr.String())
			}
		})
	}
	p, err := svc.procs.Get(pi.Id)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stdout.Allocated() > size || p.stdout.End() != 120000 {
		t.Errorf("stdout ring holds %d bytes of capacity for %d written; want at most %d", p.stdout.Allocated(), p.stdout.End(), size)
	}
}

// deepTree prints four pids: of the shell, of a background sleep, of a
// child shell and of that child's setsid child (a grandchild in its own
// session), in no fixed order.
const deepTree = `sh -c 'setsid sh -c "echo \$\$; exec sleep 100" & echo $$; sleep 100' & echo $$; sleep 100 & echo $!; wait`

// pidsPrinted waits until process id has printed n lines of pids.
func pidsPrinted(t *testing.T, c hutchv1connect.ProcessServiceClient, id string, n int) []int {
	t.Helper()
	var out string
	testutil.Eventually(t, 10*time.Second, func() error {
		out = readLogs(context.Background(), c, &hutchv1.ProcessLogsRequest{Id: id}, nil).stdout.String()
		if strings.Count(out, "\n") < n {
			return fmt.Errorf("process printed %q, want %d pids", out, n)
		}
		return nil
	})
	return agenttest.PidsOf(t, out)
}

func TestKillProcess(t *testing.T) {
	t.Parallel()
	_, c := newBg(t, nil)
	tests := []struct {
		name       string
		shell      string
		pids       int // lines of pids the script prints
		req        *hutchv1.KillProcessRequest
		wantSignal string
		minTook    time.Duration
	}{
		{"default SIGTERM kills the tree", deepTree, 4, &hutchv1.KillProcessRequest{}, "SIGTERM", 0},
		{"trapped TERM gets SIGKILL after the grace", `trap 'echo 0' TERM; echo $$; while :; do sleep 0.05; done`, 1, &hutchv1.KillProcessRequest{GraceMs: 200}, "SIGKILL", 200 * time.Millisecond},
		{"child ignoring TERM gets SIGKILL after the grace", `sh -c 'trap "" TERM; echo $$; while :; do sleep 0.05; done' & wait`, 1, &hutchv1.KillProcessRequest{GraceMs: 200}, "SIGTERM", 200 * time.Millisecond},
		{"SIGINT", `echo $$; exec sleep 100`, 1, &hutchv1.KillProcessRequest{Signal: "INT"}, "SIGINT", 0},
		{"SIGKILL", deepTree, 4, &hutchv1.KillProcessRequest{Signal: "KILL"}, "SIGKILL", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pi := startBg(t, c, &hutchv1.StartProcessRequest{Shell: tt.shell})
			pids := pidsPrinted(t, c, pi.Id, tt.pids)
			tt.req.Id = pi.Id
			start := time.Now()
			res, err := c.KillProcess(ctx, connect.NewRequest(tt.req))
			took := time.Since(start)
			if err != nil {
				t.Fatalf("kill: %v", err)
			}
			if res.Msg.Status != hutchv1.ProcessStatus_PROCESS_STATUS_KILLED || res.Msg.Signal != tt.wantSignal {
				t.Errorf("ended %v, want KILLED by %s", res.Msg, tt.wantSignal)
			}
			if maxTook := tt.minTook + 3*time.Second; took < tt.minTook || took > maxTook {
				t.Errorf("kill took %v, want %v-%v", took, tt.minTook, maxTook)
			}
			// Kill returns once the tree is gone.
			agenttest.RequireGone(t, append(pids, int(pi.Pid)), 100*time.Millisecond)
			// Killing an ended process reports it again.
			again, err := c.KillProcess(ctx, connect.NewRequest(&hutchv1.KillProcessRequest{Id: pi.Id}))
			if err != nil || again.Msg.Status != res.Msg.Status || again.Msg.Signal != res.Msg.Signal {
				t.Errorf("second kill: %v %v", again, err)
			}
		})
	}
	t.Run("unknown id", func(t *testing.T) {
		_, err := c.KillProcess(context.Background(), connect.NewRequest(&hutchv1.KillProcessRequest{Id: "nope"}))
		if connect.CodeOf(err) != connect.CodeNotFound || !strings.Contains(err.Error(), "nope") {
			t.Errorf("err = %v, want not_found naming the id", err)
		}
	})
	t.Run("bad signal", func(t *testing.T) {
		_, err := c.KillProcess(context.Background(), connect.NewRequest(&hutchv1.KillProcessRequest{Id: "nope", Signal: "SIGFOO"}))
		if connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("err = %v, want invalid_argument", err)
		}
	})
}

func TestKillAllProcesses(t *testing.T) {
	t.Parallel()
	_, c := newBg(t, nil)
	ctx := context.Background()
	var pids []int
	for range 3 {
		pids = append(pids, int(startBg(t, c, &hutchv1.StartProcessRequest{Argv: []string{"sleep", "100"}}).Pid))
	}
	waitEnd(t, c, startBg(t, c, &hutchv1.StartProcessRequest{Argv: []string{"true"}}).Id)
	res, err := c.KillAllProcesses(ctx, connect.NewRequest(&hutchv1.KillAllProcessesRequest{}))
	if err != nil || res.Msg.Killed != 3 {
		t.Fatalf("kill all: %v %v, want 3 killed", res, err)
	}
	agenttest.RequireGone(t, pids, 100*time.Millisecond)
	list, err := c.ListProcesses(ctx, connect.NewRequest(&hutchv1.ListProcessesRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Msg.Processes {
		if p.Status == hutchv1.ProcessStatus_PROCESS_STATUS_RUNNING {
			t.Errorf("%s still running", p.Id)
		}
	}
	res, err = c.KillAllProcesses(ctx, connect.NewRequest(&hutchv1.KillAllProcessesRequest{}))
	if err != nil || res.Msg.Killed != 0 {
		t.Errorf("second kill all: %v %v, want 0", res, err)
	}
}

// Close leaves nothing the Service started behind.
func TestCloseKillsProcesses(t *testing.T) {
	t.Parallel()
	svc, c := newBg(t, nil)
	pi := startBg(t, c, &hutchv1.StartProcessRequest{Shell: deepTree})
	pids := pidsPrinted(t, c, pi.Id, 4)
	svc.Close()
	agenttest.RequireGone(t, append(pids, int(pi.Pid)), time.Second)
}

func TestWaitProcessLog(t *testing.T) {
	t.Parallel()
	_, c := newBg(t, nil)
	printed := startBg(t, c, &hutchv1.StartProcessRequest{Shell: `echo 'ready on :8080'; echo 'warn: x' >&2; sleep 100`})
	waitEnd(t, c, startBg(t, c, &hutchv1.StartProcessRequest{Id: "unterminated", Shell: `echo first; printf 'last words'`}).Id)
	// Let the first one print before waiting on it.
	testutil.Eventually(t, 10*time.Second, func() error {
		r := readLogs(context.Background(), c, &hutchv1.ProcessLogsRequest{Id: printed.Id}, nil)
		if r.stdout.String() != "ready on :8080\n" || r.stderr.String() != "warn: x\n" {
			return fmt.Errorf("printed %q and %q so far", r.stdout.String(), r.stderr.String())
		}
		return nil
	})
	tests := []struct {
		name     string
		shell    string // start this; else wait on id
		id       string
		pattern  string
		wantLine string
		minTook  time.Duration
	}{
		{"already printed", "", printed.Id, `ready on :\d+`, "ready on :8080", 0},
		{"already printed on stderr", "", printed.Id, `^warn`, "warn: x", 0},
		{"future line", `echo early; sleep 0.3; echo 'listening now'; sleep 100`, "", `listening`, "listening now", 250 * time.Millisecond},
		{"line split across writes", `printf 'hal'; sleep 0.2; printf 'f line\n'; sleep 100`, "", `^half line$`, "half line", 150 * time.Millisecond},
		{"CRLF line", `printf 'win\r\n'; sleep 100`, "", `^win$`, "win", 0},
		{"unterminated last line of an ended process", "", "unterminated", `words$`, "last words", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := tt.id
			if tt.shell != "" {
				id = startBg(t, c, &hutchv1.StartProcessRequest{Shell: tt.shell}).Id
			}
			start := time.Now()
			res, err := waitBg(t, c, &hutchv1.WaitProcessRequest{Id: id, Condition: &hutchv1.WaitProcessRequest_Log{Log: tt.pattern}, TimeoutMs: 10000})
			took := time.Since(start)
			if err != nil {
				t.Fatalf("wait: %v", err)
			}
			if res.Line != tt.wantLine || res.Process == nil || res.Process.Id != id {
				t.Errorf("line %q process %v, want %q", res.Line, res.Process, tt.wantLine)
			}
			if took < tt.minTook {
				t.Errorf("returned after %v, before the line was printed", took)
			}
		})
	}
}

func TestWaitProcessErrors(t *testing.T) {
	t.Parallel()
	_, c := newBg(t, nil)
	sleeper := startBg(t, c, &hutchv1.StartProcessRequest{Argv: []string{"sleep", "100"}}).Id
	tests := []struct {
		name     string
		shell    string // start this; else wait on sleeper
		req      *hutchv1.WaitProcessRequest
		wantCode connect.Code
		wantMsg  []string
		maxTook  time.Duration
	}{
		{"bad regexp", "", &hutchv1.WaitProcessRequest{Condition: &hutchv1.WaitProcessRequest_Log{Log: "a("}}, connect.CodeInvalidArgument, []string{"pattern"}, time.Second},
		{"no condition", "", &hutchv1.WaitProcessRequest{}, connect.CodeInvalidArgument, []string{"log, port or exit"}, time.Second},
		{"port 0", "", &hutchv1.WaitProcessRequest{Condition: &hutchv1.WaitProcessRequest_Port{Port: &hutchv1.PortCondition{}}}, connect.CodeInvalidArgument, []string{"1-65535"}, time.Second},
		{"port too big", "", &hutchv1.WaitProcessRequest{Condition: &hutchv1.WaitProcessRequest_Port{Port: &hutchv1.PortCondition{Port: 65536}}}, connect.CodeInvalidArgument, []string{"65536"}, time.Second},
		{"bad mode", "", &hutchv1.WaitProcessRequest{Condition: &hutchv1.WaitProcessRequest_Port{Port: &hutchv1.PortCondition{Port: 80, Mode: "udp"}}}, connect.CodeInvalidArgument, []string{"udp"}, time.Second},
		{"unknown id", "", &hutchv1.WaitProcessRequest{Id: "nope", Condition: &hutchv1.WaitProcessRequest_Exit{Exit: true}}, connect.CodeNotFound, []string{"nope"}, time.Second},
		{"log timeout", "", &hutchv1.WaitProcessRequest{Condition: &hutchv1.WaitProcessRequest_Log{Log: "never"}, TimeoutMs: 300}, connect.CodeDeadlineExceeded, []string{"never", "300ms"}, 2 * time.Second},
		{"exit timeout", "", &hutchv1.WaitProcessRequest{Condition: &hutchv1.WaitProcessRequest_Exit{Exit: true}, TimeoutMs: 300}, connect.CodeDeadlineExceeded, []string{"exit"}, 2 * time.Second},
		{"ended before the log line", `echo starting; echo 'fatal: no config' >&2; exit 4`, &hutchv1.WaitProcessRequest{Condition: &hutchv1.WaitProcessRequest_Log{Log: "ready"}, TimeoutMs: 30000}, connect.CodeFailedPrecondition, []string{"code 4", "fatal: no config", "starting"}, 3 * time.Second},
		{"ended before the port", `echo 'cannot bind' >&2; exit 7`, &hutchv1.WaitProcessRequest{Condition: &hutchv1.WaitProcessRequest_Port{Port: &hutchv1.PortCondition{Port: freePort(t)}}, TimeoutMs: 30000}, connect.CodeFailedPrecondition, []string{"code 7", "cannot bind"}, 3 * time.Second},
		{"killed before the log line", `kill -9 $$`, &hutchv1.WaitProcessRequest{Condition: &hutchv1.WaitProcessRequest_Log{Log: "ready"}, TimeoutMs: 30000}, connect.CodeFailedPrecondition, []string{"SIGKILL", "137"}, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.req.Id == "" {
				tt.req.Id = sleeper
			}
			if tt.shell != "" {
				tt.req.Id = startBg(t, c, &hutchv1.StartProcessRequest{Shell: tt.shell}).Id
			}
			start := time.Now()
			_, err := waitBg(t, c, tt.req)
			took := time.Since(start)
			if connect.CodeOf(err) != tt.wantCode {
				t.Fatalf("err = %v, want %v", err, tt.wantCode)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			if took > tt.maxTook {
				t.Errorf("took %v, want under %v", took, tt.maxTook)
			}
		})
	}
}

// freePort returns a local TCP port nothing listens on (most likely).
func freePort(t *testing.T) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

func TestWaitProcessPort(t *testing.T) {
	t.Parallel()
	_, c := newBg(t, nil)
	port := freePort(t)
	// The server starts listening a moment after the wait begins.
	srv := startBg(t, c, &hutchv1.StartProcessRequest{Shell: fmt.Sprintf("sleep 0.3; exec python3 -m http.server %d --bind 127.0.0.1", port), Cwd: t.TempDir()})
	start := time.Now()
	res, err := waitBg(t, c, &hutchv1.WaitProcessRequest{Id: srv.Id, Condition: &hutchv1.WaitProcessRequest_Port{Port: &hutchv1.PortCondition{Port: port}}, TimeoutMs: 20000})
	if err != nil {
		t.Fatalf("wait tcp: %v", err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("tcp wait returned after %v, before the server could listen", took)
	}
	if res.Process.Status != hutchv1.ProcessStatus_PROCESS_STATUS_RUNNING {
		t.Errorf("process %v", res.Process)
	}
	tests := []struct {
		name     string
		cond     *hutchv1.PortCondition
		wantCode connect.Code
	}{
		{"tcp", &hutchv1.PortCondition{Port: port, Mode: "tcp"}, 0},
		{"http default range", &hutchv1.PortCondition{Port: port, Mode: "http"}, 0},
		{"http path 404 in default range", &hutchv1.PortCondition{Port: port, Mode: "http", Path: "/missing"}, connect.CodeDeadlineExceeded},
		{"http 404 accepted", &hutchv1.PortCondition{Port: port, Mode: "http", Path: "/missing", StatusMin: 404, StatusMax: 404}, 0},
		{"http 200 outside range", &hutchv1.PortCondition{Port: port, Mode: "http", StatusMin: 500, StatusMax: 599}, connect.CodeDeadlineExceeded},
		{"closed port", &hutchv1.PortCondition{Port: freePort(t)}, connect.CodeDeadlineExceeded},
		{"bad path", &hutchv1.PortCondition{Port: port, Mode: "http", Path: "nope"}, connect.CodeInvalidArgument},
		{"empty range", &hutchv1.PortCondition{Port: port, Mode: "http", StatusMin: 300, StatusMax: 200}, connect.CodeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := waitBg(t, c, &hutchv1.WaitProcessRequest{Id: srv.Id, Condition: &hutchv1.WaitProcessRequest_Port{Port: tt.cond}, TimeoutMs: 500})
			if connect.CodeOf(err) != tt.wantCode && !(tt.wantCode == 0 && err == nil) {
				t.Errorf("err = %v, want %v", err, tt.wantCode)
			}
		})
	}
}
