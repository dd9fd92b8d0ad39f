package apiserver

import (
	"context"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/backup"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/manager"
)

// Roots is what backups need of the sandbox manager: a sandbox's mounted
// root, held while it is read or written.
type Roots interface {
	Root(ctx context.Context, name string, create bool) (string, func(), error)
}

var _ Roots = (*manager.Manager)(nil)

type backups struct {
	roots Roots
	st    *backup.Store
}

var _ hutchv1connect.BackupServiceHandler = (*backups)(nil)

func (h *backups) CreateBackup(ctx context.Context, req *connect.Request[hutchv1.CreateBackupRequest]) (*connect.Response[hutchv1.Backup], error) {
	m := req.Msg
	if err := backup.ValidDir(m.Dir); err != nil {
		return nil, errdefs.ToConnect(err)
	}
	root, release, err := h.roots.Root(ctx, m.Sandbox, false)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	defer release()
	b, err := h.st.Create(ctx, root, m.Sandbox, m.Dir, backup.Options{Name: m.Name, TTL: m.Ttl.AsDuration(), Excludes: m.Excludes, GitIgnore: m.Gitignore})
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(backupProto(b)), nil
}

func (h *backups) RestoreBackup(ctx context.Context, req *connect.Request[hutchv1.RestoreBackupRequest]) (*connect.Response[hutchv1.RestoreBackupResponse], error) {
	if req.Msg.Dir != "" {
		if err := backup.ValidDir(req.Msg.Dir); err != nil {
			return nil, errdefs.ToConnect(err)
		}
	}
	if _, err := h.st.Get(ctx, req.Msg.Id); err != nil {
		return nil, errdefs.ToConnect(err)
	}
	root, release, err := h.roots.Root(ctx, req.Msg.Sandbox, true)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	defer release()
	n, err := h.st.Restore(ctx, root, req.Msg.Id, req.Msg.Dir)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(&hutchv1.RestoreBackupResponse{Files: int64(n)}), nil
}

func (h *backups) ListBackups(ctx context.Context, _ *connect.Request[hutchv1.ListBackupsRequest]) (*connect.Response[hutchv1.ListBackupsResponse], error) {
	bs, err := h.st.List(ctx)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	out := &hutchv1.ListBackupsResponse{}
	for _, b := range bs {
		out.Backups = append(out.Backups, backupProto(b))
	}
	return connect.NewResponse(out), nil
}

func (h *backups) DeleteBackup(ctx context.Context, req *connect.Request[hutchv1.DeleteBackupRequest]) (*connect.Response[hutchv1.DeleteBackupResponse], error) {
	if err := h.st.Delete(ctx, req.Msg.Id); err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(&hutchv1.DeleteBackupResponse{}), nil
}

func backupProto(b backup.Backup) *hutchv1.Backup {
	out := &hutchv1.Backup{Id: b.ID, Name: b.Name, Sandbox: b.Sandbox, Dir: b.Dir, Size: b.Size, Digest: b.Digest, CreatedAt: timestamppb.New(b.CreatedAt)}
	if !b.ExpiresAt.IsZero() {
		out.ExpiresAt = timestamppb.New(b.ExpiresAt)
	}
	return out
}
