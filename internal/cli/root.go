// Package cli implements the hutch command line: one file per command,
// each parsing flags and calling the Go SDK (or the daemon, for serve).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/hutch-sh/hutch/client"
)

// Exit codes of the CLI's own failures.
const (
	ExitFailure = 1
	ExitUsage   = 2
)

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error // printed as "hutch: <err>" when set
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

type usageError struct{ error }

// env is what commands see of the outside world.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	client         func() *client.Client
}

// Run runs the CLI with args (without the program name) and returns the
// process exit code.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, client: client.FromEnv}
	root := group(&cobra.Command{
		Use:           "hutch",
		Short:         "Sandboxes for AI agents: named Linux computers that start in milliseconds",
		SilenceUsage:  true,
		SilenceErrors: true,
	})
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newServeCmd(e), newExecCmd(e), newLsCmd(e), newStatusCmd(e), newRmCmd(e), newCpCmd(e), newImageCmd(e),
		newStartCmd(e), newPsCmd(e), newLogsCmd(e), newKillCmd(e), newWaitCmd(e), newExposeCmd(e), newSessionCmd(e), newCloneCmd(e), newShellCmd(e), newWatchCmd(e), newRunCmd(e),
		newSecretCmd(e), newPolicyCmd(e), newEgressCmd(e),
		newSleepCmd(e), newSnapshotCmd(e), newForkCmd(e), newBackupCmd(e), newRestoreCmd(e),
		newMCPCmd(e),
	)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "hutch:", message(ee.err))
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "hutch:", message(err))
	// Every usage error is typed: flag errors by the flag error hook,
	// positional ones by args, unknown commands by group, conflicting
	// flags by exclusive.
	var ue usageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	return ExitFailure
}

// message is what a person reads for err.
func message(err error) string {
	msg := err.Error()
	var ce *connect.Error
	if errors.As(err, &ce) {
		msg = ce.Message()
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		url := os.Getenv("HUTCH_URL")
		if url == "" {
			url = client.DefaultURL
		}
		msg = fmt.Sprintf("no hutch daemon answers at %s (start one with `hutch serve`, or set HUTCH_URL): %s", url, msg)
	}
	return msg
}

// group makes cmd, which holds subcommands, runnable so that an unknown
// subcommand is a usage error: cobra prints help and exits 0 for a group,
// and reports it for the root as untyped text.
func group(cmd *cobra.Command) *cobra.Command {
	cmd.SuggestionsMinimumDistance = 2 // cobra's default, set only on its own path
	cmd.Args = args(func(c *cobra.Command, a []string) error {
		if len(a) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", a[0], c.CommandPath())
		if s := c.SuggestionsFor(a[0]); len(s) > 0 {
			msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
		}
		return errors.New(msg)
	})
	cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	return cmd
}

// exclusive refuses the named flags given together as a usage error
// (cobra's MarkFlagsMutuallyExclusive reports it as untyped text).
func exclusive(cmd *cobra.Command, names ...string) {
	cmd.PreRunE = func(c *cobra.Command, _ []string) error {
		var set []string
		for _, n := range names {
			if c.Flags().Changed(n) {
				set = append(set, "--"+n)
			}
		}
		if len(set) > 1 {
			return usageError{fmt.Errorf("%s cannot be used together", strings.Join(set, " and "))}
		}
		return nil
	}
}

// args wraps a cobra.PositionalArgs so its errors are usage errors.
func args(fn cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := fn(cmd, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}
