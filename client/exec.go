package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
)

// Command is one exec.
type Command struct {
	Argv    []string // run directly; or
	Shell   string   // run with sh -c
	Cwd     string
	Env     map[string]string
	Session string // run in this session's shell (see CreateSession)
	Timeout time.Duration
	Stdin   io.Reader // nil: the command reads /dev/null
	Stdout  io.Writer // nil: discarded
	Stderr  io.Writer
	// Started, if set, is called with the exec's id and pid once it runs.
	Started func(id string, pid int)
}

// ExitStatus is how a command ended.
type ExitStatus struct {
	Code     int    // 128+n when killed by signal n
	Signal   string // e.g. "SIGKILL" when killed by a signal
	Duration time.Duration
}

// stdinChunk is the most stdin sent in one call.
const stdinChunk = 256 << 10

// Exec runs a command in the named sandbox (created on demand), streaming
// its output to cmd.Stdout and cmd.Stderr as it arrives. A timeout returns
// an error matching ErrDeadlineExceeded after the process tree was killed.
// When cmd.Stdin cannot be read or delivered, the command is killed (it
// would wait for input that never comes, or act on a part of it) and Exec
// returns that error; a command that ends or closes its stdin before
// reading it all is not a failure, as with os/exec.
func (c *Client) Exec(ctx context.Context, name string, cmd Command) (*ExitStatus, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req := &hutchv1.ExecRequest{
		Sandbox:   name,
		Argv:      cmd.Argv,
		Shell:     cmd.Shell,
		Cwd:       cmd.Cwd,
		Env:       cmd.Env,
		TimeoutMs: cmd.Timeout.Milliseconds(),
		Stdin:     cmd.Stdin != nil,
		Session:   cmd.Session,
	}
	stream, err := c.process.Exec(ctx, connect.NewRequest(req))
	if err != nil {
		return nil, wrap(err)
	}
	defer stream.Close()
	stdinErr := make(chan error, 1) // the pump's failure; it sends at most once
	stdinFailed := func() error {
		select {
		case err := <-stdinErr:
			return fmt.Errorf("exec in %q: stdin: %w", name, err)
		default:
			return nil
		}
	}
	for stream.Receive() {
		switch ev := stream.Msg().Event.(type) {
		case *hutchv1.ExecEvent_Started:
			if cmd.Started != nil {
				cmd.Started(ev.Started.Id, int(ev.Started.Pid))
			}
			if cmd.Stdin != nil {
				// Owned by this call: it ends at EOF, on failure, or when
				// cancel (deferred) stops its WriteStdin.
				go func() {
					if err := c.pumpStdin(ctx, name, ev.Started.Id, cmd.Stdin); err != nil && ctx.Err() == nil {
						stdinErr <- err
						cancel() // ends the stream, which kills the command
					}
				}()
			}
		case *hutchv1.ExecEvent_Stdout:
			if cmd.Stdout != nil {
				if _, err := cmd.Stdout.Write(ev.Stdout); err != nil {
					return nil, fmt.Errorf("write stdout: %w", err)
				}
			}
		case *hutchv1.ExecEvent_Stderr:
			if cmd.Stderr != nil {
				if _, err := cmd.Stderr.Write(ev.Stderr); err != nil {
					return nil, fmt.Errorf("write stderr: %w", err)
				}
			}
		case *hutchv1.ExecEvent_Exit:
			if err := stdinFailed(); err != nil {
				return nil, err
			}
			return &ExitStatus{
				Code:     int(ev.Exit.Code),
				Signal:   ev.Exit.Signal,
				Duration: time.Duration(ev.Exit.DurationMs) * time.Millisecond,
			}, nil
		}
	}
	if err := stdinFailed(); err != nil {
		return nil, err
	}
	if err := stream.Err(); err != nil {
		return nil, wrap(err)
	}
	return nil, fmt.Errorf("exec in %q: stream ended without an exit status: %w", name, ErrUnavailable)
}

// pumpStdin copies r to the exec's stdin, then closes it. It returns nil
// when the command ended (not found) or closed its stdin (failed
// precondition) first: like EPIPE to os/exec, that is the command's choice.
func (c *Client) pumpStdin(ctx context.Context, name, id string, r io.Reader) error {
	buf := make([]byte, stdinChunk)
	for {
		n, rerr := r.Read(buf)
		eof := errors.Is(rerr, io.EOF)
		if n > 0 || eof {
			_, err := c.process.WriteStdin(ctx, connect.NewRequest(&hutchv1.WriteStdinRequest{
				Sandbox: name, Id: id, Data: buf[:n], Eof: eof,
			}))
			if err := wrap(err); errors.Is(err, ErrNotFound) || errors.Is(err, ErrFailedPrecondition) {
				return nil
			} else if err != nil {
				return fmt.Errorf("write: %w", err)
			}
		}
		if rerr != nil {
			if eof {
				return nil
			}
			return fmt.Errorf("read: %w", rerr)
		}
	}
}

// Signal sends a signal (e.g. "SIGINT") to a running exec's process group.
func (c *Client) Signal(ctx context.Context, name, id, signal string) error {
	_, err := c.process.Signal(ctx, connect.NewRequest(&hutchv1.SignalRequest{Sandbox: name, Id: id, Signal: signal}))
	return wrap(err)
}
