package cli

import (
	"github.com/spf13/cobra"

	"github.com/hutch-sh/hutch/client"
)

func newLogsCmd(e *env) *cobra.Command {
	var o client.LogOptions
	cmd := &cobra.Command{
		Use:   "logs NAME ID",
		Short: "Print a background process's output (-f to follow it live)",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			o.Stdout, o.Stderr = e.stdout, e.stderr
			_, _, err := e.client().ProcessLogs(cmd.Context(), a[0], a[1], o)
			if err != nil && cmd.Context().Err() != nil {
				return nil // interrupted while following
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.Follow, "follow", "f", false, "keep printing output until the process ends")
	f.BoolVar(&o.FromNow, "from-now", false, "only output printed from now on")
	return cmd
}
