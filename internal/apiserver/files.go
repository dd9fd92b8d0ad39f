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

// conn returns the agent for a file call: writes create the sandbox on
// demand; reads of a sandbox that does not exist are not_found.
func (s *Server) conn(ctx context.Context, name string, write bool) (*agentconn.Conn, error) {
	if write {
		_, c, _, err := s.sb.Ensure(ctx, name, sandbox.CreateOptions{})
		return c, err
	}
	return s.sb.Conn(ctx, name)
}

func unary[Req, Resp any](ctx context.Context, s *Server, name string, write bool, req *connect.Request[Req],
	call func(*agentconn.Conn) func(context.Context, *connect.Request[Req]) (*connect.Response[Resp], error)) (*connect.Response[Resp], error) {
	c, err := s.conn(ctx, name, write)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	resp, err := call(c)(ctx, req)
	if err != nil {
		return nil, s.agentError(name, err)
	}
	return resp, nil
}

func (h *fileService) Stat(ctx context.Context, req *connect.Request[hutchv1.StatRequest]) (*connect.Response[hutchv1.StatResponse], error) {
	return unary(ctx, h.s, req.Msg.Sandbox, false, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.StatRequest]) (*connect.Response[hutchv1.StatResponse], error) {
		return c.Files.Stat
	})
}

func (h *fileService) ListDir(ctx context.Context, req *connect.Request[hutchv1.ListDirRequest]) (*connect.Response[hutchv1.ListDirResponse], error) {
	return unary(ctx, h.s, req.Msg.Sandbox, false, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.ListDirRequest]) (*connect.Response[hutchv1.ListDirResponse], error) {
		return c.Files.ListDir
	})
}

func (h *fileService) MakeDir(ctx context.Context, req *connect.Request[hutchv1.MakeDirRequest]) (*connect.Response[hutchv1.MakeDirResponse], error) {
	return unary(ctx, h.s, req.Msg.Sandbox, true, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.MakeDirRequest]) (*connect.Response[hutchv1.MakeDirResponse], error) {
		return c.Files.MakeDir
	})
}

func (h *fileService) Remove(ctx context.Context, req *connect.Request[hutchv1.RemoveRequest]) (*connect.Response[hutchv1.RemoveResponse], error) {
	return unary(ctx, h.s, req.Msg.Sandbox, false, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.RemoveRequest]) (*connect.Response[hutchv1.RemoveResponse], error) {
		return c.Files.Remove
	})
}

func (h *fileService) Rename(ctx context.Context, req *connect.Request[hutchv1.RenameRequest]) (*connect.Response[hutchv1.RenameResponse], error) {
	return unary(ctx, h.s, req.Msg.Sandbox, false, req, func(c *agentconn.Conn) func(context.Context, *connect.Request[hutchv1.RenameRequest]) (*connect.Response[hutchv1.RenameResponse], error) {
		return c.Files.Rename
	})
}

// fileContent relays GET/HEAD/PUT of file contents to the agent, streaming
// both ways so multi-GB files never sit in memory.
func (s *Server) fileContent(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	write := r.Method == http.MethodPut
	if !write && r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD, PUT")
		errdefs.WriteHTTPStatus(w, http.StatusMethodNotAllowed, connect.CodeUnimplemented, "use GET, HEAD or PUT")
		return
	}
	c, err := s.conn(r.Context(), name, write)
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
	resp, err := c.HTTP.Do(req)
	if err != nil {
		if r.Context().Err() == nil {
			s.sb.MarkBroken(name)
		}
		errdefs.WriteHTTPStatus(w, http.StatusServiceUnavailable, connect.CodeUnavailable, "sandbox "+name+": agent unreachable; the sandbox is recovered on the next call")
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
