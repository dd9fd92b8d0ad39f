package cli

import (
	"context"
	"io"
	"log/slog"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/hutch-sh/hutch/client"
	"github.com/hutch-sh/hutch/internal/mcp"
)

func newMCPCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "mcp",
		Short: "Serve hutch's tools to an AI agent over MCP (Model Context Protocol) on stdin and stdout",
		Long: "Serve hutch's tools (sandboxes, exec, files, code, processes, ports, snapshots) to an MCP client\n" +
			"such as Claude Desktop or Cursor, speaking MCP on stdin and stdout. The tools call the daemon at\n" +
			"HUTCH_URL (default " + client.DefaultURL + ") with HUTCH_TOKEN. The daemon also serves MCP itself, over\n" +
			"streamable HTTP at /mcp.\n\n" +
			`Client configuration: {"mcpServers": {"hutch": {"command": "hutch", "args": ["mcp"]}}}`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serveMCP(cmd.Context(), e)
		},
	}
}

// serveMCP serves until the client closes stdin or ctx ends. Logs go to
// stderr, which MCP clients keep apart from the protocol.
func serveMCP(ctx context.Context, e *env) error {
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t := &sdk.IOTransport{Reader: io.NopCloser(e.stdin), Writer: nopWriteCloser{e.stdout}}
	err := mcp.NewServer(e.client(), log).Run(ctx, t)
	if ctx.Err() != nil {
		return nil // interrupted: a normal way for a stdio server to end
	}
	return err
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
