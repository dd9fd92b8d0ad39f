// Package files is the agent's file service: the FileService RPCs and the
// plain-HTTP content handler, with every path resolved inside one root so
// that neither ".." nor symlinks reach outside it.
package files

import (
	"context"
	"log/slog"
	"path/filepath"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// defaultMaxEntries caps ListDir so a huge tree fails instead of eating memory.
const defaultMaxEntries = 100_000

// Service implements hutchv1connect.FileServiceHandler and serves file
// contents over plain HTTP (see ContentHandler).
type Service struct {
	root       string
	log        *slog.Logger
	maxEntries int
}

var _ hutchv1connect.FileServiceHandler = (*Service)(nil)

// New returns a Service for the sandbox whose filesystem is root: "/" inside
// a sandbox, any directory in tests.
func New(root string, log *slog.Logger) *Service {
	return &Service{root: filepath.Clean(root), log: log, maxEntries: defaultMaxEntries}
}

func (s *Service) Stat(ctx context.Context, req *connect.Request[hutchv1.StatRequest]) (*connect.Response[hutchv1.StatResponse], error) {
	res, err := s.stat(req.Msg.GetPath())
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(res), nil
}

func (s *Service) ListDir(ctx context.Context, req *connect.Request[hutchv1.ListDirRequest]) (*connect.Response[hutchv1.ListDirResponse], error) {
	m := req.Msg
	entries, err := s.listDir(ctx, m.GetPath(), m.GetRecursive(), m.GetExcludeHidden())
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(&hutchv1.ListDirResponse{Entries: entries}), nil
}

func (s *Service) MakeDir(ctx context.Context, req *connect.Request[hutchv1.MakeDirRequest]) (*connect.Response[hutchv1.MakeDirResponse], error) {
	m := req.Msg
	if err := s.makeDir(m.GetPath(), m.GetParents(), m.GetMode()); err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(&hutchv1.MakeDirResponse{}), nil
}

func (s *Service) Remove(ctx context.Context, req *connect.Request[hutchv1.RemoveRequest]) (*connect.Response[hutchv1.RemoveResponse], error) {
	m := req.Msg
	if err := s.remove(ctx, m.GetPath(), m.GetRecursive()); err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(&hutchv1.RemoveResponse{}), nil
}

func (s *Service) Rename(ctx context.Context, req *connect.Request[hutchv1.RenameRequest]) (*connect.Response[hutchv1.RenameResponse], error) {
	m := req.Msg
	if err := s.rename(ctx, m.GetFrom(), m.GetTo(), m.GetOverwrite()); err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(&hutchv1.RenameResponse{}), nil
}
