package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/client"
)

func newSleepCmd(e *env) *cobra.Command {
	var (
		asJSON    bool
		after     time.Duration
		keepAlive bool
		persist   bool
	)
	cmd := &cobra.Command{
		Use:   "sleep NAME",
		Short: "Put a sandbox to sleep now, or with --after/--keep-alive set when it sleeps",
		Long: "Without flags, ends every process of the sandbox and frees its memory; its disk,\n" +
			"env and exposed ports stay, and the next call on it wakes it.\n" +
			"With --after, --keep-alive or --persist, only changes how it sleeps.",
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c := e.client()
			var o client.SleepOptions
			if cmd.Flags().Changed("after") {
				o.SleepAfter = &after
			}
			if cmd.Flags().Changed("keep-alive") {
				o.KeepAlive = &keepAlive
			}
			var err error
			var si *hutchv1.SleepInfo
			if cmd.Flags().Changed("persist") {
				o.Persist = &persist
			}
			if o.SleepAfter != nil || o.KeepAlive != nil || o.Persist != nil {
				si, err = c.ConfigureSleep(cmd.Context(), a[0], o)
			} else {
				si, err = c.Sleep(cmd.Context(), a[0])
			}
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(e.stdout, si)
			}
			fmt.Fprintln(e.stdout, a[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().DurationVar(&after, "after", 0, "idle time before the sandbox sleeps by itself (default 10m)")
	cmd.Flags().BoolVar(&keepAlive, "keep-alive", false, "never put the sandbox to sleep for being idle")
	cmd.Flags().BoolVar(&persist, "persist", false, "on sleep, push the disk to the daemon's blob store so a daemon elsewhere can wake it")
	return cmd
}

// sleepLine says when a sandbox sleeps: "in 9m12s (after 10m idle)".
func sleepLine(si *hutchv1.SleepInfo) string {
	after := si.SleepAfter.AsDuration()
	switch {
	case si.Sleeping:
		return "asleep; the next call wakes it"
	case si.KeepAlive:
		return "never (kept alive)"
	case si.SleepsAt != nil:
		return fmt.Sprintf("in %s (after %s idle)", time.Until(si.SleepsAt.AsTime()).Round(time.Second), after)
	case si.Active > 0:
		return fmt.Sprintf("not while %d requests or streams are open (then after %s idle)", si.Active, after)
	}
	return fmt.Sprintf("after %s idle", after)
}
