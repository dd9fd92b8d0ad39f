package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newKillCmd(e *env) *cobra.Command {
	var (
		signal string
		grace  time.Duration
		all    bool
	)
	cmd := &cobra.Command{
		Use:   "kill NAME [ID]",
		Short: "Kill a background process and its whole process tree (--all for every one)",
		Args:  args(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c := e.client()
			if all {
				n, err := c.KillAllProcesses(cmd.Context(), a[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "killed %d\n", n)
				return nil
			}
			if len(a) != 2 {
				return usageError{fmt.Errorf("kill: give a process id, or --all")}
			}
			p, err := c.KillProcess(cmd.Context(), a[0], a[1], signal, grace)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s %s\n", p.Id, processStatus(p))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&signal, "signal", "s", "", "signal to send first (default SIGTERM)")
	f.DurationVar(&grace, "grace", 0, "time before SIGKILL (default 5s)")
	f.BoolVar(&all, "all", false, "kill every background process of the sandbox")
	return cmd
}
