package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newLsCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List sandboxes",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			sbs, err := e.client().List(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSONList(e.stdout, sbs)
			}
			tw := table(e.stdout)
			fmt.Fprintln(tw, "NAME\tSTATE\tCREATED\tRUNTIME\tIMAGE")
			for _, s := range sbs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, stateName(s.State), ago(s.CreatedAt.AsTime()), s.Runtime, s.Image)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
