package manager

import (
	"context"
	"errors"
	"testing"

	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

// A call that adds something creates the sandbox on demand; any other call
// on a sandbox that does not exist is not_found and creates nothing.
func TestAgentCreatesOnlyWhenAdding(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		sandbox string
		access  sandbox.Access
		wantErr error
		want    []string // the sandboxes listed after the call
	}{
		{"existing call on a missing sandbox", "files", sandbox.Existing, errdefs.ErrNotFound, nil},
		{"adding call creates it", "files", sandbox.Adding, nil, []string{"files"}},
		{"existing call once it exists", "files", sandbox.Existing, nil, []string{"files"}},
		{"adding call on an existing one creates nothing new", "files", sandbox.Adding, nil, []string{"files"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := e.m.Agent(ctx, tt.sandbox, tt.access)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Agent = %v, want %v", err, tt.wantErr)
				}
			} else if err != nil || c == nil {
				t.Fatalf("Agent = %v, %v", c, err)
			} else if err := c.Ping(ctx); err != nil {
				t.Fatalf("agent does not answer: %v", err)
			}
			var got []string
			for _, r := range e.m.List() {
				got = append(got, r.Name)
			}
			if len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) {
				t.Errorf("List = %v, want %v", got, tt.want)
			}
		})
	}
	if n := e.rt.startCount(); n != 1 {
		t.Errorf("runtime Start called %d times, want 1", n)
	}
}
