package cli

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/spf13/cobra"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/client"
)

// watchLine is one event as the CLI prints it: one JSON object per line.
type watchLine struct {
	Type        string `json:"type"`
	Path        string `json:"path,omitempty"`
	IsDirectory bool   `json:"isDirectory"`
	Timestamp   string `json:"timestamp,omitempty"`
	Cookie      uint32 `json:"cookie,omitempty"`
	OldPath     string `json:"oldPath,omitempty"`
	Version     string `json:"version,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

func newWatchCmd(e *env) *cobra.Command {
	var o client.WatchOptions
	cmd := &cobra.Command{
		Use:   "watch NAME PATH",
		Short: "Print changes under a directory in the sandbox, one JSON event per line",
		Long: `Print changes under a directory in the sandbox as they happen, one JSON
object per line: first {"type":"started"}, then create, modify, delete,
move_from, move_to (with oldPath), attrib, overflow (events were lost:
resync) and, if the watch ends on the sandbox's side, stopped with a reason.`,
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			enc := json.NewEncoder(e.stdout)
			print := func(ev *hutchv1.WatchEvent) error { return enc.Encode(toWatchLine(ev)) }
			stopped, err := e.client().Watch(cmd.Context(), a[0], a[1], o, print)
			if err != nil {
				if cmd.Context().Err() != nil {
					return nil // interrupted
				}
				return err
			}
			return print(stopped)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.Include, "include", nil, "only paths matching this glob (repeatable)")
	f.StringArrayVar(&o.Exclude, "exclude", nil, "leave out paths matching this glob (repeatable; default .git and node_modules)")
	f.BoolVar(&o.NoDefaultExcludes, "no-default-excludes", false, "do not leave out .git and node_modules")
	f.BoolVar(&o.NonRecursive, "non-recursive", false, "only the directory itself, not its subdirectories")
	return cmd
}

func toWatchLine(ev *hutchv1.WatchEvent) watchLine {
	l := watchLine{
		Type:        strings.ToLower(strings.TrimPrefix(ev.Type.String(), "WATCH_EVENT_TYPE_")),
		Path:        ev.Path,
		IsDirectory: ev.IsDirectory,
		Cookie:      ev.Cookie,
		OldPath:     ev.OldPath,
		Version:     ev.Version,
		Reason:      ev.Reason,
	}
	if ev.Timestamp != nil {
		l.Timestamp = ev.Timestamp.AsTime().Format(time.RFC3339Nano)
	}
	return l
}
