package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hutch-sh/hutch/client"
)

// Listing and deleting are flags, as for snapshots: a subcommand would
// shadow a sandbox of that name.
func newBackupCmd(e *env) *cobra.Command {
	var (
		asJSON, list, del bool
		o                 client.BackupOptions
	)
	cmd := &cobra.Command{
		Use:   "backup NAME DIR | --list | --rm ID...",
		Short: "Archive a directory of a sandbox and print the backup id; list or delete backups",
		RunE: func(cmd *cobra.Command, a []string) error {
			c, ctx := e.client(), cmd.Context()
			switch {
			case list:
				bs, err := c.Backups(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSONList(e.stdout, bs)
				}
				tw := table(e.stdout)
				fmt.Fprintln(tw, "ID\tNAME\tSANDBOX\tDIR\tSIZE\tCREATED")
				for _, b := range bs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", b.Id, b.Name, b.Sandbox, b.Dir, bytesHuman(b.Size), ago(b.CreatedAt.AsTime()))
				}
				return tw.Flush()
			case del:
				for _, id := range a {
					if err := c.DeleteBackup(ctx, id); err != nil {
						return err
					}
					fmt.Fprintln(e.stdout, id)
				}
				return nil
			}
			if len(a) != 2 {
				return usageError{fmt.Errorf("backup takes a sandbox name and a directory")}
			}
			b, err := c.CreateBackup(ctx, a[0], a[1], o)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(e.stdout, b)
			}
			fmt.Fprintln(e.stdout, b.Id)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.BoolVar(&list, "list", false, "list backups")
	f.BoolVar(&del, "rm", false, "delete the backups given by id")
	f.StringVar(&o.Name, "name", "", "a name for people")
	f.DurationVar(&o.TTL, "ttl", 0, "delete the backup after this long (0: keep)")
	f.StringArrayVar(&o.Excludes, "exclude", nil, "glob of paths (relative to DIR) or base names to leave out (repeatable)")
	f.BoolVar(&o.GitIgnore, "gitignore", false, "also leave out what DIR/.gitignore names")
	exclusive(cmd, "list", "rm")
	return cmd
}

func newRestoreCmd(e *env) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "restore ID NAME [--dir DIR]",
		Short: "Replace a directory's contents in a sandbox with a backup's",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := e.client().RestoreBackup(cmd.Context(), a[0], a[1], dir); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, a[1])
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory to restore into (default: the one backed up)")
	return cmd
}
