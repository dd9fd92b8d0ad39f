// Package agentconn is the daemon's way to sandboxes' agents: a Conn to
// one agent over its unix socket, and the Gateway every call to an agent
// goes through, which owns what happens when an agent cannot be reached.
package agentconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"connectrpc.com/connect"

	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agentapi/tunnel"
)

// BaseURL is the URL prefix for requests to the agent; the host is ignored.
const BaseURL = "http://agent"

// Conn holds the clients of one agent.
type Conn struct {
	HTTP     *http.Client
	Process  hutchv1connect.ProcessServiceClient
	Files    hutchv1connect.FileServiceClient
	Terminal hutchv1connect.TerminalServiceClient
	Watch    hutchv1connect.WatchServiceClient
	Code     hutchv1connect.CodeServiceClient
	socket   string
	act      *activity
}

// New returns a Conn to the agent serving on socket. It does not dial.
func New(socket string) *Conn {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	act := &activity{}
	hc := &http.Client{Transport: counting{act: act, next: tr}}
	// No gzip: output is mostly already streamed in large chunks over a local socket.
	opts := []connect.ClientOption{connect.WithAcceptCompression("gzip", nil, nil)}
	return &Conn{
		HTTP:     hc,
		Process:  hutchv1connect.NewProcessServiceClient(hc, BaseURL, opts...),
		Files:    hutchv1connect.NewFileServiceClient(hc, BaseURL, opts...),
		Terminal: hutchv1connect.NewTerminalServiceClient(hc, BaseURL, opts...),
		Watch:    hutchv1connect.NewWatchServiceClient(hc, BaseURL, opts...),
		Code:     hutchv1connect.NewCodeServiceClient(hc, BaseURL, opts...),
		socket:   socket,
		act:      act,
	}
}

// Close drops idle connections.
func (c *Conn) Close() { c.HTTP.CloseIdleConnections() }

// Ping requests do not count as activity: a health check must not keep a
// sandbox awake.
func (c *Conn) rawTransport() http.RoundTripper {
	if t, ok := c.HTTP.Transport.(counting); ok {
		return t.next
	}
	return c.HTTP.Transport
}

// Listen binds a unix socket at path for an agent and returns it as a file
// to pass to the agent; the socket stays bound when the file is closed.
func Listen(path string) (*os.File, error) {
	_ = os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("agent socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	defer ln.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, err
	}
	return ln.File()
}

// Ping waits until the agent answers on its socket.
func (c *Conn) Ping(ctx context.Context) error {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, BaseURL+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := c.rawTransport().RoundTrip(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		// The agent may still be starting: retry until ctx ends.
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(time.Millisecond):
		}
	}
}

// Broken reports whether err means the agent could not be reached (as
// opposed to an error the agent returned).
func Broken(err error) bool {
	return connect.CodeOf(err) == connect.CodeUnavailable
}

// DialTunnel opens a byte stream to port inside the sandbox, through the
// agent (see package tunnel).
func (c *Conn) DialTunnel(ctx context.Context, port int) (net.Conn, error) {
	c.act.begin()
	nc, err := tunnel.Dial(ctx, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", c.socket)
	}, port)
	if err != nil {
		c.act.end()
		return nil, err
	}
	return &countedConn{Conn: nc, act: c.act}, nil
}
