package exec

import (
	"os"
	"sync"
	"syscall"

	"github.com/hutch-sh/hutch/internal/agent/registry"
	"github.com/hutch-sh/hutch/internal/agentapi/envelope"
)

// Table is where running commands are found by id (WriteStdin, Signal),
// and the output buffers they share. Exec and session commands are in one
// Table, so their ids are one namespace.
type Table struct {
	runs *registry.Registry[*Execution]
	bufs *sync.Pool // *[]byte of ReadChunk bytes after envelope.OutputHeadroom
}

// NewTable returns an empty Table.
func NewTable() *Table {
	return &Table{
		runs: registry.New("exec", registry.Options[*Execution]{}),
		bufs: &sync.Pool{New: func() any { b := make([]byte, envelope.OutputHeadroom+ReadChunk); return &b }},
	}
}

// Execution is a running command as WriteStdin and Signal see it.
type Execution struct {
	pid    int
	signal func(syscall.Signal) // set for session commands, whose pid is the shell

	mu    sync.Mutex
	stdin *os.File // nil when stdin was not requested or is closed
}

func (e *Execution) closeStdin() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stdin != nil {
		_ = e.stdin.Close()
		e.stdin = nil
	}
}

// Register makes r findable by WriteStdin and Signal under a new id, until
// done is called.
func (t *Table) Register(r *Running) (id string, done func()) {
	// Add fails only on a closed registry, and this one is never closed.
	_, _ = t.runs.Add("", func(nid string) (*Execution, error) { id = nid; return r.exec, nil })
	return id, func() { t.runs.Remove(id, r.exec) }
}
