package sandbox

import (
	"errors"
	"testing"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

func TestMove(t *testing.T) {
	const (
		none     = State("")
		creating = StateCreating
		running  = StateRunning
		stopped  = StateStopped
		sleeping = StateSleeping
		failed   = StateFailed
	)
	tests := []struct {
		from, to State
		ok       bool
	}{
		{none, creating, true},
		{none, running, true},
		{none, sleeping, false},
		{none, stopped, false},
		{creating, running, true},
		{creating, stopped, true},
		{creating, sleeping, false},
		{creating, creating, false},
		{running, running, true},
		{running, sleeping, true},
		{running, stopped, true},
		{running, creating, false},
		{stopped, running, true},
		{stopped, sleeping, true},
		{stopped, stopped, false},
		{stopped, creating, false},
		{sleeping, running, true},
		{sleeping, stopped, false},
		{sleeping, sleeping, false},
		{sleeping, creating, false},
		{failed, running, true},
		{failed, sleeping, false},
		{failed, creating, false},
		// Anything may fail.
		{none, failed, true},
		{creating, failed, true},
		{running, failed, true},
		{stopped, failed, true},
		{sleeping, failed, true},
		{failed, failed, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.from)+"→"+string(tt.to), func(t *testing.T) {
			if got := CanMove(tt.from, tt.to); got != tt.ok {
				t.Fatalf("CanMove = %v, want %v", got, tt.ok)
			}
			r := Record{Name: "a", State: tt.from}
			err := r.Move(tt.to)
			switch {
			case tt.ok && (err != nil || r.State != tt.to):
				t.Fatalf("Move = %v, state %q; want %q", err, r.State, tt.to)
			case !tt.ok && !errors.Is(err, errdefs.ErrFailedPrecondition):
				t.Fatalf("Move = %v, want failed precondition", err)
			case !tt.ok && r.State != tt.from:
				t.Fatalf("refused Move changed the state to %q", r.State)
			}
		})
	}
}

func TestDaemonTag(t *testing.T) {
	a, b := DaemonTag("/var/lib/hutch"), DaemonTag("/var/lib/hutch2")
	if len(a) != 8 || a == b || DaemonTag("/var/lib/hutch/") != a {
		t.Fatalf("tags %q %q: want 8 hex digits, distinct per data dir, stable under cleaning", a, b)
	}
}
