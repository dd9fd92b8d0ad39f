// Package process runs background processes for the agent: commands that
// outlive the call that started them, with their output kept in rings for
// logs and waits, killed as whole trees, listed until long ended.
package process

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/timestamppb"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agent/exec"
	"github.com/hutch-sh/hutch/internal/agent/registry"
	"github.com/hutch-sh/hutch/internal/agent/ring"
	"github.com/hutch-sh/hutch/internal/agent/spawn"
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

// limits are the Service's tunables (tests shrink them).
type limits struct {
	ringSize  int           // bytes kept per output stream
	maxEnded  int           // ended processes kept
	keepAlive time.Duration // quiet time before a log stream sends a keep-alive
}

// Service implements the background-process calls of the ProcessService.
type Service struct {
	log     *slog.Logger
	spawner *spawn.Spawner
	table   *exec.Table
	limits  limits
	procs   *registry.Registry[*proc]

	wg sync.WaitGroup // one watch goroutine per running process
}

// New returns a Service that starts processes with sp.
func New(log *slog.Logger, sp *spawn.Spawner, table *exec.Table) *Service {
	return newService(log, sp, table, limits{ringSize: defaultRingSize, maxEnded: defaultMaxEnded, keepAlive: spawn.KeepAliveInterval})
}

func newService(log *slog.Logger, sp *spawn.Spawner, table *exec.Table, l limits) *Service {
	return &Service{
		log: log, spawner: sp, table: table, limits: l,
		procs: registry.New("process", registry.Options[*proc]{
			// An ended process's id may be taken again.
			Reusable: (*proc).isEnded,
			Ended:    (*proc).endedSince,
			MaxEnded: l.maxEnded,
		}),
	}
}

// proc is one background process and the output it keeps.
type proc struct {
	id      string
	pid     int
	argv    []string
	cwd     string
	started time.Time
	exited  chan struct{} // closed when the wait status is known
	done    chan struct{} // closed once ended: exited and output read to the end

	mu      sync.Mutex
	stdout  *ring.Ring
	stderr  *ring.Ring
	changed chan struct{} // closed and replaced on new output or the end
	ws      syscall.WaitStatus
	endedAt time.Time
	ended   bool
}

// wake tells waiters that output or state changed; p.mu must be held.
func (p *proc) wake() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *proc) info() *hutchv1.ProcessInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.infoLocked()
}

func (p *proc) infoLocked() *hutchv1.ProcessInfo {
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

// endedSince reports whether p has ended and when it exited.
func (p *proc) endedSince() (time.Time, bool) {
	if !p.isEnded() {
		return time.Time{}, false
	}
	// endedAt is written before done is closed, so reading it now is safe.
	return p.endedAt, true
}

func (p *proc) isEnded() bool { return spawn.Closed(p.done) }

// hasExited reports whether the process itself is gone (and its pid may be reused).
func (p *proc) hasExited() bool { return spawn.Closed(p.exited) }

// StartProcess starts a command that runs on its own, detached from the call.
func (s *Service) StartProcess(_ context.Context, req *connect.Request[hutchv1.StartProcessRequest]) (*connect.Response[hutchv1.ProcessInfo], error) {
	p, err := s.startBg(req.Msg)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(p.info()), nil
}

func (s *Service) startBg(r *hutchv1.StartProcessRequest) (*proc, error) {
	if r.Id != "" {
		if err := registry.CheckID("process", r.Id); err != nil {
			return nil, err
		}
	}
	cmd, err := s.spawner.Prepare(r.Argv, r.Shell, r.Cwd, r.Env)
	if err != nil {
		return nil, err
	}
	return s.procs.Add(r.Id, func(id string) (*proc, error) {
		run, err := s.table.Start(s.spawner, cmd, false)
		if err != nil {
			return nil, err
		}
		p := &proc{
			id:      id,
			pid:     run.Pid(),
			argv:    cmd.Argv,
			cwd:     cmd.Cwd,
			started: run.Started(),
			exited:  make(chan struct{}),
			done:    make(chan struct{}),
			stdout:  ring.New(s.limits.ringSize),
			stderr:  ring.New(s.limits.ringSize),
			changed: make(chan struct{}),
		}
		s.wg.Add(1)
		go s.watch(p, run)
		s.log.Debug("start process", "op", "start", "id", id, "pid", p.pid, "argv", cmd.Argv)
		return p, nil
	})
}

// watch copies a process's output into its rings until it has exited and
// its output is read to the end, then marks it ended.
func (s *Service) watch(p *proc, r *exec.Running) {
	defer s.wg.Done()
	r.Copy(func(data []byte, stdout bool) {
		p.mu.Lock()
		rg := p.stderr
		if stdout {
			rg = p.stdout
		}
		rg.Write(data)
		p.wake()
		p.mu.Unlock()
	}, func(ws syscall.WaitStatus) {
		p.mu.Lock()
		p.ws, p.endedAt = ws, time.Now()
		p.mu.Unlock()
		close(p.exited)
	})
	p.mu.Lock()
	p.ended = true
	p.wake()
	p.mu.Unlock()
	close(p.done)
	s.log.Debug("process ended", "op", "end", "id", p.id, "pid", p.pid)
	s.procs.Prune()
}

// ListProcesses lists running and recently ended processes, oldest first.
func (s *Service) ListProcesses(context.Context, *connect.Request[hutchv1.ListProcessesRequest]) (*connect.Response[hutchv1.ListProcessesResponse], error) {
	ps := registry.Sorted(s.procs, func(p *proc) time.Time { return p.started })
	res := &hutchv1.ListProcessesResponse{Processes: make([]*hutchv1.ProcessInfo, len(ps))}
	for i, p := range ps {
		res.Processes[i] = p.info()
	}
	return connect.NewResponse(res), nil
}

// GetProcess reports one process.
func (s *Service) GetProcess(_ context.Context, req *connect.Request[hutchv1.ProcessRef]) (*connect.Response[hutchv1.ProcessInfo], error) {
	p, err := s.procs.Get(req.Msg.Id)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(p.info()), nil
}

// Close kills every running background process and waits until they are
// gone, so nothing the Service started outlives it.
func (s *Service) Close() {
	for _, p := range s.procs.Close() {
		if !p.hasExited() {
			spawn.KillTree(p.pid)
		}
	}
	s.wg.Wait()
}
