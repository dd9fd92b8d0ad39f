// Package session keeps long-lived shells for the agent: a command run in
// a session sees the cwd, variables and functions earlier ones left, one
// command at a time. Sessions are got or created by id, as sandboxes are by
// name; "default" always exists.
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agent/exec"
	"github.com/hutch-sh/hutch/internal/agent/registry"
	"github.com/hutch-sh/hutch/internal/agent/spawn"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// defaultSession always exists; its shell starts on first use.
const defaultSession = "default"

// errDeleted is what liveShell says of a session deleted while its caller
// waited for its turn: the caller gets or creates the id afresh.
var errDeleted = errors.New("session deleted")

// Service implements the session calls of the ProcessService, and runs
// execs that name a session for package exec.
type Service struct {
	log      *slog.Logger
	spawner  *spawn.Spawner
	table    *exec.Table
	sessions *registry.Registry[*session]

	wg sync.WaitGroup // one goroutine per running shell, waiting for its exit
}

var _ exec.Sessions = (*Service)(nil)

// New returns a Service whose shells start with sp and whose commands are
// findable in table.
func New(log *slog.Logger, sp *spawn.Spawner, table *exec.Table) *Service {
	s := &Service{log: log, spawner: sp, table: table, sessions: registry.New("session", registry.Options[*session]{})}
	_, _, _ = s.sessions.GetOrCreate(defaultSession, lazySession)
	return s
}

// lazySession makes a session whose shell starts on first use, in the
// workdir with the base env: what CreateSession does with no options.
func lazySession(id string) (*session, error) { return newSession(id, "", nil), nil }

type session struct {
	id      string
	created time.Time
	turn    chan struct{} // holds a token while an exec or SetEnv runs

	mu      sync.Mutex
	sh      *shell   // nil before the first use and after the shell died
	env     []string // environment of the next shell; nil: the base env then
	cwd     string   // last known cwd, where a restarted shell starts
	deleted bool
}

func newSession(id, cwd string, env []string) *session {
	return &session{id: id, created: time.Now(), turn: make(chan struct{}, 1), cwd: cwd, env: env}
}

// shell is one run of a session's shell process.
type shell struct {
	pid   int
	bash  bool     // else a POSIX sh
	stdin *os.File // commands are written here
	dead  chan struct{}
	ws    syscall.WaitStatus // set before dead is closed
}

func (sh *shell) alive() bool { return !spawn.Closed(sh.dead) }

// builtin prefixes a builtin so a user's function of the same name is not
// called instead.
func (sh *shell) builtin() string {
	if sh.bash {
		return "builtin "
	}
	return ""
}

// CreateSession starts a session's shell in its cwd with the base env and
// the request's env.
func (s *Service) CreateSession(_ context.Context, req *connect.Request[hutchv1.CreateSessionRequest]) (*connect.Response[hutchv1.SessionInfo], error) {
	sess, err := s.createSession(req.Msg)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(s.sessionInfo(sess)), nil
}

func (s *Service) createSession(r *hutchv1.CreateSessionRequest) (*session, error) {
	if r.Id != "" {
		if err := registry.CheckID("session", r.Id); err != nil {
			return nil, err
		}
	}
	cwd, err := s.spawner.ResolveCwd(r.Cwd)
	if err != nil {
		return nil, err
	}
	env := spawn.MergeEnv(s.spawner.Env(), r.Env)
	return s.sessions.Add(r.Id, func(id string) (*session, error) {
		sh, err := s.spawnShell(env, cwd)
		if err != nil {
			return nil, err
		}
		sess := newSession(id, cwd, env)
		sess.sh = sh
		s.log.Debug("create session", "op", "session", "session", id, "pid", sh.pid)
		return sess, nil
	})
}

// ListSessions lists the sessions by id.
func (s *Service) ListSessions(context.Context, *connect.Request[hutchv1.ListSessionsRequest]) (*connect.Response[hutchv1.ListSessionsResponse], error) {
	all := s.sessions.List()
	sort.Slice(all, func(i, j int) bool { return all[i].id < all[j].id })
	res := &hutchv1.ListSessionsResponse{Sessions: make([]*hutchv1.SessionInfo, len(all))}
	for i, sess := range all {
		res.Sessions[i] = s.sessionInfo(sess)
	}
	return connect.NewResponse(res), nil
}

func (s *Service) sessionInfo(sess *session) *hutchv1.SessionInfo {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	cwd := sess.cwd
	if sess.sh != nil && sess.sh.alive() {
		if c, err := os.Readlink("/proc/" + strconv.Itoa(sess.sh.pid) + "/cwd"); err == nil {
			cwd = c
		}
	}
	if cwd == "" {
		cwd = s.spawner.Workdir()
	}
	return &hutchv1.SessionInfo{Id: sess.id, Cwd: cwd, CreatedAt: timestamppb.New(sess.created)}
}

