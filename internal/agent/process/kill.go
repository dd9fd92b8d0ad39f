package process

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agent/spawn"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// KillProcess signals a process's whole tree, SIGKILLs what is left after
// the grace period and returns the ended process.
func (s *Service) KillProcess(ctx context.Context, req *connect.Request[hutchv1.KillProcessRequest]) (*connect.Response[hutchv1.ProcessInfo], error) {
	sig, err := spawn.ParseSignal(req.Msg.Signal)
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
	p, err := s.procs.Get(req.Msg.Id)
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
	running := slices.DeleteFunc(s.procs.List(), (*proc).isEnded)
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
func (s *Service) kill(ctx context.Context, p *proc, sig syscall.Signal, grace time.Duration) error {
	if p.hasExited() {
		return s.waitEnded(ctx, p)
	}
	s.log.Debug("kill process", "op", "kill", "id", p.id, "pid", p.pid, "signal", sig)
	if sig == syscall.SIGKILL {
		spawn.KillTree(p.pid)
		return s.waitEnded(ctx, p)
	}
	// Remember the tree now: once the leader dies its children are
	// reparented to the agent and no longer found under it.
	kids := spawn.Descendants(p.pid)
	_ = syscall.Kill(-p.pid, sig)
	for _, k := range kids {
		_ = syscall.Kill(k, sig)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	tick := time.NewTicker(spawn.KillPoll)
	defer tick.Stop()
	for !p.hasExited() || spawn.AnyRunning(kids) {
		select {
		case <-p.exited:
		case <-tick.C:
		case <-t.C:
			if !p.hasExited() {
				spawn.KillTree(p.pid)
			}
			for _, k := range kids {
				if spawn.IsRunning(k) {
					spawn.KillTree(k)
				}
			}
			return s.waitEnded(ctx, p)
		}
	}
	return s.waitEnded(ctx, p)
}

// waitEnded waits until p's output is read to the end (at most drainGrace
// after it exited).
func (s *Service) waitEnded(ctx context.Context, p *proc) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("process %q: %w", p.id, ctx.Err())
	}
}
