// Package kernel runs the agent's code interpreter: persistent Python
// contexts in real Jupyter kernels (ipykernel, spoken to over ZeroMQ) and
// JavaScript/TypeScript contexts in a Node process with a persistent vm
// context, streaming each cell's output as it is printed.
package kernel

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/agent/spawn"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// Languages a context can have.
const (
	Python     = "python"
	JavaScript = "javascript"
	TypeScript = "typescript"
)

// ParseLanguage accepts a language's name or its usual abbreviation.
func ParseLanguage(s string) (string, error) {
	switch strings.ToLower(s) {
	case "python", "py", "python3":
		return Python, nil
	case "javascript", "js", "node":
		return JavaScript, nil
	case "typescript", "ts":
		return TypeScript, nil
	case "":
		return "", fmt.Errorf("language: want python, javascript or typescript: %w", errdefs.ErrInvalidArgument)
	}
	return "", fmt.Errorf("language %q: unknown; want python, javascript or typescript: %w", s, errdefs.ErrInvalidArgument)
}

// Spawner starts the kernels' processes as children of the agent.
type Spawner interface {
	Spawn(r spawn.SpawnRequest) (*spawn.Child, error)
}

var _ Spawner = (*spawn.Spawner)(nil)

// cellEnd is how a cell ended, as the kernel saw it.
type cellEnd struct {
	status hutchv1.CodeStatus
	count  int32
}

// emit sends one event of a running cell; an error means the caller is gone.
type emit func(*hutchv1.CodeEvent) error

// kernel is one running interpreter process with its state.
type kernel interface {
	// execute runs one cell, emitting its output as it comes, until the
	// kernel reports the cell done, ctx ends, or the kernel exits.
	execute(ctx context.Context, code string, out emit) (cellEnd, error)
	child() *spawn.Child
	// close stops the kernel and removes its files.
	close()
}

// interrupt asks a kernel to stop its running cell (KeyboardInterrupt in
// Python; breakOnSigint or abandoning the awaited promise in Node).
func interrupt(k kernel) { k.child().Signal(syscall.SIGINT) }

// repeater is a kernel whose interrupt may be lost and is safe to send
// again until the cell ends: Node's SIGINT handler ignores one that comes
// between cells, while one that comes in the instant before a cell enters
// its script has nothing left to stop the script with.
type repeater interface{ repeatsInterrupt() bool }

var _ repeater = (*node)(nil)

// exited reports whether the kernel's process has ended.
func exited(k kernel) bool {
	select {
	case <-k.child().Exited():
		return true
	default:
		return false
	}
}

// logTail returns the last lines of a kernel's log, for error messages.
func logTail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}
