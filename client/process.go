package client

import (
	"context"
	"fmt"
	"io"
	"time"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
)

// ProcessOptions shape a background process.
type ProcessOptions struct {
	ID    string // optional; generated when empty
	Shell string // run with sh -c instead of argv
	Cwd   string
	Env   map[string]string
}

// StartProcess starts a background process in the named sandbox (created
// on demand) and returns at once.
func (c *Client) StartProcess(ctx context.Context, name string, argv []string, o ProcessOptions) (*hutchv1.ProcessInfo, error) {
	resp, err := c.process.StartProcess(ctx, connect.NewRequest(&hutchv1.StartProcessRequest{
		Sandbox: name, Id: o.ID, Argv: argv, Shell: o.Shell, Cwd: o.Cwd, Env: o.Env,
	}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg, nil
}

// Processes lists a sandbox's background processes, running and ended.
func (c *Client) Processes(ctx context.Context, name string) ([]*hutchv1.ProcessInfo, error) {
	resp, err := c.process.ListProcesses(ctx, connect.NewRequest(&hutchv1.ListProcessesRequest{Sandbox: name}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg.Processes, nil
}

// Process reports one background process.
func (c *Client) Process(ctx context.Context, name, id string) (*hutchv1.ProcessInfo, error) {
	resp, err := c.process.GetProcess(ctx, connect.NewRequest(&hutchv1.ProcessRef{Sandbox: name, Id: id}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg, nil
}

// KillProcess signals a process's whole tree (SIGTERM when signal is empty)
// and SIGKILLs what is left after grace (5 s when zero); it returns once the
// process has ended.
func (c *Client) KillProcess(ctx context.Context, name, id, signal string, grace time.Duration) (*hutchv1.ProcessInfo, error) {
	resp, err := c.process.KillProcess(ctx, connect.NewRequest(&hutchv1.KillProcessRequest{
		Sandbox: name, Id: id, Signal: signal, GraceMs: grace.Milliseconds(),
	}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg, nil
}

// KillAllProcesses kills every running background process of a sandbox.
func (c *Client) KillAllProcesses(ctx context.Context, name string) (int, error) {
	resp, err := c.process.KillAllProcesses(ctx, connect.NewRequest(&hutchv1.KillAllProcessesRequest{Sandbox: name}))
	if err != nil {
		return 0, wrap(err)
	}
	return int(resp.Msg.Killed), nil
}

// LogOptions shape ProcessLogs.
type LogOptions struct {
	Follow       bool // keep streaming until the process ends
	FromNow      bool // skip output already printed
	StdoutOffset int64
	StderrOffset int64
	Stdout       io.Writer
	Stderr       io.Writer
}

// LogPosition is where a log stream got to: pass it back as offsets to
// resume without duplicates.
type LogPosition struct {
	Stdout, Stderr int64
	Truncated      bool // some requested output was no longer kept
}

// ProcessLogs copies a process's output to o.Stdout and o.Stderr. It
// returns the process's final info when the process has ended (nil while it
// runs, without Follow) and the position reached.
func (c *Client) ProcessLogs(ctx context.Context, name, id string, o LogOptions) (*hutchv1.ProcessInfo, LogPosition, error) {
	pos := LogPosition{Stdout: o.StdoutOffset, Stderr: o.StderrOffset}
	stream, err := c.process.ProcessLogs(ctx, connect.NewRequest(&hutchv1.ProcessLogsRequest{
		Sandbox: name, Id: id, Follow: o.Follow, FromNow: o.FromNow,
		StdoutOffset: o.StdoutOffset, StderrOffset: o.StderrOffset,
	}))
	if err != nil {
		return nil, pos, wrap(err)
	}
	defer stream.Close()
	write := func(w io.Writer, ch *hutchv1.LogChunk, at *int64) error {
		pos.Truncated = pos.Truncated || ch.Truncated
		*at = ch.Offset + int64(len(ch.Data))
		if w == nil {
			return nil
		}
		_, err := w.Write(ch.Data)
		return err
	}
	var exit *hutchv1.ProcessInfo
	for stream.Receive() {
		switch ev := stream.Msg().Event.(type) {
		case *hutchv1.ProcessLogEvent_Stdout:
			err = write(o.Stdout, ev.Stdout, &pos.Stdout)
		case *hutchv1.ProcessLogEvent_Stderr:
			err = write(o.Stderr, ev.Stderr, &pos.Stderr)
		case *hutchv1.ProcessLogEvent_Exit:
			exit = ev.Exit
		}
		if err != nil {
			return nil, pos, fmt.Errorf("write logs: %w", err)
		}
	}
	if err := stream.Err(); err != nil {
		return nil, pos, wrap(err)
	}
	return exit, pos, nil
}

// WaitForLog waits until a line of the process's output matches pattern
// (RE2), counting lines already printed, and returns the line.
func (c *Client) WaitForLog(ctx context.Context, name, id, pattern string, timeout time.Duration) (string, error) {
	resp, err := c.wait(ctx, &hutchv1.WaitProcessRequest{Sandbox: name, Id: id, Condition: &hutchv1.WaitProcessRequest_Log{Log: pattern}, TimeoutMs: timeout.Milliseconds()})
	if err != nil {
		return "", err
	}
	return resp.Line, nil
}

// PortOptions shape WaitForPort; the zero value waits for a TCP connect.
type PortOptions struct {
	HTTP      bool   // wait for an HTTP answer instead
	Path      string // default "/"
	StatusMin int    // default 200
	StatusMax int    // default 399
}

// WaitForPort waits until the sandbox accepts connections on port (or
// answers HTTP there, with o.HTTP).
func (c *Client) WaitForPort(ctx context.Context, name, id string, port int, o PortOptions, timeout time.Duration) error {
	mode := "tcp"
	if o.HTTP {
		mode = "http"
	}
	_, err := c.wait(ctx, &hutchv1.WaitProcessRequest{Sandbox: name, Id: id, TimeoutMs: timeout.Milliseconds(),
		Condition: &hutchv1.WaitProcessRequest_Port{Port: &hutchv1.PortCondition{
			Port: int32(port), Mode: mode, Path: o.Path, StatusMin: int32(o.StatusMin), StatusMax: int32(o.StatusMax),
		}}})
	return err
}

// WaitForExit waits until the process ends and returns its final info.
func (c *Client) WaitForExit(ctx context.Context, name, id string, timeout time.Duration) (*hutchv1.ProcessInfo, error) {
	resp, err := c.wait(ctx, &hutchv1.WaitProcessRequest{Sandbox: name, Id: id, Condition: &hutchv1.WaitProcessRequest_Exit{Exit: true}, TimeoutMs: timeout.Milliseconds()})
	if err != nil {
		return nil, err
	}
	return resp.Process, nil
}

func (c *Client) wait(ctx context.Context, req *hutchv1.WaitProcessRequest) (*hutchv1.WaitProcessResponse, error) {
	resp, err := c.process.WaitProcess(ctx, connect.NewRequest(req))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg, nil
}
