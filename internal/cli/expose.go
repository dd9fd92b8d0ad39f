package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

func newExposeCmd(e *env) *cobra.Command {
	var remove, asJSON bool
	cmd := &cobra.Command{
		Use:   "expose NAME [PORT]",
		Short: "Give a port in a sandbox a preview URL and print it (no PORT: list them)",
		Args:  args(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c := e.client()
			if len(a) == 1 {
				ports, err := c.ExposedPorts(cmd.Context(), a[0])
				if err != nil {
					return err
				}
				if asJSON {
					return printJSONList(e.stdout, ports)
				}
				tw := table(e.stdout)
				fmt.Fprintln(tw, "PORT\tURL")
				for _, p := range ports {
					fmt.Fprintf(tw, "%d\t%s\n", p.Port, p.Url)
				}
				return tw.Flush()
			}
			port, err := strconv.Atoi(a[1])
			if err != nil {
				return usageError{fmt.Errorf("expose: port %q is not a number", a[1])}
			}
			if remove {
				return c.UnexposePort(cmd.Context(), a[0], port)
			}
			url, err := c.ExposePort(cmd.Context(), a[0], port)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, url)
			return nil
		},
	}
	cmd.Flags().BoolVar(&remove, "remove", false, "withdraw the port's preview URL")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (when listing)")
	return cmd
}
