// Package mcp serves hutch to AI agents as a Model Context Protocol server:
// one set of tools over the Go SDK, the same whether it runs as `hutch mcp`
// on stdio or as the daemon's /mcp endpoint.
package mcp

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hutch-sh/hutch/client"
)

// instructions tell the model what the server is for, once per session.
const instructions = `hutch runs sandboxes: named Linux computers (Debian, with Python, Node and common tools) that start in milliseconds.
Every tool takes the sandbox's name; exec, write_file and run_code create the sandbox on first use, so pick a name and go.
Files live under /workspace by default. Use exec for shell commands, run_code for Python/JavaScript with state kept between calls,
start_process for servers and other long-running commands, and expose_port to get a URL for a port.`

// Version is reported to clients as the server's version.
const Version = "1"

// NewServer returns an MCP server whose tools act through c.
func NewServer(c *client.Client, log *slog.Logger) *sdk.Server {
	return newServer(c, log, nil)
}

func newServer(c *client.Client, log *slog.Logger, cache *sdk.SchemaCache) *sdk.Server {
	s := sdk.NewServer(&sdk.Implementation{Name: "hutch", Title: "hutch sandboxes", Version: Version}, &sdk.ServerOptions{
		Instructions: instructions,
		Logger:       quiet(log),
		SchemaCache:  cache,
	})
	t := &tools{c: c}
	t.addSandbox(s)
	t.addExec(s)
	t.addFiles(s)
	t.addCode(s)
	t.addProcess(s)
	return s
}

// Handler serves MCP over streamable HTTP, calling the hutch API at base
// with the bearer token each request carries: the caller acts with its
// own credentials, and the API's interceptors see every call. It is
// stateless (no session is kept between requests), so a daemon restart
// costs clients nothing and idle clients cost the daemon nothing.
func Handler(base string, log *slog.Logger) http.Handler {
	cache := sdk.NewSchemaCache()
	// One transport for every request's client, so connections are reused.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	tr.DisableCompression = true
	hc := &http.Client{Transport: tr}
	return sdk.NewStreamableHTTPHandler(func(r *http.Request) *sdk.Server {
		opts := []client.Option{client.WithHTTPClient(hc)}
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			opts = append(opts, client.WithToken(tok))
		}
		return newServer(client.New(base, opts...), log, cache)
	}, &sdk.StreamableHTTPOptions{
		Stateless: true,
		Logger:    quiet(log),
		// A client that hangs up stops its call (and so its command).
		PropagateRequestCancellation: true,
		// The API server in front already answers only the hosts and
		// origins it allows (--allowed-host included); the SDK's own
		// check would refuse names the daemon was told to answer.
		DisableLocalhostProtection: true,
	})
}

// tools holds the client every tool calls.
type tools struct {
	c *client.Client
}

// quiet keeps the SDK's warnings and errors; it logs every session (one
// per request when stateless) at info.
func quiet(log *slog.Logger) *slog.Logger {
	if log == nil {
		return nil
	}
	return slog.New(minLevel{log.Handler(), slog.LevelWarn})
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(a), h.min}
}
func (h minLevel) WithGroup(n string) slog.Handler { return minLevel{h.Handler.WithGroup(n), h.min} }
