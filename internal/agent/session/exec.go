package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agent/exec"
	"github.com/hutch-sh/hutch/internal/agent/spawn"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

const (
	// sessionKillGrace is how long a killed session command may keep the
	// shell busy (a builtin loop) before the shell itself is killed.
	sessionKillGrace = 500 * time.Millisecond
	// scriptWriteTimeout bounds handing a command to an idle shell.
	scriptWriteTimeout = 10 * time.Second
)

// Run runs a command in a session's shell, creating the session if there
// is none by that id. The shell opens the
// command's output pipes through /proc/<agent>/fd, so each command gets its
// own pipes (and EOF) while the shell lives on, and reports $? on a third.
func (s *Service) Run(ctx context.Context, r *hutchv1.ExecRequest, stream exec.Sink) error {
	if r.Stdin {
		return fmt.Errorf("exec in session %q: stdin is not supported in a session: %w", r.Session, errdefs.ErrInvalidArgument)
	}
	if err := checkSessionExec(r); err != nil {
		return err
	}
	return s.withShell(ctx, r.Session, func(sess *session, sh *shell) error {
		return s.execInShell(ctx, r, stream, sess, sh)
	})
}

// withShell runs fn with the session's shell to itself: no other exec or
// SetEnv runs in it meanwhile, and a shell that died is restarted first.
func (s *Service) withShell(ctx context.Context, id string, fn func(*session, *shell) error) error {
	for {
		sess, err := s.session(id)
		if err != nil {
			return err
		}
		err = s.inTurn(ctx, sess, fn)
		if !errors.Is(err, errDeleted) {
			return err
		}
	}
}

// inTurn runs fn once sess has a live shell and it is this caller's turn.
func (s *Service) inTurn(ctx context.Context, sess *session, fn func(*session, *shell) error) error {
	if err := sess.acquire(ctx); err != nil {
		return err
	}
	defer sess.release()
	sh, err := s.liveShell(sess)
	if err != nil {
		return err
	}
	defer sess.settle(sh)
	return fn(sess, sh)
}

func (s *Service) execInShell(ctx context.Context, r *hutchv1.ExecRequest, stream exec.Sink, sess *session, sh *shell) error {
	env, text := sessionScript(r, sh.builtin())
	run, x, err := s.startInShell(sh, env, text)
	if err != nil {
		return fmt.Errorf("session %q: %w", sess.id, err)
	}
	id, done := s.table.Register(run)
	defer done()
	s.log.Debug("exec", "op", "exec", "id", id, "session", sess.id, "pid", sh.pid)

	if err := stream.Send(&hutchv1.ExecEvent{Event: &hutchv1.ExecEvent_Started{Started: &hutchv1.ExecStarted{Id: id, Pid: int32(sh.pid)}}}); err != nil {
		run.Abandon()
		return err
	}
	err = run.Pump(ctx, r.TimeoutMs, stream)
	if err != nil && x.lost.Load() && errors.Is(err, errdefs.ErrDeadlineExceeded) {
		err = fmt.Errorf("session %q: the shell itself stayed busy, so it was killed and restarts with its last cwd and SetEnv variables; other state (exports, functions) is lost: %w", sess.id, err)
	}
	return err
}

func checkSessionExec(r *hutchv1.ExecRequest) error {
	switch {
	case len(r.Argv) > 0 && r.Shell != "":
		return fmt.Errorf("exec: set argv or shell, not both: %w", errdefs.ErrInvalidArgument)
	case r.Shell == "" && (len(r.Argv) == 0 || r.Argv[0] == ""):
		return fmt.Errorf("exec: empty command: %w", errdefs.ErrInvalidArgument)
	case r.TimeoutMs < 0:
		return fmt.Errorf("exec: negative timeout: %w", errdefs.ErrInvalidArgument)
	case strings.IndexByte(r.Shell, 0) >= 0 || strings.IndexByte(r.Cwd, 0) >= 0:
		return fmt.Errorf("exec: command contains a NUL byte: %w", errdefs.ErrInvalidArgument)
	}
	for _, a := range r.Argv {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("exec: argument contains a NUL byte: %w", errdefs.ErrInvalidArgument)
		}
	}
	return spawn.CheckEnvChange(r.Env, nil)
}

// sessionScript returns the text for the shell to eval for one exec (argv
// quoted, or the shell string as is; with cwd, a cd first that persists, as
// if typed) and the assignments that put env in the environment of that
// command only.
func sessionScript(r *hutchv1.ExecRequest, builtin string) (env, text string) {
	cmd := r.Shell
	if cmd == "" {
		q := make([]string, len(r.Argv))
		for i, a := range r.Argv {
			q[i] = shQuote(a)
		}
		cmd = strings.Join(q, " ")
	}
	keys := make([]string, 0, len(r.Env))
	for k := range r.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + shQuote(r.Env[k]) + " ")
	}
	if r.Cwd != "" {
		cmd = builtin + "cd -- " + shQuote(r.Cwd) + " && command eval " + shQuote(cmd)
	}
	return b.String(), cmd
}

// shellExec is one command running in a session's shell.
type shellExec struct {
	sh                  *shell
	outW, errW, statusW *os.File // the agent's ends for the shell to open; kept until the status is known
	statusR             *os.File
	finished            chan struct{} // closed once the shell is done with the command
	lost                atomic.Bool   // the shell died while running it
	killOnce            sync.Once
}

