package proc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/timestamppb"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agentapi/envelope"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

const (
	// defaultRingSize is how much of each output stream a background
	// process keeps.
	defaultRingSize = 1 << 20
	// defaultMaxEnded is how many ended processes stay listed; the oldest
	// ended ones go first.
	defaultMaxEnded = 32
	// defaultKillGrace is the time between KillProcess's signal and SIGKILL.
	defaultKillGrace = 5 * time.Second
)

var validID = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// registry holds the background processes, running and recently ended.
type registry struct {
	ringSize  int           // bytes kept per output stream
	maxEnded  int           // ended processes kept
	keepAlive time.Duration // quiet time before a log stream sends a keep-alive

	wg sync.WaitGroup // one watch goroutine per running process

	mu    sync.Mutex
	procs map[string]*bgProc
}

func newRegistry() *registry {
	return &registry{
		ringSize:  defaultRingSize,
		maxEnded:  defaultMaxEnded,
		keepAlive: KeepAliveInterval,
		procs:     make(map[string]*bgProc),
	}
}

// bgProc is one background process and the output it keeps.
type bgProc struct {
	id      string
	pid     int
	argv    []string
	cwd     string
	started time.Time
	exited  chan struct{} // closed when the wait status is known
	done    chan struct{} // closed once ended: exited and output read to the end

	mu      sync.Mutex
	stdout  *ring
	stderr  *ring
	changed chan struct{} // closed and replaced on new output or the end
	ws      syscall.WaitStatus
	endedAt time.Time
	ended   bool
}

// wake tells waiters that output or state changed; p.mu must be held.
func (p *bgProc) wake() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *bgProc) info() *hutchv1.ProcessInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.infoLocked()
}

func (p *bgProc) infoLocked() *hutchv1.ProcessInfo {
	pi := &hutchv1.ProcessInfo{
		Id:        p.id,
		Pid:       int32(p.pid),
		Status:    hutchv1.ProcessStatus_PROCESS_STATUS_RUNNING,
		Argv:      slices.Clone(p.argv),
		Cwd:       p.cwd,
		StartedAt: timestamppb.New(p.started),
	}
	if !p.ended {
		return pi
	}
	pi.EndedAt = timestamppb.New(p.endedAt)
	if p.ws.Signaled() {
		pi.Status = hutchv1.ProcessStatus_PROCESS_STATUS_KILLED
		pi.ExitCode = 128 + int32(p.ws.Signal())
		pi.Signal = unix.SignalName(p.ws.Signal())
	} else {
		pi.Status = hutchv1.ProcessStatus_PROCESS_STATUS_EXITED
		pi.ExitCode = int32(p.ws.ExitStatus())
	}
	return pi
}

func (p *bgProc) isEnded() bool { return closed(p.done) }

// hasExited reports whether the process itself is gone (and its pid may be reused).
func (p *bgProc) hasExited() bool { return closed(p.exited) }

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// StartProcess starts a command that runs on its own, detached from the call.
func (s *Service) StartProcess(_ context.Context, req *connect.Request[hutchv1.StartProcessRequest]) (*connect.Response[hutchv1.ProcessInfo], error) {
	p, err := s.startBg(req.Msg)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(p.info()), nil
}

func (s *Service) startBg(r *hutchv1.StartProcessRequest) (*bgProc, error) {
	id := r.Id
	if id != "" && !validID.MatchString(id) {
		return nil, fmt.Errorf("process id %q: want 1-64 characters of [A-Za-z0-9_.-]: %w", id, errdefs.ErrInvalidArgument)
	}
	path, argv, env, cwd, err := s.prepare(&hutchv1.ExecRequest{Argv: r.Argv, Shell: r.Shell, Cwd: r.Cwd, Env: r.Env})
	if err != nil {
		return nil, err
	}
	reg := s.procs
	// Hold the registry while starting so two calls cannot take one id.
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if id == "" {
		for id = newID(); reg.procs[id] != nil; id = newID() {
		}
	} else if old := reg.procs[id]; old != nil && !old.isEnded() {
		return nil, fmt.Errorf("process %q: a running process has this id: %w", id, errdefs.ErrAlreadyExists)
	}
	run, err := s.start(path, argv, env, cwd, false)
	if err != nil {
		return nil, err
	}
	p := &bgProc{
		id:      id,
		pid:     run.exec.pid,
		argv:    argv,
		cwd:     cwd,
		started: run.start,
		exited:  make(chan struct{}),
		done:    make(chan struct{}),
		stdout:  newRing(reg.ringSize),
		stderr:  newRing(reg.ringSize),
		changed: make(chan struct{}),
	}
	reg.procs[id] = p
	reg.wg.Add(1)
	go s.watch(p, run)
	s.log.Debug("start process", "op", "start", "id", id, "pid", p.pid, "argv", argv)
	return p, nil
}

