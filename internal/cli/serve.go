package cli

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hutch-sh/hutch/internal/daemon"
)

func newServeCmd(e *env) *cobra.Command {
	cfg := daemon.Config{}
	var keys []string
	var debug bool
	var subnet string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the hutch daemon",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
			if env := os.Getenv("HUTCH_API_KEYS"); env != "" {
				keys = append(keys, strings.Split(env, ",")...)
			}
			cfg.APIKeys = keys
			if subnet != "" {
				p, err := netip.ParsePrefix(subnet)
				if err != nil {
					return usageError{fmt.Errorf("--subnet %q: want a prefix such as 10.88.0.0/16", subnet)}
				}
				cfg.Subnet = p
			}
			cfg.Progress = e.stderr
			cfg.Ready = func(addr string) { fmt.Fprintf(e.stdout, "hutch: serving on http://%s\n", addr) }
			return daemon.Run(cmd.Context(), log, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:7777", "address to serve the API on")
	f.StringVar(&cfg.DataDir, "data", "/var/lib/hutch", "directory for sandboxes and metadata")
	f.StringVar(&cfg.CacheDir, "cache", "/var/cache/hutch", "directory for images and layers (shared by daemons)")
	f.StringVar(&cfg.AgentBinary, "agent", "", "path of hutch-agent (default: next to hutch)")
	f.StringSliceVar(&keys, "api-key", nil, "API key clients must send (repeatable; also HUTCH_API_KEYS, comma-separated)")
	f.StringArrayVar(&cfg.AllowedHosts, "allowed-host", nil, "host name (or address) the API answers besides localhost and its own addresses, e.g. the name of a reverse proxy (repeatable; '*' for every name, only with --api-key)")
	f.StringVar(&cfg.PreviewDomain, "preview-domain", "localhost", "domain of preview URLs (needs wildcard DNS to this host unless it is localhost)")
	f.IntVar(&cfg.WarmPool, "warm", 2, "sandboxes of the default image kept running, ready to be named (0 disables)")
	f.StringVar(&subnet, "subnet", "", "IPv4 prefix for sandbox addresses (default: the data dir's, or a free /18 of 10.0.0.0/8)")
	f.StringVar(&cfg.UpstreamCA, "upstream-ca", "", "PEM file of extra roots the egress proxy trusts for servers behind intercepted HTTPS")
	f.StringVar(&cfg.Blobs, "blobs", "", "blob store for snapshots: a directory or s3://HOST:PORT/BUCKET[/PREFIX] (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; HUTCH_S3_INSECURE=1 for http)")
	f.BoolVar(&debug, "debug", false, "log debug messages")
	return cmd
}
