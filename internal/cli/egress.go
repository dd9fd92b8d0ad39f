package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newEgressCmd(e *env) *cobra.Command {
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "egress NAME",
		Short: "Show a sandbox's egress log: each connection and request, what decided it, bytes",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ents, err := e.client().EgressLog(cmd.Context(), a[0], limit)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSONList(e.stdout, ents)
			}
			tw := table(e.stdout)
			fmt.Fprintln(tw, "TIME\tDECISION\tPROTO\tHOST:PORT\tREQUEST\tSTATUS\tOUT\tIN\tRULE")
			for _, x := range ents {
				decision := "blocked"
				if x.Allowed {
					decision = "allowed"
				}
				req := strings.TrimSpace(x.Method + " " + x.Path)
				if req == "" {
					req = "-"
				}
				status := "-"
				if x.Status != 0 {
					status = fmt.Sprint(x.Status)
				}
				rule := x.Rule
				if x.Error != "" {
					rule += " (" + x.Error + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s:%d\t%s\t%s\t%d\t%d\t%s\n", x.Time.AsTime().Local().Format("15:04:05.000"),
					decision, x.Proto, x.Host, x.Port, req, status, x.BytesOut, x.BytesIn, rule)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVarP(&limit, "limit", "n", 0, "show only the latest N entries (default: all that are kept)")
	return cmd
}
