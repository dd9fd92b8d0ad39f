package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/hutch-sh/hutch/client"
)

func newWaitCmd(e *env) *cobra.Command {
	var (
		logRE   string
		port    int
		http    bool
		path    string
		exit    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "wait NAME ID --log REGEX | --port N [--http [--path P]] | --exit",
		Short: "Wait until a background process is ready: a log line, an open port, or its exit",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			n := 0
			for _, set := range []bool{logRE != "", port != 0, exit} {
				if set {
					n++
				}
			}
			if n != 1 {
				return usageError{fmt.Errorf("wait: give exactly one of --log, --port, --exit")}
			}
			c := e.client()
			ctx := cmd.Context()
			switch {
			case logRE != "":
				line, err := c.WaitForLog(ctx, a[0], a[1], logRE, timeout)
				if err != nil {
					return err
				}
				fmt.Fprintln(e.stdout, line)
			case port != 0:
				if err := c.WaitForPort(ctx, a[0], a[1], port, client.PortOptions{HTTP: http, Path: path}, timeout); err != nil {
					return err
				}
			default:
				p, err := c.WaitForExit(ctx, a[0], a[1], timeout)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%s %s\n", p.Id, processStatus(p))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&logRE, "log", "", "wait for an output line matching this regular expression")
	f.IntVar(&port, "port", 0, "wait until this port accepts connections in the sandbox")
	f.BoolVar(&http, "http", false, "with --port: wait for an HTTP answer with a 2xx/3xx status")
	f.StringVar(&path, "path", "/", "with --http: the path to request")
	f.BoolVar(&exit, "exit", false, "wait until the process ends")
	f.DurationVar(&timeout, "timeout", 60*time.Second, "give up after this long")
	return cmd
}
