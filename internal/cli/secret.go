package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hutch-sh/hutch/internal/egress"
)

func newSecretCmd(e *env) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "secret",
		Short: "Manage the secrets egress rules inject ({{secret:NAME}}); they never enter a sandbox",
	})
	var scope []string
	set := &cobra.Command{
		Use:   "set NAME",
		Short: "Store or rotate a secret; the value is read from stdin and never echoed",
		Long: `Store or rotate a secret; the value is read from stdin and never echoed.

--for limits the sandboxes whose egress rules may use it to those whose name
matches a glob ('agent-*'; '*' for every sandbox). Without --for, a rotation
keeps the secret's scope and a new secret is for every sandbox.`,
		Args: args(cobra.ExactArgs(1)),
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
			return e.client().SetSecret(cmd.Context(), a[0], v, scope...)
		},
	}
	set.Flags().StringArrayVar(&scope, "for", nil, "glob over the names of the sandboxes that may use it, e.g. 'agent-*' (repeatable; '*' for every sandbox)")
	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the secrets' names and the sandboxes that may use them",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			secrets, err := e.client().Secrets(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSONList(e.stdout, secrets)
			}
			tw := table(e.stdout)
			fmt.Fprintln(tw, "NAME\tFOR")
			for _, s := range secrets {
				scope := strings.Join(s.Scope, ",")
				if scope == "" {
					scope = "-" // a daemon older than scopes
				}
				fmt.Fprintf(tw, "%s\t%s\n", s.Name, scope)
			}
			return tw.Flush()
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
