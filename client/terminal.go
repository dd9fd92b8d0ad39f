package client

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"sync"

	"connectrpc.com/connect"
	"github.com/coder/websocket"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agentapi/termwire"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// TerminalOptions shape a new terminal.
type TerminalOptions struct {
	ID         string   // optional; generated when empty
	Argv       []string // default: bash -l
	Cwd        string
	Env        map[string]string
	Cols, Rows int // default 80x24
}

// CreateTerminal starts a shell on a real PTY in the named sandbox (created
// on demand). Attach to it with AttachTerminal, as often as you like.
func (c *Client) CreateTerminal(ctx context.Context, name string, o TerminalOptions) (*hutchv1.TerminalInfo, error) {
	resp, err := c.terminals.CreateTerminal(ctx, connect.NewRequest(&hutchv1.CreateTerminalRequest{
		Sandbox: name, Id: o.ID, Argv: o.Argv, Cwd: o.Cwd, Env: o.Env, Cols: uint32(max(o.Cols, 0)), Rows: uint32(max(o.Rows, 0)),
	}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg, nil
}

// Terminals lists a sandbox's terminals, running and recently exited.
func (c *Client) Terminals(ctx context.Context, name string) ([]*hutchv1.TerminalInfo, error) {
	resp, err := c.terminals.ListTerminals(ctx, connect.NewRequest(&hutchv1.ListTerminalsRequest{Sandbox: name}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg.Terminals, nil
}

// CloseTerminal kills a terminal's shell and everything it started.
func (c *Client) CloseTerminal(ctx context.Context, name, id string) error {
	_, err := c.terminals.CloseTerminal(ctx, connect.NewRequest(&hutchv1.CloseTerminalRequest{Sandbox: name, Id: id}))
	return wrap(err)
}

// TerminalURL is the WebSocket URL of a terminal (ws:// or wss://).
func (c *Client) TerminalURL(name, id string) string {
	u := c.base + "/v1/sandboxes/" + url.PathEscape(name) + "/terminals/" + url.PathEscape(id)
	if rest, ok := cutScheme(u, "https://"); ok {
		return "wss://" + rest
	}
	if rest, ok := cutScheme(u, "http://"); ok {
		return "ws://" + rest
	}
	return u
}

func cutScheme(u, scheme string) (string, bool) {
	if len(u) >= len(scheme) && u[:len(scheme)] == scheme {
		return u[len(scheme):], true
	}
	return "", false
}

// Terminal is one attached client of a terminal: Read its output (first
// what it kept, then live), Write keystrokes, Resize it. Read returns io.EOF
// once the shell has exited; Wait then tells the exit code.
type Terminal struct {
	ws     *websocket.Conn
	out    *io.PipeReader
	errs   chan string
	ready  chan struct{}
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	code *int
	err  error // why the connection ended without an exit
}

// AttachTerminal connects to a terminal; ErrNotFound if there is none with
// this id. Close the Terminal when done: the shell keeps running.
func (c *Client) AttachTerminal(ctx context.Context, name, id string) (*Terminal, error) {
	ws, resp, err := websocket.Dial(ctx, c.TerminalURL(name, id), &websocket.DialOptions{HTTPClient: c.hc})
	if err != nil {
		if resp != nil {
			if herr := errdefs.FromHTTP(resp); herr != nil {
				return nil, herr
			}
		}
		return nil, fmt.Errorf("attach terminal %q: %w: %w", id, err, ErrUnavailable)
	}
	ws.SetReadLimit(-1)
	rctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	t := &Terminal{ws: ws, out: pr, errs: make(chan string, 16), ready: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go t.read(rctx, pw)
	select {
	case <-t.ready:
		return t, nil
	case <-t.done:
		t.Close()
		_, err := t.Wait()
		if err == nil {
			err = fmt.Errorf("attach terminal %q: closed before it was ready: %w", id, ErrUnavailable)
		}
		return nil, err
	case <-ctx.Done():
		t.Close()
		return nil, ctx.Err()
	}
}

// read receives frames until the connection ends: output into the pipe,
// control frames into the Terminal's state.
func (t *Terminal) read(ctx context.Context, pw *io.PipeWriter) {
	defer close(t.done)
	readyOnce := sync.OnceFunc(func() { close(t.ready) })
	for {
		typ, b, err := t.ws.Read(ctx)
		if err != nil {
			t.mu.Lock()
			if t.code == nil {
				t.err = fmt.Errorf("terminal connection broke: %w: %w", err, ErrUnavailable)
				pw.CloseWithError(t.err)
			} else {
				pw.Close()
			}
			t.mu.Unlock()
			return
		}
		if typ == websocket.MessageBinary {
			if _, err := pw.Write(b); err != nil {
				return // closed by the reader
			}
			continue
		}
		m, err := termwire.Parse(b)
		if err != nil {
			continue
		}
		switch m.Type {
		case termwire.TypeReady:
			readyOnce()
		case termwire.TypeExit:
			t.mu.Lock()
			t.code = m.Code
			t.mu.Unlock()
			pw.Close()
		case termwire.TypeError:
			select {
			case t.errs <- m.Message:
			default: // nobody listens: drop
			}
		}
	}
}

// Read reads output.
func (t *Terminal) Read(p []byte) (int, error) { return t.out.Read(p) }

// Write sends keystrokes (or any bytes) to the shell.
func (t *Terminal) Write(p []byte) (int, error) {
	if err := t.ws.Write(context.Background(), websocket.MessageBinary, p); err != nil {
		return 0, fmt.Errorf("terminal write: %w: %w", err, ErrUnavailable)
	}
	return len(p), nil
}

// Resize sets the terminal's size (clamped by the server).
func (t *Terminal) Resize(ctx context.Context, cols, rows int) error {
	if err := t.ws.Write(ctx, websocket.MessageText, termwire.Resize(cols, rows)); err != nil {
		return fmt.Errorf("terminal resize: %w: %w", err, ErrUnavailable)
	}
	return nil
}

// SendControl sends a raw text frame, as a client of the WebSocket
// protocol may; the server answers what it does not understand with an
// error (see Errors).
func (t *Terminal) SendControl(ctx context.Context, frame []byte) error {
	return t.ws.Write(ctx, websocket.MessageText, frame)
}

// Errors receives the server's error frames (about malformed input).
func (t *Terminal) Errors() <-chan string { return t.errs }

// Wait waits until the connection ends and returns the shell's exit code,
// or an error when the connection ended without one.
func (t *Terminal) Wait() (int, error) {
	<-t.done
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.code != nil {
		return *t.code, nil
	}
	return 0, t.err
}

// Close detaches this client; the terminal keeps running.
func (t *Terminal) Close() error {
	t.out.Close() // unblocks the reader if nobody reads the output
	_ = t.ws.Close(websocket.StatusNormalClosure, "")
	t.cancel()
	<-t.done
	return nil
}
