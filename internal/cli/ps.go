package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
)

func newPsCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ps NAME",
		Short: "List a sandbox's background processes",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ps, err := e.client().Processes(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSONList(e.stdout, ps)
			}
			tw := table(e.stdout)
			fmt.Fprintln(tw, "ID\tPID\tSTATUS\tSTARTED\tCOMMAND")
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", p.Id, p.Pid, processStatus(p), ago(p.StartedAt.AsTime()), strings.Join(p.Argv, " "))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// processStatus reads like "running", "exited (0)", "killed (SIGTERM)".
func processStatus(p *hutchv1.ProcessInfo) string {
	s := strings.ToLower(strings.TrimPrefix(p.Status.String(), "PROCESS_STATUS_"))
	switch p.Status {
	case hutchv1.ProcessStatus_PROCESS_STATUS_EXITED:
		s += fmt.Sprintf(" (%d)", p.ExitCode)
	case hutchv1.ProcessStatus_PROCESS_STATUS_KILLED:
		s += " (" + p.Signal + ")"
	}
	if p.EndedAt != nil {
		s += ", ran " + p.EndedAt.AsTime().Sub(p.StartedAt.AsTime()).Round(time.Millisecond).String()
	}
	return s
}
