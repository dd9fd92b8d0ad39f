package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/hutch-sh/hutch/client"
)

func newCloneCmd(e *env) *cobra.Command {
	var o client.GitOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "clone NAME URL [--branch B] [--depth N] [--dir DIR]",
		Short: "Clone a git repository into a sandbox",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			r, err := e.client().GitCheckout(cmd.Context(), a[0], a[1], o)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(e.stdout, r)
			}
			fmt.Fprintf(e.stdout, "%s %s %s\n", r.TargetDir, r.Branch, r.Commit)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Branch, "branch", "", "branch or tag (default: the remote's default)")
	f.IntVar(&o.Depth, "depth", 0, "shallow clone of this many commits")
	f.StringVar(&o.TargetDir, "dir", "", "target directory (default /workspace/<repository>)")
	f.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "give up after this long")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
