package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hutch-sh/hutch/client"
)

func newStartCmd(e *env) *cobra.Command {
	var (
		o      client.ProcessOptions
		envs   []string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "start NAME [--id ID] -- CMD [ARG...]",
		Short: "Start a background process in a sandbox and print its id",
		Args:  args(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if dash := cmd.ArgsLenAtDash(); dash > 1 {
				return usageError{fmt.Errorf("start takes one sandbox name before --, got %q", strings.Join(a[:dash], " "))}
			}
			var err error
			if o.Env, err = parseEnv(envs); err != nil {
				return err
			}
			p, err := e.client().StartProcess(cmd.Context(), a[0], a[1:], o)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(e.stdout, p)
			}
			fmt.Fprintln(e.stdout, p.Id)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ID, "id", "", "process id (default: generated)")
	f.StringVar(&o.Cwd, "cwd", "", "working directory in the sandbox (default /workspace)")
	f.StringArrayVarP(&envs, "env", "e", nil, "set an environment variable KEY=VALUE (repeatable)")
	f.BoolVar(&asJSON, "json", false, "print the process as JSON")
	return cmd
}

// parseEnv turns KEY=VALUE flags into a map.
func parseEnv(envs []string) (map[string]string, error) {
	if len(envs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(envs))
	for _, kv := range envs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Errorf("--env %q: want KEY=VALUE", kv)}
		}
		m[k] = v
	}
	return m, nil
}
