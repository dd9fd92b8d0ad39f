package client

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"time"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
)

// Code languages.
const (
	Python     = "python"
	JavaScript = "javascript"
	TypeScript = "typescript"
)

// CodeContextOptions shape a new code context.
type CodeContextOptions struct {
	ID       string // optional; generated when empty
	Language string // python, javascript or typescript
	Cwd      string
	Env      map[string]string
}

// CreateCodeContext creates a code context in the named sandbox (created on
// demand). Its kernel starts on first use.
func (c *Client) CreateCodeContext(ctx context.Context, name string, o CodeContextOptions) (*hutchv1.CodeContext, error) {
	resp, err := c.code.CreateCodeContext(ctx, connect.NewRequest(&hutchv1.CreateCodeContextRequest{
		Sandbox: name, Id: o.ID, Language: o.Language, Cwd: o.Cwd, Env: o.Env,
	}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg, nil
}

// CodeContexts lists a sandbox's code contexts, the default ones included.
func (c *Client) CodeContexts(ctx context.Context, name string) ([]*hutchv1.CodeContext, error) {
	resp, err := c.code.ListCodeContexts(ctx, connect.NewRequest(&hutchv1.ListCodeContextsRequest{Sandbox: name}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg.Contexts, nil
}

// DeleteCodeContext stops a context's kernel and forgets its state.
func (c *Client) DeleteCodeContext(ctx context.Context, name, id string) error {
	_, err := c.code.DeleteCodeContext(ctx, connect.NewRequest(&hutchv1.DeleteCodeContextRequest{Sandbox: name, Id: id}))
	return wrap(err)
}

// InterruptCode stops the context's running cell, keeping its state; it
// reports whether a cell was running.
func (c *Client) InterruptCode(ctx context.Context, name, id string) (bool, error) {
	resp, err := c.code.InterruptCode(ctx, connect.NewRequest(&hutchv1.InterruptCodeRequest{Sandbox: name, Context: id}))
	if err != nil {
		return false, wrap(err)
	}
	return resp.Msg.Interrupted, nil
}

// CodeOptions shape one RunCode.
type CodeOptions struct {
	// Context to run in; empty for the default context of Language.
	Context string
	// Language: required without Context; checked against it otherwise.
	Language string
	// Create the context named Context (of Language) if it does not exist.
	Create  bool
	Timeout time.Duration // interrupts the cell (state is kept); 0 for none
	// Stdout and Stderr, if set, receive output as it is printed.
	Stdout io.Writer
	Stderr io.Writer
	// OnEvent, if set, sees every event as it arrives.
	OnEvent func(*hutchv1.CodeEvent)
}

// Execution is what a cell did.
type Execution struct {
	Context        string
	Status         hutchv1.CodeStatus
	ExecutionCount int
	Stdout         string
	Stderr         string
	Results        []*hutchv1.CodeResult
	Error          *hutchv1.CodeError // set when the cell raised
	Duration       time.Duration
	// Message says what happened for statuses other than OK (an interrupt,
	// a timeout, a kernel that died).
	Message string
	// StateLost is set when the context's kernel had died and was restarted
	// for this cell.
	StateLost bool
}

// Text is the text/plain form of the cell's value ("" when it has none).
func (e *Execution) Text() string {
	for _, r := range e.Results {
		if !r.Display {
			return r.Data["text/plain"]
		}
	}
	return ""
}

// Decode returns a result's data of a binary MIME type (image/png,
// image/jpeg), which travels base64-encoded.
func Decode(r *hutchv1.CodeResult, mime string) ([]byte, error) {
	s, ok := r.Data[mime]
	if !ok {
		return nil, fmt.Errorf("result has no %s: %w", mime, ErrNotFound)
	}
	return base64.StdEncoding.DecodeString(strings.TrimSpace(s))
}

// RunCode runs code in a code context of the named sandbox (created on
// demand), streaming output to o.Stdout and o.Stderr as it is printed. An
// error is returned only when the cell could not run or the stream broke;
// what the cell itself did, errors included, is in the Execution.
func (c *Client) RunCode(ctx context.Context, name, code string, o CodeOptions) (*Execution, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.code.RunCode(ctx, connect.NewRequest(&hutchv1.RunCodeRequest{
		Sandbox: name, Code: code, Context: o.Context, Language: o.Language, Create: o.Create, TimeoutMs: o.Timeout.Milliseconds(),
	}))
	if err != nil {
		return nil, wrap(err)
	}
	defer stream.Close()
	var ex Execution
	var stdout, stderr strings.Builder
	for stream.Receive() {
		ev := stream.Msg()
		if o.OnEvent != nil {
			o.OnEvent(ev)
		}
		switch e := ev.Event.(type) {
		case *hutchv1.CodeEvent_Started:
			ex.Context, ex.StateLost = e.Started.Context, e.Started.StateLost
		case *hutchv1.CodeEvent_Stdout:
			stdout.WriteString(e.Stdout)
			if o.Stdout != nil {
				if _, err := io.WriteString(o.Stdout, e.Stdout); err != nil {
					return nil, fmt.Errorf("write stdout: %w", err)
				}
			}
		case *hutchv1.CodeEvent_Stderr:
			stderr.WriteString(e.Stderr)
			if o.Stderr != nil {
				if _, err := io.WriteString(o.Stderr, e.Stderr); err != nil {
					return nil, fmt.Errorf("write stderr: %w", err)
				}
			}
		case *hutchv1.CodeEvent_Result:
			ex.Results = append(ex.Results, e.Result)
		case *hutchv1.CodeEvent_Error:
			ex.Error = e.Error
		case *hutchv1.CodeEvent_Done:
			ex.Status, ex.ExecutionCount = e.Done.Status, int(e.Done.ExecutionCount)
			ex.Duration, ex.Message = time.Duration(e.Done.DurationMs)*time.Millisecond, e.Done.Message
			ex.Stdout, ex.Stderr = stdout.String(), stderr.String()
			return &ex, nil
		}
	}
	if err := stream.Err(); err != nil {
		return nil, wrap(err)
	}
	return nil, fmt.Errorf("run code in %q: stream ended before the cell was done: %w", name, ErrUnavailable)
}
