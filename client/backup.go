package client

import (
	"context"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
)

// BackupOptions shape a directory backup.
type BackupOptions struct {
	Name      string
	TTL       time.Duration // 0: kept until deleted
	Excludes  []string      // glob patterns of paths relative to the dir, or of base names
	GitIgnore bool          // also leave out what the dir's .gitignore names
}

// CreateBackup archives directory dir of a sandbox and returns the backup.
func (c *Client) CreateBackup(ctx context.Context, sandbox, dir string, o BackupOptions) (*hutchv1.Backup, error) {
	resp, err := c.backups.CreateBackup(ctx, connect.NewRequest(&hutchv1.CreateBackupRequest{
		Sandbox: sandbox, Dir: dir, Name: o.Name, Ttl: durationpb.New(o.TTL), Excludes: o.Excludes, Gitignore: o.GitIgnore,
	}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg, nil
}

// RestoreBackup replaces the contents of dir in a sandbox (the backup's own
// dir when "") with the backup's.
func (c *Client) RestoreBackup(ctx context.Context, id, sandbox, dir string) error {
	_, err := c.backups.RestoreBackup(ctx, connect.NewRequest(&hutchv1.RestoreBackupRequest{Id: id, Sandbox: sandbox, Dir: dir}))
	return wrap(err)
}

// Backups lists the daemon's backups.
func (c *Client) Backups(ctx context.Context) ([]*hutchv1.Backup, error) {
	resp, err := c.backups.ListBackups(ctx, connect.NewRequest(&hutchv1.ListBackupsRequest{}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg.Backups, nil
}

// DeleteBackup deletes a backup.
func (c *Client) DeleteBackup(ctx context.Context, id string) error {
	_, err := c.backups.DeleteBackup(ctx, connect.NewRequest(&hutchv1.DeleteBackupRequest{Id: id}))
	return wrap(err)
}
