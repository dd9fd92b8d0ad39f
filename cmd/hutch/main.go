// Command hutch is the hutch CLI and daemon (`hutch serve`).
package main

import (
	"os"

	"github.com/hutch-sh/hutch/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
