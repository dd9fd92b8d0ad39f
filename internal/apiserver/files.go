package apiserver

import (
	"context"
	"io"
	"net/http"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agentapi"
	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

type fileService struct{ s *Server }

var _ hutchv1connect.FileServiceHandler = (*fileService)(nil)

func (h *fileService) Stat(ctx context.Context, req *connect.Request[hutchv1.StatRequest]) (*connect.Response[hutchv1.StatResponse], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Existing, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.StatRequest]) (*connect.Response[hutchv1.StatResponse], error) {
		return c.Files.Stat
	})
}

func (h *fileService) ListDir(ctx context.Context, req *connect.Request[hutchv1.ListDirRequest]) (*connect.Response[hutchv1.ListDirResponse], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Existing, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.ListDirRequest]) (*connect.Response[hutchv1.ListDirResponse], error) {
		return c.Files.ListDir
	})
}

func (h *fileService) MakeDir(ctx context.Context, req *connect.Request[hutchv1.MakeDirRequest]) (*connect.Response[hutchv1.MakeDirResponse], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Adding, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.MakeDirRequest]) (*connect.Response[hutchv1.MakeDirResponse], error) {
		return c.Files.MakeDir
	})
}

func (h *fileService) Remove(ctx context.Context, req *connect.Request[hutchv1.RemoveRequest]) (*connect.Response[hutchv1.RemoveResponse], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Existing, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.RemoveRequest]) (*connect.Response[hutchv1.RemoveResponse], error) {
		return c.Files.Remove
	})
}

func (h *fileService) Rename(ctx context.Context, req *connect.Request[hutchv1.RenameRequest]) (*connect.Response[hutchv1.RenameResponse], error) {
	return agentconn.Unary(ctx, h.s.gw, req.Msg.Sandbox, sandbox.Existing, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.RenameRequest]) (*connect.Response[hutchv1.RenameResponse], error) {
		return c.Files.Rename
	})
}

// fileContent relays GET/HEAD/PUT of file contents to the agent, streaming
// both ways so multi-GB files never sit in memory. A PUT adds a file, so it
// creates the sandbox on demand.
func (s *Server) fileContent(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	access := sandbox.Existing
	switch r.Method {
	case http.MethodPut:
		access = sandbox.Adding
	case http.MethodGet, http.MethodHead:
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT")
		errdefs.WriteHTTPStatus(w, http.StatusMethodNotAllowed, connect.CodeUnimplemented, "use GET, HEAD or PUT")
		return
	}
	c, err := s.gw.Agent(r.Context(), name, access)
	if err != nil {
		errdefs.WriteHTTP(w, err)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, agentconn.BaseURL+agentapi.FilesPath+"?"+r.URL.RawQuery, r.Body)
	if err != nil {
		errdefs.WriteHTTP(w, err)
		return
	}
	req.ContentLength = r.ContentLength
	for _, h := range []string{"Content-Type", "Range", "If-Modified-Since", "If-Range"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := s.gw.Do(r.Context(), c, name, req)
	if err != nil {
		errdefs.WriteHTTP(w, err)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	buf := make([]byte, 1<<20)
	_, _ = io.CopyBuffer(w, resp.Body, buf)
}
