package apiserver

import (
	"context"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/backup"
	"github.com/hutch-sh/hutch/internal/manager"
)

// Backups is what the backup service needs: directory backups of
// sandboxes, orchestrated by package backup.
type Backups interface {
	Create(ctx context.Context, sandbox, dir string, o backup.Options) (backup.Backup, error)
	Restore(ctx context.Context, sandbox, id, dir string) (int, error)
	List(ctx context.Context) ([]backup.Backup, error)
	Delete(ctx context.Context, id string) error
}

var (
	_ Backups      = (*backup.Service)(nil)
	_ backup.Roots = (*manager.Manager)(nil) // found on Sandboxes by type assertion
)

type backups struct{ svc Backups }

var _ hutchv1connect.BackupServiceHandler = (*backups)(nil)

func (h *backups) CreateBackup(ctx context.Context, req *connect.Request[hutchv1.CreateBackupRequest]) (*connect.Response[hutchv1.Backup], error) {
	m := req.Msg
	b, err := h.svc.Create(ctx, m.Sandbox, m.Dir, backup.Options{Name: m.Name, TTL: m.Ttl.AsDuration(), Excludes: m.Excludes, GitIgnore: m.Gitignore})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(backupProto(b)), nil
}

func (h *backups) RestoreBackup(ctx context.Context, req *connect.Request[hutchv1.RestoreBackupRequest]) (*connect.Response[hutchv1.RestoreBackupResponse], error) {
	n, err := h.svc.Restore(ctx, req.Msg.Sandbox, req.Msg.Id, req.Msg.Dir)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&hutchv1.RestoreBackupResponse{Files: int64(n)}), nil
}

func (h *backups) ListBackups(ctx context.Context, _ *connect.Request[hutchv1.ListBackupsRequest]) (*connect.Response[hutchv1.ListBackupsResponse], error) {
	bs, err := h.svc.List(ctx)
	if err != nil {
		return nil, err
	}
	out := &hutchv1.ListBackupsResponse{}
	for _, b := range bs {
		out.Backups = append(out.Backups, backupProto(b))
	}
	return connect.NewResponse(out), nil
}

func (h *backups) DeleteBackup(ctx context.Context, req *connect.Request[hutchv1.DeleteBackupRequest]) (*connect.Response[hutchv1.DeleteBackupResponse], error) {
	if err := h.svc.Delete(ctx, req.Msg.Id); err != nil {
		return nil, err
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
