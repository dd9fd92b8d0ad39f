package kernel

import (
	"context"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// RunCode runs one cell and streams its events, ending with Done.
func (s *Service) RunCode(ctx context.Context, req *connect.Request[hutchv1.RunCodeRequest], stream *connect.ServerStream[hutchv1.CodeEvent]) error {
	return errdefs.ToConnect(s.run(ctx, req.Msg, stream.Send))
}

// sink serialises a stream's sends (output and keep-alives) and remembers
// whether the caller went away.
type sink struct {
	mu   sync.Mutex
	send emit
	err  error
	gone chan struct{} // closed on the first failed send
}

func (o *sink) emit(ev *hutchv1.CodeEvent) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return o.err
	}
	if o.err = o.send(ev); o.err != nil {
		close(o.gone)
	}
	return o.err
}

func (s *Service) run(ctx context.Context, r *hutchv1.RunCodeRequest, send emit) error {
	if len(r.Code) > MaxCodeBytes {
		return fmt.Errorf("code is %d bytes; at most %d (1 MiB) per cell: %w", len(r.Code), MaxCodeBytes, errdefs.ErrInvalidArgument)
	}
	if r.TimeoutMs < 0 {
		return fmt.Errorf("run code: negative timeout: %w", errdefs.ErrInvalidArgument)
	}
	c, err := s.resolve(r)
	if err != nil {
		return err
	}
	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.turn }()
	k, started, lost, err := s.kernel(ctx, c)
	if err != nil {
		return err
	}
	out := &sink{send: send, gone: make(chan struct{})}
	if err := out.emit(&hutchv1.CodeEvent{Event: &hutchv1.CodeEvent_Started{Started: &hutchv1.CodeStarted{
		Context: c.id, Language: c.lang, KernelStarted: started, StateLost: lost,
	}}}); err != nil {
		return err
	}
	interrupted := make(chan struct{})
	c.mu.Lock()
	c.interrupt = interrupted
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.interrupt = nil
		c.mu.Unlock()
	}()

	t0 := time.Now()
	hard, kill := context.WithCancel(context.Background())
	defer kill()
	finished := make(chan struct{})
	var why hutchv1.CodeStatus // why the cell was stopped, if it was
	var wg sync.WaitGroup
	wg.Go(func() { why = s.supervise(ctx, r.TimeoutMs, k, out, interrupted, finished, kill) })
	end, err := k.execute(hard, r.Code, out.emit)
	close(finished)
	wg.Wait()

	done := &hutchv1.CodeDone{Status: end.status, ExecutionCount: end.count, DurationMs: time.Since(t0).Milliseconds()}
	switch {
	case hard.Err() != nil:
		// Interrupted, but it did not stop: the kernel goes, with its state;
		// the next cell starts a new one.
		k.child().Kill()
		done.Status = hutchv1.CodeStatus_CODE_STATUS_KERNEL_DIED
		done.Message = fmt.Sprintf("the cell did not stop within %v of being interrupted: the %s kernel was killed and its state is lost; the next run starts a new one", interruptGrace, c.lang)
	case err != nil:
		return err
	case end.status == hutchv1.CodeStatus_CODE_STATUS_KERNEL_DIED:
		done.Message = fmt.Sprintf("the %s kernel died (%s): its state is lost; the next run starts a new one", c.lang, k.child().Status())
	case why != hutchv1.CodeStatus_CODE_STATUS_UNSPECIFIED:
		done.Status = why
		if why == hutchv1.CodeStatus_CODE_STATUS_TIMEOUT {
			done.Message = fmt.Sprintf("interrupted after its timeout of %v; the context keeps its state", time.Duration(r.TimeoutMs)*time.Millisecond)
		} else {
			done.Message = "interrupted; the context keeps its state"
		}
	}
	if lost && done.Message == "" {
		done.Message = "the kernel had died and was restarted: earlier state is lost"
	}
	select {
	case <-out.gone:
		return out.err
	default:
	}
	return out.emit(&hutchv1.CodeEvent{Event: &hutchv1.CodeEvent_Done{Done: done}})
}

// supervise sends keep-alives while a cell runs and interrupts it on
// timeout, InterruptCode or a caller that went away; if it then does not
// finish within interruptGrace, kill ends the cell. It returns why it
// interrupted, if it did.
func (s *Service) supervise(ctx context.Context, timeoutMs int64, k kernel, out *sink, interrupted, finished <-chan struct{}, kill func()) hutchv1.CodeStatus {
	var timeout <-chan time.Time
	if timeoutMs > 0 {
		t := time.NewTimer(time.Duration(timeoutMs) * time.Millisecond)
		defer t.Stop()
		timeout = t.C
	}
	keepAlive := time.NewTicker(s.keepAlive)
	defer keepAlive.Stop()
	var why hutchv1.CodeStatus
	for why == hutchv1.CodeStatus_CODE_STATUS_UNSPECIFIED {
		select {
		case <-finished:
			return why
		case <-keepAlive.C:
			_ = out.emit(&hutchv1.CodeEvent{Event: &hutchv1.CodeEvent_Keepalive{Keepalive: &hutchv1.KeepAlive{}}})
		case <-timeout:
			why = hutchv1.CodeStatus_CODE_STATUS_TIMEOUT
		case <-interrupted:
			why = hutchv1.CodeStatus_CODE_STATUS_INTERRUPTED
		case <-ctx.Done():
			why = hutchv1.CodeStatus_CODE_STATUS_INTERRUPTED
		case <-out.gone:
			why = hutchv1.CodeStatus_CODE_STATUS_INTERRUPTED
		}
	}
	interrupt(k)
	grace := time.NewTimer(interruptGrace)
	defer grace.Stop()
	var again <-chan time.Time
	if r, ok := k.(repeater); ok && r.repeatsInterrupt() {
		t := time.NewTicker(interruptGrace / 12)
		defer t.Stop()
		again = t.C
	}
	for {
		select {
		case <-finished:
			return why
		case <-again:
			interrupt(k)
		case <-grace.C:
			kill()
			return why
		}
	}
}
