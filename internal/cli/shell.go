package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/hutch-sh/hutch/client"
)

func newShellCmd(e *env) *cobra.Command {
	var attach string
	var list, asJSON bool
	cmd := &cobra.Command{
		Use:   "shell NAME [--attach ID | --list] [-- CMD [ARG...]]",
		Short: "Interactive terminal (a real PTY) in a sandbox; exits with the shell's exit code",
		Long: "Starts a shell (bash) on a new PTY in the sandbox, or reattaches to a running terminal with --attach,\n" +
			"and connects your terminal to it in raw mode, forwarding window-size changes. The terminal's id is printed\n" +
			"on stderr when the connection drops, to reattach. --list lists the sandbox's terminals.",
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			switch {
			case list && (attach != "" || len(a) > 1):
				return usageError{fmt.Errorf("--list takes only the sandbox name")}
			case list:
				return listTerminals(cmd.Context(), e, a[0], asJSON)
			case attach != "" && len(a) > 1:
				return usageError{fmt.Errorf("--attach reattaches to a running terminal: give no command")}
			}
			return runShell(cmd.Context(), e, a[0], attach, a[1:])
		},
	}
	cmd.Flags().StringVar(&attach, "attach", "", "reattach to the terminal with this id (see --list)")
	cmd.Flags().BoolVar(&list, "list", false, "list the sandbox's terminals instead")
	cmd.Flags().BoolVar(&asJSON, "json", false, "with --list, print JSON")
	return cmd
}

func listTerminals(ctx context.Context, e *env, name string, asJSON bool) error {
	ts, err := e.client().Terminals(ctx, name)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSONList(e.stdout, ts)
	}
	tw := table(e.stdout)
	fmt.Fprintln(tw, "ID\tPID\tSIZE\tCLIENTS\tSTATUS\tCREATED")
	for _, t := range ts {
		status := "running"
		if t.Exited {
			status = fmt.Sprintf("exited %d", t.ExitCode)
		}
		fmt.Fprintf(tw, "%s\t%d\t%dx%d\t%d\t%s\t%s\n", t.Id, t.Pid, t.Cols, t.Rows, t.Clients, status, ago(t.CreatedAt.AsTime()))
	}
	return tw.Flush()
}

// runShell connects the local terminal to a sandbox terminal until its
// shell exits, restoring the local terminal however it ends.
func runShell(ctx context.Context, e *env, name, id string, argv []string) error {
	c := e.client()
	in, _ := e.stdin.(*os.File)
	tty := in != nil && term.IsTerminal(int(in.Fd()))
	cols, rows := 0, 0
	if tty {
		cols, rows, _ = term.GetSize(int(in.Fd()))
	}
	if id == "" {
		info, err := c.CreateTerminal(ctx, name, client.TerminalOptions{Argv: argv, Cols: cols, Rows: rows})
		if err != nil {
			return err
		}
		id = info.Id
	}
	t, err := c.AttachTerminal(ctx, name, id)
	if err != nil {
		return err
	}
	defer t.Close()
	if tty {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		old, err := term.MakeRaw(int(in.Fd()))
		if err != nil {
			return fmt.Errorf("raw mode: %w", err)
		}
		defer term.Restore(int(in.Fd()), old)
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		winch <- syscall.SIGWINCH // the size may differ from the terminal's when reattaching
		go forwardSize(ctx, t, int(in.Fd()), winch)
	}
	go func() { _, _ = io.Copy(t, e.stdin) }() // ends with the process: a read of stdin cannot be cancelled
	if _, err := io.Copy(e.stdout, t); err != nil {
		if tty {
			fmt.Fprint(e.stderr, "\r\n")
		}
		return fmt.Errorf("%w (the shell may still run: hutch shell %s --attach %s)", err, name, id)
	}
	code, err := t.Wait()
	if err != nil {
		return err
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// forwardSize sends the local window size on every SIGWINCH until winch is
// stopped or ctx ends.
func forwardSize(ctx context.Context, t *client.Terminal, fd int, winch <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-winch:
		}
		if cols, rows, err := term.GetSize(fd); err == nil {
			_ = t.Resize(ctx, cols, rows)
		}
	}
}
