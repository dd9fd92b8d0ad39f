// Command bench measures a real hutch daemon through the Go SDK and compares
// sandbox creation with plain `runc run` on the same image: `make bench`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	asJSON := flag.Bool("json", false, "print the figures as JSON")
	only := flag.String("only", "", `measure only this group of figures ("terminal", "egress" or "snapshot")`)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := config{
		binDir:   os.Getenv("HUTCH_BIN"),
		cacheDir: os.Getenv("HUTCH_CACHE"),
		image:    "default", // what Exec creates sandboxes from
		json:     *asJSON,
		only:     *only,
	}
	if cfg.cacheDir == "" {
		cfg.cacheDir = "/var/cache/hutch"
	}
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
