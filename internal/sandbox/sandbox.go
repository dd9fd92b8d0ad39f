// Package sandbox is hutch's domain: what a sandbox is (Record, State and
// its transitions, Limits, CreateOptions, name rules), shared by the
// manager, the API server and the cluster without importing any of them.
package sandbox

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/hutch-sh/hutch/internal/egress"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

// State is a sandbox's lifecycle state.
type State string

const (
	StateCreating State = "creating"
	StateRunning  State = "running"
	StateStopped  State = "stopped" // disk kept; starts again on next use
	// StateSleeping: put to sleep when idle or asked; disk, env, ports and
	// address kept; wakes on the next call.
	StateSleeping State = "sleeping"
	StateFailed   State = "failed"
)

// transitions lists where each state may go, as the manager moves them.
// Any state may fail, and a removal ends every state, so neither is listed.
var transitions = map[State][]State{
	"":            {StateCreating, StateRunning}, // created; a warm pool entry starts running
	StateCreating: {StateRunning, StateStopped},  // started; or found half-made after a restart
	// Running again: restarted after its agent stopped answering.
	StateRunning:  {StateRunning, StateSleeping, StateStopped},
	StateStopped:  {StateRunning, StateSleeping},
	StateSleeping: {StateRunning},
	StateFailed:   {StateRunning},
}

// CanMove reports whether a sandbox in state from may be moved to to.
func CanMove(from, to State) bool {
	if to == StateFailed {
		return true
	}
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Move checks the transition and returns an error naming both states when
// it is not allowed.
func (r *Record) Move(to State) error {
	if !CanMove(r.State, to) {
		return fmt.Errorf("sandbox %q is %s and cannot become %s: %w", r.Name, r.State, to, errdefs.ErrFailedPrecondition)
	}
	r.State = to
	return nil
}

// Record is what the daemon persists about one sandbox.
type Record struct {
	Name      string    `json:"name"`
	ID        string    `json:"id"`
	Image     string    `json:"image"`
	Runtime   string    `json:"runtime"`
	State     State     `json:"state"`
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	Limits    Limits    `json:"limits"`
	// The image's layers and env, frozen at creation: rebuilding an image
	// never changes the base of an existing sandbox.
	Lowers []string `json:"lowers"`
	Env    []string `json:"env"`
	// Ports exposed as preview URLs, with their tokens.
	Ports map[int]string `json:"ports,omitempty"`
	// Addr is the sandbox's address on the daemon's network, kept for its
	// whole life so it is the same after a restart or a wake.
	Addr netip.Addr `json:"addr,omitzero"`
	// Policy is the sandbox's egress policy; nil is egress.DefaultPolicy.
	Policy *egress.Policy `json:"policy,omitempty"`
	// SleepAfter is the idle time before the sandbox sleeps (0: the
	// default); KeepAlive keeps it awake however idle.
	SleepAfter time.Duration `json:"sleepAfter,omitempty"`
	KeepAlive  bool          `json:"keepAlive,omitempty"`
	// FromSnapshot is the snapshot the sandbox was created from.
	FromSnapshot string `json:"fromSnapshot,omitempty"`
	// Persist pushes the disk on sleep; Persisted is the snapshot the last
	// sleep pushed.
	Persist   bool   `json:"persist,omitempty"`
	Persisted string `json:"persisted,omitempty"`
}

// DefaultSleepAfter is how long a sandbox stays idle before it sleeps.
const DefaultSleepAfter = 10 * time.Minute

// MinSleepAfter is the shortest idle time a sandbox can be given.
const MinSleepAfter = time.Second

// IdleLimit is rec's effective idle time before sleep.
func (r Record) IdleLimit() time.Duration {
	if r.SleepAfter <= 0 {
		return DefaultSleepAfter
	}
	return r.SleepAfter
}

// CreateOptions shape a new sandbox; they are ignored when it exists.
type CreateOptions struct {
	Image        string
	InstanceType string
	Policy       *egress.Policy // egress policy; nil for the default
	SleepAfter   time.Duration  // 0: DefaultSleepAfter
	KeepAlive    bool
	// FromSnapshot starts the sandbox with a snapshot's disk.
	FromSnapshot string
}
