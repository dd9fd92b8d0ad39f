package proc

import (
	"context"
	"testing"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
)

// BenchmarkExecTrue is the agent's own exec round trip, without a sandbox.
func BenchmarkExecTrue(b *testing.B) {
	c := newClient(&testing.T{}, nil)
	ctx := context.Background()
	for b.Loop() {
		s, err := c.Exec(ctx, connect.NewRequest(&hutchv1.ExecRequest{Argv: []string{"/bin/true"}}))
		if err != nil {
			b.Fatal(err)
		}
		for s.Receive() {
		}
		if err := s.Err(); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
