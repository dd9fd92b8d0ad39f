package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hutch-sh/hutch/client"
)

func newSessionCmd(e *env) *cobra.Command {
	cmd := group(&cobra.Command{Use: "session", Short: "Create, list and remove shell sessions (use them with exec --session)"})

	var o client.SessionOptions
	var envs []string
	create := &cobra.Command{
		Use:   "create NAME [--id ID]",
		Short: "Start a session; prints its id",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var err error
			if o.Env, err = parseEnv(envs); err != nil {
				return err
			}
			s, err := e.client().CreateSession(cmd.Context(), a[0], o)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, s.Id)
			return nil
		},
	}
	create.Flags().StringVar(&o.ID, "id", "", "session id (default: generated)")
	create.Flags().StringVar(&o.Cwd, "cwd", "", "starting directory (default /workspace)")
	create.Flags().StringArrayVarP(&envs, "env", "e", nil, "set an environment variable KEY=VALUE (repeatable)")

	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls NAME",
		Short: "List sessions",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			ss, err := e.client().Sessions(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSONList(e.stdout, ss)
			}
			tw := table(e.stdout)
			fmt.Fprintln(tw, "ID\tCWD\tCREATED")
			for _, s := range ss {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Id, s.Cwd, ago(s.CreatedAt.AsTime()))
			}
			return tw.Flush()
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	rm := &cobra.Command{
		Use:   "rm NAME ID",
		Short: "End a session and everything it runs",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return e.client().DeleteSession(cmd.Context(), a[0], a[1])
		},
	}
	cmd.AddCommand(create, ls, rm)
	return cmd
}
