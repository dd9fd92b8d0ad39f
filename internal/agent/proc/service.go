// Package proc runs commands inside the sandbox for the agent: exec with
// streamed output, stdin, signals, timeouts and whole-tree kills, and
// background processes with kept output, with every process a child of the
// agent.
package proc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sys/unix"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agentapi/envelope"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// KeepAliveInterval is how often a quiet exec stream sends a keep-alive.
const KeepAliveInterval = 15 * time.Second

// drainGrace bounds how long output is still read after the command exits,
// when a background child keeps its stdout open.
const drainGrace = time.Second

// Service implements the agent's ProcessService.
type Service struct {
	log     *slog.Logger
	reaper  *Reaper
	workdir string
	bufs    *sync.Pool // *[]byte of readChunk bytes, for reading output

	procs    *registry // background processes
	sessions *sessions
	terms    *terminals

	envMu   sync.Mutex
	baseEnv []string // changed by SetEnv without a session

	mu    sync.Mutex
	execs map[string]*execution
}

var _ hutchv1connect.ProcessServiceHandler = (*Service)(nil)

// New returns a Service whose commands start in workdir with baseEnv
// (KEY=VALUE) under the request's own env.
func New(log *slog.Logger, reaper *Reaper, baseEnv []string, workdir string) *Service {
	bufs := &sync.Pool{New: func() any { b := make([]byte, envelope.OutputHeadroom+readChunk); return &b }}
	return &Service{log: log, reaper: reaper, baseEnv: baseEnv, workdir: workdir, bufs: bufs, procs: newRegistry(), sessions: newSessions(), terms: newTerminals(), execs: make(map[string]*execution)}
}

type execution struct {
	pid    int
	stdin  *os.File             // nil when stdin was not requested or is closed
	signal func(syscall.Signal) // set for session execs, whose pid is the shell
	mu     sync.Mutex
}

// Exec runs one command and streams its output until it exits.
func (s *Service) Exec(ctx context.Context, req *connect.Request[hutchv1.ExecRequest], stream *connect.ServerStream[hutchv1.ExecEvent]) error {
	err := s.exec(ctx, req.Msg, connectSink{stream})
	return errdefs.ToConnect(err)
}

func (s *Service) exec(ctx context.Context, r *hutchv1.ExecRequest, stream sink) error {
	if r.Session != "" {
		return s.sessionExec(ctx, r, stream)
	}
	path, argv, env, cwd, err := s.prepare(r)
	if err != nil {
		return err
	}
	p, err := s.start(path, argv, env, cwd, r.Stdin)
	if err != nil {
		return err
	}
	id, done := s.register(p.exec)
	defer func() {
		done()
		p.exec.closeStdin()
	}()
	s.log.Debug("exec", "op", "exec", "id", id, "pid", p.exec.pid, "argv", argv)

	if err := stream.send(&hutchv1.ExecEvent{Event: &hutchv1.ExecEvent_Started{Started: &hutchv1.ExecStarted{Id: id, Pid: int32(p.exec.pid)}}}); err != nil {
		killTree(p.exec.pid)
		<-p.status
		return err
	}
	return p.pump(ctx, r.TimeoutMs, stream)
}

func commandLine(r *hutchv1.ExecRequest) ([]string, error) {
	switch {
	case len(r.Argv) > 0 && r.Shell != "":
		return nil, fmt.Errorf("exec: set argv or shell, not both: %w", errdefs.ErrInvalidArgument)
	case r.Shell != "":
		return []string{"/bin/sh", "-c", r.Shell}, nil
	case len(r.Argv) == 0 || r.Argv[0] == "":
		return nil, fmt.Errorf("exec: empty command: %w", errdefs.ErrInvalidArgument)
	}
	for _, a := range r.Argv {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, fmt.Errorf("exec: argument contains a NUL byte: %w", errdefs.ErrInvalidArgument)
		}
	}
	if r.TimeoutMs < 0 {
		return nil, fmt.Errorf("exec: negative timeout: %w", errdefs.ErrInvalidArgument)
	}
	return r.Argv, nil
}

