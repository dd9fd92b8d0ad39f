package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func newRmCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove sandboxes: their processes, mounts, cgroups and disk",
		Args:  args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var errs []error
			for _, name := range a {
				if err := e.client().Delete(cmd.Context(), name); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(e.stdout, name)
			}
			return errors.Join(errs...)
		},
	}
}
