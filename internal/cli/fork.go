package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hutch-sh/hutch/client"
)

func newForkCmd(e *env) *cobra.Command {
	var (
		asJSON bool
		n      int
		o      client.ForkOptions
	)
	cmd := &cobra.Command{
		Use:   "fork NAME NEW [--snapshot ID] [-n N]",
		Short: "Create sandboxes with the disk of NAME (a snapshot taken now, or --snapshot ID)",
		Long: "Creates NEW, or NEW-1 … NEW-N with -n, each with its own writable copy of the disk.\n" +
			"With --snapshot, NAME may be \"\" (the snapshot alone is enough).",
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if n < 1 {
				return usageError{fmt.Errorf("-n must be at least 1")}
			}
			news := []string{a[1]}
			if n > 1 {
				news = news[:0]
				for i := 1; i <= n; i++ {
					news = append(news, fmt.Sprintf("%s-%d", a[1], i))
				}
			}
			id, sbs, err := e.client().Fork(cmd.Context(), a[0], news, o)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSONList(e.stdout, sbs)
			}
			for _, s := range sbs {
				fmt.Fprintln(e.stdout, s.Name)
			}
			fmt.Fprintf(e.stderr, "from snapshot %s\n", id)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVarP(&n, "n", "n", 1, "how many sandboxes (named NEW-1 … NEW-N)")
	cmd.Flags().StringVar(&o.Snapshot, "snapshot", "", "snapshot to start from (default: take one of NAME now)")
	cmd.Flags().DurationVar(&o.SleepAfter, "sleep-after", 0, "idle time before the new sandboxes sleep (default 10m)")
	cmd.Flags().BoolVar(&o.KeepAlive, "keep-alive", false, "never put the new sandboxes to sleep for being idle")
	return cmd
}