// startInShell has the idle shell sh eval text with fresh output pipes, env
// assignments before it. eval (not a { } group, whose parser state bash
// loses on a syntax error inside) keeps a syntax error in text from leaving
// the shell reading the next command as part of this one.
func (s *Service) startInShell(sh *shell, env, text string) (*exec.Running, *shellExec, error) {
	var p [6]*os.File // out r/w, err r/w, status r/w
	for i := 0; i < len(p); i += 2 {
		var err error
		if p[i], p[i+1], err = os.Pipe(); err != nil {
			closeAll(p[:i])
			return nil, nil, fmt.Errorf("exec: pipe: %w: %w", err, errdefs.ErrResourceExhausted)
		}
	}
	_, _ = unix.FcntlInt(p[1].Fd(), unix.F_SETPIPE_SZ, exec.ReadChunk)
	_, _ = unix.FcntlInt(p[3].Fd(), unix.F_SETPIPE_SZ, exec.ReadChunk)
	fd := func(f *os.File) string {
		return "/proc/" + strconv.Itoa(os.Getpid()) + "/fd/" + strconv.Itoa(int(f.Fd()))
	}
	// command: bypasses a user's function of the name, and makes a syntax
	// error in eval not end a POSIX sh; bash's "builtin eval" would drop
	// the env assignments once the command runs a builtin such as cd.
	line := fmt.Sprintf("%scommand eval %s >%s 2>%s </dev/null; command printf '%%d\\n' \"$?\" >%s\n",
		env, shQuote(text), fd(p[1]), fd(p[3]), fd(p[5]))
	_ = sh.stdin.SetWriteDeadline(time.Now().Add(scriptWriteTimeout))
	if _, err := io.WriteString(sh.stdin, line); err != nil {
		closeAll(p[:])
		// A half-written command would leave the shell out of step.
		spawn.KillTree(sh.pid)
		<-sh.dead
		return nil, nil, fmt.Errorf("hand command to the shell: %w: %w", err, errdefs.ErrUnavailable)
	}
	x := &shellExec{sh: sh, outW: p[1], errW: p[3], statusR: p[4], statusW: p[5], finished: make(chan struct{})}
	status := make(chan syscall.WaitStatus, 1)
	r := s.table.Attach(sh.pid, p[0], p[2], status, x.kill, x.signal)
	go x.await(status)
	return r, x, nil
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

// await waits for the command's status line, or for the shell to die, then
// lets go of the agent's ends of the pipes, so the readers reach EOF once
// the command's own children let go too, and reports the status.
func (x *shellExec) await(status chan<- syscall.WaitStatus) {
	line := make(chan int, 1)
	go func() { line <- readStatus(x.statusR) }()
	var code int
	select {
	case code = <-line:
	case <-x.sh.dead:
		x.lost.Store(true)
		x.statusR.Close()
		code = <-line
	}
	ws := syscall.WaitStatus((code & 0xff) << 8)
	if code < 0 {
		ws = x.sh.ws // the shell died without reporting: exit 7, set -e, killed
	}
	close(x.finished)
	closeAll([]*os.File{x.statusR, x.statusW, x.outW, x.errW})
	status <- ws
}

// readStatus reads the status line the shell writes after the command; -1
// if there is none.
func readStatus(f *os.File) int {
	var b []byte
	buf := make([]byte, 16)
	for len(b) < 16 {
		n, err := f.Read(buf)
		b = append(b, buf[:n]...)
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			code, err := strconv.Atoi(string(b[:i]))
			if err != nil {
				return -1
			}
			return code
		}
		if err != nil {
			return -1
		}
	}
	return -1
}

// kill kills the command's processes (the shell's descendants, not the
// shell); if the shell is still busy after sessionKillGrace (a builtin
// loop), the shell goes too and the session restarts.
func (x *shellExec) kill() {
	x.killOnce.Do(func() {
		spawn.KillDescendants(x.sh.pid)
		go x.escalate()
	})
}

func (x *shellExec) escalate() {
	t := time.NewTimer(sessionKillGrace)
	defer t.Stop()
	tick := time.NewTicker(spawn.KillPoll)
	defer tick.Stop()
	for {
		select {
		case <-x.finished:
			return
		case <-tick.C:
			// A loop may have started the next child.
			spawn.KillDescendants(x.sh.pid)
		case <-t.C:
			spawn.KillTree(x.sh.pid)
			return
		}
	}
}

// signal signals the command's processes; SIGKILL kills them as a timeout does.
func (x *shellExec) signal(sig syscall.Signal) {
	if sig == syscall.SIGKILL {
		x.kill()
		return
	}
	for _, k := range spawn.Descendants(x.sh.pid) {
		_ = syscall.Kill(k, sig)
	}
}

// sessionSetEnv exports and unsets variables in a session's shell and
// records them for the shell's restarts.
func (s *Service) sessionSetEnv(ctx context.Context, id string, set map[string]string, unset []string) error {
	return s.withShell(ctx, id, func(sess *session, sh *shell) error {
		return s.setEnvInShell(ctx, sess, sh, set, unset)
	})
}

func (s *Service) setEnvInShell(ctx context.Context, sess *session, sh *shell, set map[string]string, unset []string) error {
	id := sess.id
	script := envScript(set, unset, sh.builtin())
	if script == "" {
		return nil
	}
	run, _, err := s.startInShell(sh, "", script)
	if err != nil {
		return fmt.Errorf("session %q: set env: %w", id, err)
	}
	var c exec.Capture
	if err := run.Pump(ctx, 0, &c); err != nil {
		return fmt.Errorf("session %q: set env: %w", id, err)
	}
	if c.Exit == nil || c.Exit.Code != 0 {
		return fmt.Errorf("session %q: set env: %s: %w", id, strings.TrimSpace(c.Stderr.String()), errdefs.ErrFailedPrecondition)
	}
	sess.mu.Lock()
	sess.env = spawn.ApplyEnv(sess.env, set, unset)
	sess.mu.Unlock()
	return nil
}
