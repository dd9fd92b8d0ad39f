package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newStatusCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show one sandbox",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			s, err := e.client().Get(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(e.stdout, s)
			}
			tw := table(e.stdout)
			fmt.Fprintf(tw, "name:\t%s\n", s.Name)
			fmt.Fprintf(tw, "state:\t%s\n", stateName(s.State))
			if s.Reason != "" {
				fmt.Fprintf(tw, "reason:\t%s\n", s.Reason)
			}
			fmt.Fprintf(tw, "id:\t%s\n", s.Id)
			fmt.Fprintf(tw, "image:\t%s\n", s.Image)
			fmt.Fprintf(tw, "runtime:\t%s\n", s.Runtime)
			if s.Address != "" {
				fmt.Fprintf(tw, "address:\t%s\n", s.Address)
			}
			fmt.Fprintf(tw, "created:\t%s (%s)\n", s.CreatedAt.AsTime().Local().Format("2006-01-02 15:04:05"), ago(s.CreatedAt.AsTime()))
			if s.StartedAt != nil {
				fmt.Fprintf(tw, "started:\t%s (%s)\n", s.StartedAt.AsTime().Local().Format("2006-01-02 15:04:05"), ago(s.StartedAt.AsTime()))
			}
			if si, err := e.client().GetSleep(cmd.Context(), a[0]); err == nil {
				fmt.Fprintf(tw, "sleep:\t%s\n", sleepLine(si))
			}
			if l := s.Limits; l != nil {
				fmt.Fprintf(tw, "limits:\t%.2f CPU, %s memory, %d processes\n", float64(l.CpuMillis)/1000, bytesHuman(l.MemoryBytes), l.Pids)
			}
			if ports, err := e.client().ExposedPorts(cmd.Context(), a[0]); err == nil {
				for _, p := range ports {
					fmt.Fprintf(tw, "port %d:\t%s\n", p.Port, p.Url)
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
