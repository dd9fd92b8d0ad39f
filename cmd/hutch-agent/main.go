// Command hutch-agent runs inside every sandbox as PID 1 and serves the
// hutch daemon over a unix socket. Build it static: CGO_ENABLED=0.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/hutch-sh/hutch/internal/agent"
)

func main() {
	var o agent.Options
	flag.StringVar(&o.Socket, "socket", "/.hutch/run/agent.sock", "unix socket to serve on")
	flag.IntVar(&o.ListenFD, "listen-fd", 0, "serve an inherited listening socket on this fd instead of binding --socket")
	flag.StringVar(&o.Root, "root", "/", "filesystem root for file operations")
	flag.StringVar(&o.Workdir, "workdir", "/workspace", "default working directory")
	debug := flag.Bool("debug", false, "log debug messages")
	flag.Parse()
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := agent.Run(context.Background(), log, o); err != nil {
		fmt.Fprintln(os.Stderr, "hutch-agent:", err)
		os.Exit(1)
	}
}
