package manager

import (
	"context"

	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// Agent returns the agent of sandbox name for a call that does a: a call
// that adds something creates the sandbox on demand; any other call on a
// sandbox that does not exist is not_found, and leaves nothing behind.
func (m *Manager) Agent(ctx context.Context, name string, a sandbox.Access) (*agentconn.Conn, error) {
	if a == sandbox.Adding {
		_, c, _, err := m.Ensure(ctx, name, sandbox.CreateOptions{})
		return c, err
	}
	return m.Conn(ctx, name)
}
