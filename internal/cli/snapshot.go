package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Listing and deleting are flags, not subcommands: a subcommand would
// shadow a sandbox named ls or rm.
func newSnapshotCmd(e *env) *cobra.Command {
	var (
		asJSON bool
		list   bool
		del    bool
		ttl    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "snapshot NAME | --list [NAME] | --rm ID...",
		Short: "Capture a sandbox's disk and print the snapshot id; list or delete snapshots",
		RunE: func(cmd *cobra.Command, a []string) error {
			c := e.client()
			ctx := cmd.Context()
			switch {
			case list:
				if len(a) > 1 {
					return usageError{fmt.Errorf("snapshot --list takes at most one sandbox name")}
				}
				snaps, err := c.Snapshots(ctx, strings.Join(a, ""))
				if err != nil {
					return err
				}
				if asJSON {
					return printJSONList(e.stdout, snaps)
				}
				tw := table(e.stdout)
				fmt.Fprintln(tw, "ID\tSANDBOX\tSIZE\tCREATED\tEXPIRES\tUSED BY")
				for _, s := range snaps {
					exp := "-"
					if s.ExpiresAt != nil {
						exp = s.ExpiresAt.AsTime().Local().Format("2006-01-02 15:04")
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Id, s.Sandbox, bytesHuman(s.Size), ago(s.CreatedAt.AsTime()), exp, strings.Join(s.UsedBy, ","))
				}
				return tw.Flush()
			case del:
				if len(a) == 0 {
					return usageError{fmt.Errorf("snapshot --rm needs snapshot ids")}
				}
				for _, id := range a {
					if err := c.DeleteSnapshot(ctx, id); err != nil {
						return err
					}
					fmt.Fprintln(e.stdout, id)
				}
				return nil
			}
			if len(a) != 1 {
				return usageError{fmt.Errorf("snapshot takes one sandbox name")}
			}
			s, err := c.Snapshot(ctx, a[0], ttl)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(e.stdout, s)
			}
			fmt.Fprintln(e.stdout, s.Id)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&list, "list", false, "list snapshots (of NAME, or all)")
	cmd.Flags().BoolVar(&del, "rm", false, "delete the snapshots given by id")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "delete the snapshot after this long, once no sandbox was created from it (0: keep)")
	exclusive(cmd, "list", "rm")
	return cmd
}
