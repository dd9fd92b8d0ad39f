package agentconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"

	"connectrpc.com/connect"

	"github.com/hutch-sh/hutch/internal/agentapi/envelope"
	"github.com/hutch-sh/hutch/internal/agentapi/tunnel"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// Sandboxes is what the gateway needs of the sandbox manager.
type Sandboxes interface {
	// Agent returns the agent of sandbox name for a call that does a.
	Agent(ctx context.Context, name string, a sandbox.Access) (*Conn, error)
	// MarkBroken has the sandbox checked, and recovered, on its next use.
	MarkBroken(name string)
}

// Gateway is the daemon's one way to sandboxes' agents: Connect calls and
// streams, raw envelopes, plain HTTP, WebSocket upgrades and tunnels all go
// through it, so the rule for an agent that cannot be reached (the sandbox
// is marked broken and the caller told unavailable) is written once.
// Errors it returns carry errdefs categories; the agent's own errors pass
// through unchanged.
type Gateway struct{ sb Sandboxes }

// NewGateway returns a gateway to the agents of sb's sandboxes.
func NewGateway(sb Sandboxes) *Gateway { return &Gateway{sb: sb} }

// Agent returns the agent of sandbox name for a call that does a.
func (g *Gateway) Agent(ctx context.Context, name string, a sandbox.Access) (*Conn, error) {
	return g.sb.Agent(ctx, name, a)
}

// Fail applies the policy to an error from a call to name's agent: a
// canceled call is the caller's doing; an agent that could not be reached,
// or whose answer broke off, marks the sandbox broken and is unavailable;
// anything else the agent said passes through.
func (g *Gateway) Fail(name string, err error) error {
	if err == nil || errors.Is(err, context.Canceled) || connect.CodeOf(err) == connect.CodeCanceled {
		return err
	}
	if Broken(err) || errors.Is(err, io.ErrUnexpectedEOF) {
		return g.unreachable(name, err)
	}
	return err
}

// Cut applies the policy to a stream from name's agent that ended before
// its last event (missing says which, e.g. "without an exit status"): it
// broke, so the caller is told unavailable, never success, and the sandbox
// is checked on its next use. cause is why it ended, when known.
func (g *Gateway) Cut(name string, cause error, missing string) error {
	g.sb.MarkBroken(name)
	if cause != nil {
		return fmt.Errorf("sandbox %q: the agent's stream ended %s: %w: %w", name, missing, text(cause), errdefs.ErrUnavailable)
	}
	return fmt.Errorf("sandbox %q: the agent's stream ended %s: %w", name, missing, errdefs.ErrUnavailable)
}

// unreachable marks name broken and says so.
func (g *Gateway) unreachable(name string, cause error) error {
	g.sb.MarkBroken(name)
	return fmt.Errorf("sandbox %q: agent unreachable; the sandbox is recovered on the next call: %w: %w", name, text(cause), errdefs.ErrUnavailable)
}

// text keeps a connect error's message but not the error: wrapped, the
// agent's own error would stand for the whole on the wire.
func text(err error) error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return errors.New(ce.Message())
	}
	return err
}

// Unary forwards one Connect call to name's agent. The agent gets the
// message only: the client's headers (its API key, the encodings it
// accepts) stay in the daemon.
func Unary[Req, Resp any](ctx context.Context, g *Gateway, name string, a sandbox.Access, req *connect.Request[Req],
	call func(*Conn) func(context.Context, *connect.Request[Req]) (*connect.Response[Resp], error)) (*connect.Response[Resp], error) {
	c, err := g.Agent(ctx, name, a)
	if err != nil {
		return nil, err
	}
	resp, err := call(c)(ctx, connect.NewRequest(req.Msg))
	if err != nil {
		return nil, g.Fail(name, err)
	}
	return resp, nil
}