// DeleteSession kills a session's shell and everything it started. The
// default session is reset instead: its next use starts a fresh shell.
func (s *Service) DeleteSession(_ context.Context, req *connect.Request[hutchv1.DeleteSessionRequest]) (*connect.Response[hutchv1.DeleteSessionResponse], error) {
	id := req.Msg.Id
	sess, err := s.sessions.Get(id)
	if err != nil || !s.sessions.Remove(id, sess) {
		return nil, errdefs.ToConnect(fmt.Errorf("session %q: %w", id, errdefs.ErrNotFound))
	}
	if id == defaultSession {
		// Fails only when the agent is closing, when there is no default.
		_, _, _ = s.sessions.GetOrCreate(defaultSession, lazySession)
	}
	sess.stop()
	s.log.Debug("delete session", "op", "session", "session", id)
	return connect.NewResponse(&hutchv1.DeleteSessionResponse{}), nil
}

// stop marks the session deleted and kills its shell's whole tree; an exec
// running in it ends with the shell's death.
func (sess *session) stop() {
	sess.mu.Lock()
	sess.deleted = true
	sh := sess.sh
	sess.sh = nil
	sess.mu.Unlock()
	if sh == nil {
		return
	}
	spawn.KillTree(sh.pid)
	_ = sh.stdin.Close()
	t := time.NewTimer(spawn.StopWait)
	defer t.Stop()
	select {
	case <-sh.dead:
	case <-t.C:
	}
}

// Close kills every session's shell and waits until they are reaped; a
// later exec in a session fails as unavailable.
func (s *Service) Close() {
	for _, sess := range s.sessions.Close() {
		sess.stop()
	}
	s.wg.Wait()
}

// session gets or creates the session id.
func (s *Service) session(id string) (*session, error) {
	sess, created, err := s.sessions.GetOrCreate(id, lazySession)
	if created {
		s.log.Debug("create session", "op", "session", "session", id)
	}
	return sess, err
}

// acquire waits for the session's turn: one command runs in a shell at a time.
func (sess *session) acquire(ctx context.Context) error {
	select {
	case sess.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("session %q: waiting for the running command: %w", sess.id, ctx.Err())
	}
}

func (sess *session) release() { <-sess.turn }

// liveShell returns the session's shell, starting it on first use or after
// it died (in the last known cwd, with the session's env). The caller holds
// the turn.
func (s *Service) liveShell(sess *session) (*shell, error) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.deleted {
		return nil, errDeleted
	}
	if sess.sh != nil && sess.sh.alive() {
		return sess.sh, nil
	}
	if sess.sh != nil {
		_ = sess.sh.stdin.Close()
		sess.sh = nil
	}
	if sess.env == nil {
		sess.env = spawn.MergeEnv(s.spawner.Env(), nil)
	}
	cwd := sess.cwd
	if fi, err := os.Stat(cwd); cwd == "" || err != nil || !fi.IsDir() {
		cwd = s.spawner.Workdir()
	}
	sh, err := s.spawnShell(sess.env, cwd)
	if err != nil {
		return nil, fmt.Errorf("session %q: %w", sess.id, err)
	}
	sess.sh, sess.cwd = sh, cwd
	s.log.Debug("start session shell", "op", "session", "session", sess.id, "pid", sh.pid)
	return sh, nil
}

// settle records the shell's cwd after a command, or forgets the shell if
// the command ended it.
func (sess *session) settle(sh *shell) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.sh != sh {
		return // deleted meanwhile
	}
	if !sh.alive() {
		_ = sh.stdin.Close()
		sess.sh = nil
		return
	}
	if c, err := os.Readlink("/proc/" + strconv.Itoa(sh.pid) + "/cwd"); err == nil {
		sess.cwd = c
	}
}

// spawnShell starts bash (sh when there is none) reading commands from a
// pipe, in its own process group, with output to /dev/null: each command
// gets its own output pipes.
func (s *Service) spawnShell(env []string, cwd string) (*shell, error) {
	path, bash := "/bin/sh", false
	if p, err := spawn.LookPath("bash", env, cwd); err == nil {
		path, bash = p, true
	} else if p, err := spawn.LookPath("sh", env, cwd); err == nil {
		path = p
	}
	argv := []string{"sh"}
	if bash {
		argv = []string{"bash", "--noprofile", "--norc"}
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start shell: pipe: %w: %w", err, errdefs.ErrResourceExhausted)
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("start shell: %w: %w", err, errdefs.ErrResourceExhausted)
	}
	attr := &syscall.ProcAttr{
		Dir:   cwd,
		Env:   env,
		Files: []uintptr{inR.Fd(), null.Fd(), null.Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	pid, status, err := s.spawner.Fork(func() (int, error) { return syscall.ForkExec(path, argv, attr) })
	inR.Close()
	null.Close()
	if err != nil {
		inW.Close()
		return nil, fmt.Errorf("start shell %q: %w: %w", path, err, errdefs.ErrFailedPrecondition)
	}
	sh := &shell{pid: pid, bash: bash, stdin: inW, dead: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sh.ws = <-status
		close(sh.dead)
	}()
	return sh, nil
}