// prepare checks an exec-style request and resolves what to run, as exec does.
func (s *Service) prepare(r *hutchv1.ExecRequest) (path string, argv, env []string, cwd string, err error) {
	argv, err = commandLine(r)
	if err != nil {
		return "", nil, nil, "", err
	}
	env = mergeEnv(s.env(), r.Env)
	cwd, err = s.resolveCwd(r.Cwd)
	if err != nil {
		return "", nil, nil, "", err
	}
	path, err = lookPath(argv[0], env, cwd)
	if err != nil {
		return "", nil, nil, "", err
	}
	return path, argv, env, cwd, nil
}

// resolveCwd makes cwd absolute (the workdir when empty, relative paths
// under it) and checks that it is a directory.
func (s *Service) resolveCwd(cwd string) (string, error) {
	if cwd == "" {
		cwd = s.workdir
	} else if !filepath.IsAbs(cwd) {
		cwd = filepath.Join(s.workdir, cwd)
	}
	if fi, err := os.Stat(cwd); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("cwd %q: no such directory: %w", cwd, errdefs.ErrNotFound)
	}
	return cwd, nil
}

// watch copies a process's output into its rings until it has exited and
// its output is read to the end, then marks it ended. A background child
// holding the pipes open is cut off drainGrace after the exit, as for exec.
func (s *Service) watch(p *bgProc, r *running) {
	defer s.procs.wg.Done()
	defer r.stdout.Close()
	defer r.stderr.Close()
	var drain <-chan time.Time
	out, status := r.out, r.status
	for out != nil || status != nil {
		select {
		case o, ok := <-out:
			if !ok {
				out = nil
				continue
			}
			p.mu.Lock()
			rg := p.stderr
			if o.stdout {
				rg = p.stdout
			}
			rg.write((*o.buf)[envelope.OutputHeadroom : envelope.OutputHeadroom+o.n])
			p.wake()
			p.mu.Unlock()
			r.bufs.Put(o.buf)
		case ws := <-status:
			status = nil
			p.mu.Lock()
			p.ws, p.endedAt = ws, time.Now()
			p.mu.Unlock()
			close(p.exited)
			t := time.NewTimer(drainGrace)
			defer t.Stop()
			drain = t.C
		case <-drain:
			drain = nil
			r.stdout.Close()
			r.stderr.Close()
		}
	}
	p.mu.Lock()
	p.ended = true
	p.wake()
	p.mu.Unlock()
	close(p.done)
	s.log.Debug("process ended", "op", "end", "id", p.id, "pid", p.pid)
	s.procs.prune()
}

// prune drops the oldest ended processes beyond maxEnded.
func (reg *registry) prune() {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	var ended []*bgProc
	for _, p := range reg.procs {
		if p.isEnded() {
			ended = append(ended, p)
		}
	}
	if len(ended) <= reg.maxEnded {
		return
	}
	// endedAt is written before done is closed, so reading it here is safe.
	sort.Slice(ended, func(i, j int) bool { return ended[i].endedAt.Before(ended[j].endedAt) })
	for _, p := range ended[:len(ended)-reg.maxEnded] {
		delete(reg.procs, p.id)
	}
}

func (s *Service) lookupBg(id string) (*bgProc, error) {
	s.procs.mu.Lock()
	defer s.procs.mu.Unlock()
	p, ok := s.procs.procs[id]
	if !ok {
		return nil, fmt.Errorf("process %q: %w", id, errdefs.ErrNotFound)
	}
	return p, nil
}

// ListProcesses lists running and recently ended processes, oldest first.
func (s *Service) ListProcesses(context.Context, *connect.Request[hutchv1.ListProcessesRequest]) (*connect.Response[hutchv1.ListProcessesResponse], error) {
	s.procs.mu.Lock()
	ps := oldestFirst(s.procs.procs, func(p *bgProc) time.Time { return p.started })
	s.procs.mu.Unlock()
	res := &hutchv1.ListProcessesResponse{Processes: make([]*hutchv1.ProcessInfo, len(ps))}
	for i, p := range ps {
		res.Processes[i] = p.info()
	}
	return connect.NewResponse(res), nil
}

// oldestFirst returns the values of m (by id) ordered by their start, then id.
func oldestFirst[T any](m map[string]T, start func(T) time.Time) []T {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := start(m[ids[i]]), start(m[ids[j]])
		if !a.Equal(b) {
			return a.Before(b)
		}
		return ids[i] < ids[j]
	})
	out := make([]T, len(ids))
	for i, id := range ids {
		out[i] = m[id]
	}
	return out
}

// GetProcess reports one process.
func (s *Service) GetProcess(_ context.Context, req *connect.Request[hutchv1.ProcessRef]) (*connect.Response[hutchv1.ProcessInfo], error) {
	p, err := s.lookupBg(req.Msg.Id)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(p.info()), nil
}

// Close kills every running background process, every session's shell and
// every terminal, and waits until they are gone, so nothing the Service
// started outlives it.
func (s *Service) Close() {
	s.procs.mu.Lock()
	var ps []*bgProc
	for _, p := range s.procs.procs {
		ps = append(ps, p)
	}
	s.procs.mu.Unlock()
	for _, p := range ps {
		if !p.hasExited() {
			killTree(p.pid)
		}
	}
	s.closeSessions()
	s.closeTerminals()
	s.procs.wg.Wait()
}