// Stream forwards a server-stream call to name's agent and relays its
// events to send. final tells the event that ends a stream that did not
// break (nil when any end is fine); a stream that ends without one is Cut,
// missing saying what it lacked. As with Unary, only the message goes.
func Stream[Req, Ev any](ctx context.Context, g *Gateway, name string, a sandbox.Access, req *connect.Request[Req],
	call func(*Conn) func(context.Context, *connect.Request[Req]) (*connect.ServerStreamForClient[Ev], error),
	send func(*Ev) error, final func(*Ev) bool, missing string) error {
	c, err := g.Agent(ctx, name, a)
	if err != nil {
		return err
	}
	in, err := call(c)(ctx, connect.NewRequest(req.Msg))
	if err != nil {
		return g.Fail(name, err)
	}
	defer in.Close()
	ended := final == nil
	for in.Receive() {
		ev := in.Msg()
		ended = ended || final(ev)
		if err := send(ev); err != nil {
			return err
		}
	}
	if err := in.Err(); err != nil {
		if !ended && errors.Is(err, io.ErrUnexpectedEOF) {
			return g.Cut(name, err, missing)
		}
		return g.Fail(name, err)
	}
	if !ended {
		return g.Cut(name, nil, missing)
	}
	return nil
}

// Envelopes relays a server-stream call whose request envelope is env to
// procedure on name's agent, copying the agent's response envelopes to w
// as they are (never decoded). It returns the error to end the stream
// with; nil when the agent's own end went through.
func (g *Gateway) Envelopes(w http.ResponseWriter, r *http.Request, c *Conn, name, procedure string, env []byte) error {
	areq, err := http.NewRequestWithContext(r.Context(), http.MethodPost, BaseURL+procedure, bytes.NewReader(env))
	if err != nil {
		return err
	}
	areq.Header.Set("Content-Type", envelope.ContentType)
	areq.Header.Set("Connect-Protocol-Version", "1")
	if t := r.Header.Get("Connect-Timeout-Ms"); t != "" {
		areq.Header.Set("Connect-Timeout-Ms", t)
	}
	resp, err := c.HTTP.Do(areq)
	if err != nil {
		return g.transport(r.Context(), name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sandbox %q: agent answered %s: %w", name, resp.Status, errdefs.ErrUnavailable)
	}
	w.WriteHeader(http.StatusOK)
	ended, err := envelope.Copy(w, resp.Body)
	if ended || r.Context().Err() != nil {
		return nil
	}
	return g.Cut(name, err, "without an exit status")
}

// transport applies the policy to a request that never got an answer from
// name's agent: unless the caller went away, the agent is unreachable.
func (g *Gateway) transport(ctx context.Context, name string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("sandbox %q: %w", name, context.Cause(ctx))
	}
	return g.unreachable(name, err)
}

// Do sends a plain HTTP request to name's agent.
func (g *Gateway) Do(ctx context.Context, c *Conn, name string, req *http.Request) (*http.Response, error) {
	resp, err := c.HTTP.Do(req.WithContext(ctx))
	if err != nil {
		return nil, g.transport(ctx, name, err)
	}
	return resp, nil
}

// Proxy returns a reverse proxy to name's agent (WebSocket upgrades
// included); rewrite sets the path on the agent.
func (g *Gateway) Proxy(c *Conn, name string, rewrite func(*httputil.ProxyRequest)) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "agent"
			rewrite(pr)
		},
		Transport: c.HTTP.Transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return
			}
			errdefs.WriteHTTP(w, g.transport(r.Context(), name, err))
		},
	}
}

// DialTunnel opens a byte stream to port inside sandbox name. A port the
// agent refuses (nothing listens on it) is the app's business, not a
// broken sandbox: only an agent that does not answer marks it broken.
func (g *Gateway) DialTunnel(ctx context.Context, name string, port int) (net.Conn, error) {
	c, err := g.Agent(ctx, name, sandbox.Existing)
	if err != nil {
		return nil, err
	}
	nc, err := c.DialTunnel(ctx, port)
	var answered *tunnel.Error
	switch {
	case err == nil:
		return nc, nil
	case errors.As(err, &answered):
		return nil, err
	case ctx.Err() != nil:
		return nil, errors.Join(err, ctx.Err())
	}
	return nil, g.unreachable(name, err)
}
