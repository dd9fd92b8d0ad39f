package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/hutch-sh/hutch/client"
)

func newPolicyCmd(e *env) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "policy",
		Short: "Show or change a sandbox's egress policy",
	})
	set := &cobra.Command{
		Use:   "set NAME FILE",
		Short: "Replace a sandbox's egress policy with the JSON in FILE (- for stdin); it applies at once",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return setPolicy(cmd.Context(), e.client(), a[0], a[1], false, e.stdin)
		},
	}
	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Print a sandbox's egress policy",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			p, err := e.client().Policy(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, p)
			return nil
		},
	}
	cmd.AddCommand(set, get)
	return cmd
}

// setPolicy sends the policy in file (- for stdin) for sandbox name.
func setPolicy(ctx context.Context, c *client.Client, name, file string, create bool, stdin io.Reader) error {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return usageError{fmt.Errorf("policy file: %w", err)}
	}
	_, err = c.SetPolicy(ctx, name, string(data), create)
	return err
}
