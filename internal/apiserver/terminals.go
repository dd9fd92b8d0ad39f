package apiserver

import (
	"context"
	"net/http"
	"net/http/httputil"
	"net/url"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agentapi"
	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// Terminals live in the agent; the daemon forwards the calls and relays
// the WebSocket. Creating one creates the sandbox on demand.
type terminals struct{ s *Server }

var _ hutchv1connect.TerminalServiceHandler = (*terminals)(nil)

func (h *terminals) CreateTerminal(ctx context.Context, req *connect.Request[hutchv1.CreateTerminalRequest]) (*connect.Response[hutchv1.TerminalInfo], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Adding, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.CreateTerminalRequest]) (*connect.Response[hutchv1.TerminalInfo], error) {
		return c.Terminal.CreateTerminal
	})
}

func (h *terminals) ListTerminals(ctx context.Context, req *connect.Request[hutchv1.ListTerminalsRequest]) (*connect.Response[hutchv1.ListTerminalsResponse], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Existing, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.ListTerminalsRequest]) (*connect.Response[hutchv1.ListTerminalsResponse], error) {
		return c.Terminal.ListTerminals
	})
}

func (h *terminals) CloseTerminal(ctx context.Context, req *connect.Request[hutchv1.CloseTerminalRequest]) (*connect.Response[hutchv1.CloseTerminalResponse], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Existing, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.CloseTerminalRequest]) (*connect.Response[hutchv1.CloseTerminalResponse], error) {
		return c.Terminal.CloseTerminal
	})
}

// terminalSocket relays a terminal WebSocket to the sandbox's agent, which
// answers an unknown terminal with 404 and a plain request with 426.
// Browsers cannot set headers on a WebSocket: they pass the API key as
// ?token=. A page from another origin never gets here (Server.admit), so
// no web site can open a shell in a sandbox through a user's browser.
func (s *Server) terminalSocket(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if tok := q.Get("token"); tok != "" && r.Header.Get("Authorization") == "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	s.requireKey(func(w http.ResponseWriter, r *http.Request) {
		name, id := r.PathValue("name"), r.PathValue("id")
		c, err := s.gw.Agent(r.Context(), name, sandbox.Existing)
		if err != nil {
			errdefs.WriteHTTP(w, err)
			return
		}
		s.gw.Proxy(c, name, func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Path, pr.Out.URL.RawPath, pr.Out.URL.RawQuery = agentapi.TerminalPath+url.PathEscape(id), "", ""
			pr.Out.Header.Del("Authorization")
			pr.Out.Header.Del("Origin")
		}).ServeHTTP(w, r)
	})(w, r)
}
