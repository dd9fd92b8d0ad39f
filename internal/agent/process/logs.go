package process

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// logChunk is the most output sent in one log event.
const logChunk = 256 << 10

// ProcessLogs streams what the process's rings hold from the requested
// offsets, then, with follow, live output until it ends; an exit event
// closes the stream of an ended process.
func (s *Service) ProcessLogs(ctx context.Context, req *connect.Request[hutchv1.ProcessLogsRequest], stream *connect.ServerStream[hutchv1.ProcessLogEvent]) error {
	err := s.logs(ctx, req.Msg, stream.Send)
	return errdefs.ToConnect(err)
}

func (s *Service) logs(ctx context.Context, r *hutchv1.ProcessLogsRequest, send func(*hutchv1.ProcessLogEvent) error) error {
	if r.StdoutOffset < 0 || r.StderrOffset < 0 {
		return fmt.Errorf("logs of process %q: negative offset: %w", r.Id, errdefs.ErrInvalidArgument)
	}
	p, err := s.procs.Get(r.Id)
	if err != nil {
		return err
	}
	p.mu.Lock()
	// Without follow, send only what is there now, even if more comes, and
	// the exit event only if the process had ended by now.
	outEnd, errEnd, endedNow := p.stdout.End(), p.stderr.End(), p.ended
	p.mu.Unlock()
	// An offset past the end (say, of an earlier process with this id)
	// starts at the end.
	outOff, errOff := min(r.StdoutOffset, outEnd), min(r.StderrOffset, errEnd)
	if r.FromNow {
		outOff, errOff = outEnd, errEnd
	}

	keepAlive := time.NewTimer(s.limits.keepAlive)
	defer keepAlive.Stop()
	for {
		p.mu.Lock()
		outLimit, errLimit, ended := p.stdout.End(), p.stderr.End(), p.ended
		if !r.Follow {
			outLimit, errLimit, ended = outEnd, errEnd, endedNow
		}
		out, outAt, outTrunc := p.stdout.Read(outOff, int(min(logChunk, max(0, outLimit-outOff))))
		errb, errAt, errTrunc := p.stderr.Read(errOff, int(min(logChunk, max(0, errLimit-errOff))))
		var exit *hutchv1.ProcessInfo
		if ended {
			exit = p.infoLocked()
		}
		changed := p.changed
		p.mu.Unlock()

		if len(out) > 0 {
			if err := send(&hutchv1.ProcessLogEvent{Event: &hutchv1.ProcessLogEvent_Stdout{Stdout: &hutchv1.LogChunk{Offset: outAt, Data: out, Truncated: outTrunc}}}); err != nil {
				return err
			}
			outOff = outAt + int64(len(out))
		}
		if len(errb) > 0 {
			if err := send(&hutchv1.ProcessLogEvent{Event: &hutchv1.ProcessLogEvent_Stderr{Stderr: &hutchv1.LogChunk{Offset: errAt, Data: errb, Truncated: errTrunc}}}); err != nil {
				return err
			}
			errOff = errAt + int64(len(errb))
		}
		if len(out) > 0 || len(errb) > 0 {
			keepAlive.Reset(s.limits.keepAlive)
			continue // there may be more before waiting
		}
		if ended {
			return send(&hutchv1.ProcessLogEvent{Event: &hutchv1.ProcessLogEvent_Exit{Exit: exit}})
		}
		if !r.Follow {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-keepAlive.C:
			if err := send(&hutchv1.ProcessLogEvent{Event: &hutchv1.ProcessLogEvent_Keepalive{Keepalive: &hutchv1.KeepAlive{}}}); err != nil {
				return err
			}
			keepAlive.Reset(s.limits.keepAlive)
		}
	}
}