// mergeEnv overlays extra on base; the result is sorted for stable output.
func mergeEnv(base []string, extra map[string]string) []string {
	m := make(map[string]string, len(base)+len(extra))
	for _, kv := range base {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	for k, v := range extra {
		m[k] = v
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.IndexByte(v, 0) >= 0 {
			continue
		}
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// lookPath finds file in the PATH of env, as a shell would.
func lookPath(file string, env []string, cwd string) (string, error) {
	check := func(p string) error {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return os.ErrPermission
		}
		return nil
	}
	if strings.Contains(file, "/") {
		p := file
		if !filepath.IsAbs(p) {
			p = filepath.Join(cwd, p)
		}
		switch err := check(p); {
		case err == nil:
			return p, nil
		case errors.Is(err, os.ErrPermission):
			return "", fmt.Errorf("exec %q: not an executable file: %w", file, errdefs.ErrPermissionDenied)
		default:
			return "", fmt.Errorf("exec %q: no such file: %w", file, errdefs.ErrNotFound)
		}
	}
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(cwd, dir)
		}
		p := filepath.Join(dir, file)
		if check(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %q: executable file not found in $PATH: %w", file, errdefs.ErrNotFound)
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (e *execution) closeStdin() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stdin != nil {
		_ = e.stdin.Close()
		e.stdin = nil
	}
}

// register makes a running exec findable by WriteStdin and Signal under a
// new id, until done is called.
func (s *Service) register(e *execution) (id string, done func()) {
	id = newID()
	s.mu.Lock()
	s.execs[id] = e
	s.mu.Unlock()
	return id, func() {
		s.mu.Lock()
		delete(s.execs, id)
		s.mu.Unlock()
	}
}

func (s *Service) lookup(id string) (*execution, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.execs[id]
	if !ok {
		return nil, fmt.Errorf("exec %q: %w", id, errdefs.ErrNotFound)
	}
	return e, nil
}

// stdinWriteTimeout bounds a write to a command that does not read its stdin.
const stdinWriteTimeout = 30 * time.Second

// WriteStdin writes to the stdin of a running exec.
func (s *Service) WriteStdin(ctx context.Context, req *connect.Request[hutchv1.WriteStdinRequest]) (*connect.Response[hutchv1.WriteStdinResponse], error) {
	e, err := s.lookup(req.Msg.Id)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stdin == nil {
		if len(req.Msg.Data) == 0 && req.Msg.Eof {
			return connect.NewResponse(&hutchv1.WriteStdinResponse{}), nil
		}
		return nil, errdefs.ToConnect(fmt.Errorf("exec %q: stdin is closed or was not requested: %w", req.Msg.Id, errdefs.ErrFailedPrecondition))
	}
	if len(req.Msg.Data) > 0 {
		deadline := time.Now().Add(stdinWriteTimeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		_ = e.stdin.SetWriteDeadline(deadline)
		if _, err := e.stdin.Write(req.Msg.Data); err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				err = fmt.Errorf("exec %q: command is not reading its stdin: %w", req.Msg.Id, errdefs.ErrDeadlineExceeded)
			case errors.Is(err, syscall.EPIPE):
				err = fmt.Errorf("exec %q: command closed its stdin: %w", req.Msg.Id, errdefs.ErrFailedPrecondition)
			}
			return nil, errdefs.ToConnect(err)
		}
	}
	if req.Msg.Eof {
		_ = e.stdin.Close()
		e.stdin = nil
	}
	return connect.NewResponse(&hutchv1.WriteStdinResponse{}), nil
}

// Signal signals the process group of a running exec; SIGKILL kills the tree.
func (s *Service) Signal(_ context.Context, req *connect.Request[hutchv1.SignalRequest]) (*connect.Response[hutchv1.SignalResponse], error) {
	sig, err := ParseSignal(req.Msg.Signal)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	e, err := s.lookup(req.Msg.Id)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	if e.signal != nil {
		e.signal(sig)
	} else if sig == syscall.SIGKILL {
		killTree(e.pid)
	} else if err := syscall.Kill(-e.pid, sig); err != nil && err != syscall.ESRCH {
		return nil, errdefs.ToConnect(fmt.Errorf("signal exec %q: %w: %w", req.Msg.Id, err, errdefs.ErrInternal))
	}
	return connect.NewResponse(&hutchv1.SignalResponse{}), nil
}

// ParseSignal accepts "SIGINT", "INT", "int" or a number; empty is SIGTERM.
func ParseSignal(name string) (syscall.Signal, error) {
	if name == "" {
		return syscall.SIGTERM, nil
	}
	var n int
	if _, err := fmt.Sscanf(name, "%d", &n); err == nil && fmt.Sprint(n) == name {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %q: out of range: %w", name, errdefs.ErrInvalidArgument)
		}
		return syscall.Signal(n), nil
	}
	up := strings.ToUpper(name)
	if !strings.HasPrefix(up, "SIG") {
		up = "SIG" + up
	}
	sig := unix.SignalNum(up)
	if sig == 0 {
		return 0, fmt.Errorf("signal %q: unknown signal: %w", name, errdefs.ErrInvalidArgument)
	}
	return sig, nil
}
