package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/egress"
)

func newSecretCmd(e *env) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "secret",
		Short: "Manage the secrets egress rules inject ({{secret:NAME}}); they never enter a sandbox",
	})
	set := &cobra.Command{
		Use:   "set NAME",
		Short: "Store or rotate a secret; the value is read from stdin and never echoed",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			b, err := io.ReadAll(io.LimitReader(e.stdin, egress.MaxSecretBytes+2))
			if err != nil {
				return err
			}
			// A trailing newline from echo or a heredoc is not part of it.
			v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
			if v == "" {
				return usageError{fmt.Errorf("secret set %s: no value on stdin", a[0])}
			}
			return e.client().SetSecret(cmd.Context(), a[0], v)
		},
	}
	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the secrets' names",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			names, err := e.client().Secrets(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(e.stdout, &hutchv1.ListSecretsResponse{Names: names})
			}
			for _, n := range names {
				fmt.Fprintln(e.stdout, n)
			}
			return nil
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Delete a secret",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return e.client().DeleteSecret(cmd.Context(), a[0])
		},
	}
	cmd.AddCommand(set, ls, rm)
	return cmd
}
