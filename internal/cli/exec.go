package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hutch-sh/hutch/client"
)

// Exit codes of exec when the command could not run, as shells use them.
const (
	exitTimeout     = 124
	exitNotRunnable = 126
	exitNotFound    = 127
	exitInterrupted = 130
)

func newExecCmd(e *env) *cobra.Command {
	var (
		cwd     string
		envs    []string
		timeout time.Duration
		noStdin bool
		create  client.CreateOptions
		session string
		policy  string
	)
	cmd := &cobra.Command{
		Use:   "exec NAME [flags] -- CMD [ARG...]",
		Short: "Run a command in a sandbox, creating the sandbox if needed",
		Long: "Run a command in a sandbox (created on first use). Output streams live, stdin is\n" +
			"forwarded, and hutch exits with the command's exit code (128+N if killed by signal N,\n" +
			"124 on --timeout, 127 if the command is not found).",
		Args: args(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if dash := cmd.ArgsLenAtDash(); dash > 1 {
				return usageError{fmt.Errorf("exec takes one sandbox name before --, got %q", strings.Join(a[:dash], " "))}
			}
			c := client.Command{Argv: a[1:], Cwd: cwd, Timeout: timeout, Session: session, Stdout: e.stdout, Stderr: e.stderr}
			if !noStdin && session == "" {
				c.Stdin = e.stdin
			}
			var err error
			if c.Env, err = parseEnv(envs); err != nil {
				return err
			}
			if policy != "" {
				if err := setPolicy(cmd.Context(), e.client(), a[0], policy, true, e.stdin); err != nil {
					return err
				}
			}
			if create != (client.CreateOptions{}) {
				if err := ensureShape(cmd.Context(), e.client(), a[0], create); err != nil {
					return err
				}
			}
			return runExec(cmd.Context(), e, a[0], c)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cwd, "cwd", "", "working directory in the sandbox (default /workspace)")
	f.StringArrayVarP(&envs, "env", "e", nil, "set an environment variable KEY=VALUE (repeatable)")
	f.DurationVar(&timeout, "timeout", 0, "kill the command's process tree after this long (e.g. 30s)")
	f.BoolVarP(&noStdin, "no-stdin", "n", false, "do not forward stdin")
	f.StringVar(&session, "session", "", "run in this shell session, keeping cwd, exports and functions between execs (stdin is not forwarded)")
	f.StringVar(&create.Image, "image", "", "image to create the sandbox from, if it does not exist (default: the default image)")
	f.StringVar(&policy, "policy", "", "egress policy JSON file to create the sandbox with (or to set on it if it exists)")
	f.StringVar(&create.InstanceType, "type", "", "instance type to create the sandbox with: lite, basic (default), standard")
	return cmd
}

// ensureShape creates name with o, or checks that the existing sandbox has
// the image asked for: running in the wrong image silently would mislead.
func ensureShape(ctx context.Context, c *client.Client, name string, o client.CreateOptions) error {
	sb, err := c.Create(ctx, name, o)
	if err != nil {
		return err
	}
	if o.Image != "" && sb.Image != o.Image {
		return fmt.Errorf("sandbox %q already exists with image %q, not %q (hutch rm it first)", name, sb.Image, o.Image)
	}
	return nil
}

// runExec exits with the command's status, or with a shell's code for a
// command that could not run; any other failure is hutch's own (exit 1).
func runExec(ctx context.Context, e *env, name string, c client.Command) error {
	st, err := e.client().Exec(ctx, name, c)
	// Run directly, the command is resolved by the agent, which reports a
	// missing or non-executable file as an error; in a session the shell
	// resolves it and exits 127 or 126 itself, so there not found is about
	// the session or the sandbox: hutch's failure, not the command's.
	direct := c.Session == ""
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return &exitError{code: exitInterrupted, err: errors.New("interrupted; the command's process tree was killed")}
	case errors.Is(err, client.ErrDeadlineExceeded):
		return &exitError{code: exitTimeout, err: err}
	case direct && errors.Is(err, client.ErrNotFound):
		return &exitError{code: exitNotFound, err: err}
	case direct && errors.Is(err, client.ErrPermissionDenied):
		return &exitError{code: exitNotRunnable, err: err}
	default:
		return err
	}
	if st.Signal != "" {
		return &exitError{code: st.Code, err: fmt.Errorf("command killed by %s", st.Signal)}
	}
	if st.Code != 0 {
		return &exitError{code: st.Code}
	}
	return nil
}
