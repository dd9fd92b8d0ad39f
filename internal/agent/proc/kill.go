package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// killPoll is how often a kill checks whether the tree is gone.
const killPoll = 20 * time.Millisecond

// KillProcess signals a process's whole tree, SIGKILLs what is left after
// the grace period and returns the ended process.
func (s *Service) KillProcess(ctx context.Context, req *connect.Request[hutchv1.KillProcessRequest]) (*connect.Response[hutchv1.ProcessInfo], error) {
	sig, err := ParseSignal(req.Msg.Signal)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	if req.Msg.GraceMs < 0 {
		return nil, errdefs.ToConnect(fmt.Errorf("kill process %q: negative grace: %w", req.Msg.Id, errdefs.ErrInvalidArgument))
	}
	grace := defaultKillGrace
	if req.Msg.GraceMs > 0 {
		grace = time.Duration(req.Msg.GraceMs) * time.Millisecond
	}
	p, err := s.lookupBg(req.Msg.Id)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	if err := s.kill(ctx, p, sig, grace); err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(p.info()), nil
}

// KillAllProcesses kills every running process with SIGTERM, then SIGKILL
// after the default grace period, and reports how many were running.
func (s *Service) KillAllProcesses(ctx context.Context, _ *connect.Request[hutchv1.KillAllProcessesRequest]) (*connect.Response[hutchv1.KillAllProcessesResponse], error) {
	s.procs.mu.Lock()
	var running []*bgProc
	for _, p := range s.procs.procs {
		if !p.isEnded() {
			running = append(running, p)
		}
	}
	s.procs.mu.Unlock()
	var (
		wg     sync.WaitGroup
		killed atomic.Int32
		errMu  sync.Mutex
		errs   []error
	)
	for _, p := range running {
		wg.Go(func() {
			if p.hasExited() {
				return // ended by itself meanwhile; its output is still draining
			}
			if err := s.kill(ctx, p, syscall.SIGTERM, defaultKillGrace); err != nil {
				errMu.Lock()
				errs = append(errs, err)
				errMu.Unlock()
				return
			}
			killed.Add(1)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(&hutchv1.KillAllProcessesResponse{Killed: killed.Load()}), nil
}

// kill sends sig to p's process group and every descendant (setsid ones
// too), waits up to grace for them all to go, then kills what is left of the
// tree, and returns once p has ended. The grace period runs to its end even
// if the caller goes away, so a signalled tree is never left half-killed.
func (s *Service) kill(ctx context.Context, p *bgProc, sig syscall.Signal, grace time.Duration) error {
	if p.hasExited() {
		return s.waitEnded(ctx, p)
	}
	s.log.Debug("kill process", "op", "kill", "id", p.id, "pid", p.pid, "signal", sig)
	if sig == syscall.SIGKILL {
		killTree(p.pid)
		return s.waitEnded(ctx, p)
	}
	// Remember the tree now: once the leader dies its children are
	// reparented to the agent and no longer found under it.
	kids := descendants(p.pid)
	_ = syscall.Kill(-p.pid, sig)
	for _, k := range kids {
		_ = syscall.Kill(k, sig)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	tick := time.NewTicker(killPoll)
	defer tick.Stop()
	for !p.hasExited() || anyAlive(kids) {
		select {
		case <-p.exited:
		case <-tick.C:
		case <-t.C:
			if !p.hasExited() {
				killTree(p.pid)
			}
			for _, k := range kids {
				if isRunning(k) {
					killTree(k)
				}
			}
			return s.waitEnded(ctx, p)
		}
	}
	return s.waitEnded(ctx, p)
}

// waitEnded waits until p's output is read to the end (at most drainGrace
// after it exited).
func (s *Service) waitEnded(ctx context.Context, p *bgProc) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("process %q: %w", p.id, ctx.Err())
	}
}

func anyAlive(pids []int) bool {
	for _, p := range pids {
		if isRunning(p) {
			return true
		}
	}
	return false
}

// isRunning reports whether pid runs; a zombie waiting to be reaped does not.
func isRunning(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	st, ok := procStat(pid)
	return ok && st != 'Z' && st != 'X'
}

// procStat returns the state letter of pid from /proc.
func procStat(pid int) (byte, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name may contain spaces and parentheses: fields follow the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, false
	}
	return s[i+2], true
}
