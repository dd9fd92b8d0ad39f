package manager

import (
	"context"
	"net/netip"
	"os"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hutch-sh/hutch/internal/egress"
	"github.com/hutch-sh/hutch/internal/network"
	"github.com/hutch-sh/hutch/internal/runtime"
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

// Record is what the daemon persists about one sandbox.
type Record struct {
	Name      string         `json:"name"`
	ID        string         `json:"id"`
	Image     string         `json:"image"`
	Runtime   string         `json:"runtime"`
	State     State          `json:"state"`
	Reason    string         `json:"reason,omitempty"`
	CreatedAt time.Time      `json:"createdAt"`
	StartedAt time.Time      `json:"startedAt,omitzero"`
	Limits    runtime.Limits `json:"limits"`
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
	// Persist pushes the disk on sleep (see persist.go); Persisted is the
	// snapshot the last sleep pushed.
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

// Rootfs is a resolved image.
type Rootfs struct {
	Image  string
	Lowers []string // unpacked layer dirs, top first
	Env    []string
}

// Images resolves image names; "" is the default image.
type Images interface {
	Resolve(ctx context.Context, name string) (Rootfs, error)
}

// Runtime runs containers from OCI bundles.
type Runtime interface {
	Name() string
	Start(ctx context.Context, id, bundle string, spec *specs.Spec, logPath string, extra ...*os.File) error
	State(ctx context.Context, id string) (runtime.Status, int, error)
	Delete(ctx context.Context, id string) error
}

// Network connects sandboxes (internal/network implements it).
type Network interface {
	Allocate(id string) (netip.Addr, error)
	Reserve(id string, addr netip.Addr) error
	Release(id string, addr netip.Addr)
	// Setup creates id's network namespace at nsPath, addressed addr.
	Setup(id, nsPath string, addr netip.Addr) (network.Attachment, error)
	// Teardown removes what Setup made; the address stays id's.
	Teardown(id, nsPath string) error
	ResolvConf() []byte
	// Sweep removes what sandboxes that known does not recognise left.
	Sweep(known func(id string) bool)
}

// Store persists records by sandbox name.
type Store interface {
	Put(key string, v any) error
	Delete(key string) error
	Each(fn func(key string, raw []byte) error) error
}

// InstanceTypes are the named resource shapes a sandbox can be created with.
var InstanceTypes = map[string]runtime.Limits{
	"lite":     {CPUMillis: 250, MemoryBytes: 256 << 20, Pids: 256},
	"basic":    {CPUMillis: 1000, MemoryBytes: 1 << 30, Pids: 512},
	"standard": {CPUMillis: 2000, MemoryBytes: 4 << 30, Pids: 1024},
}

// DefaultInstanceType is used when a request names none.
const DefaultInstanceType = "basic"

// CreateOptions shape a new sandbox; they are ignored when it exists.
type CreateOptions struct {
	Image        string
	InstanceType string
	Policy       *egress.Policy // egress policy; nil for the default
	SleepAfter   time.Duration  // 0: DefaultSleepAfter
	KeepAlive    bool
	// FromSnapshot starts the sandbox with a snapshot's disk.
	FromSnapshot string
	// mustResume: create it only from a persisted session (see persist.go).
	mustResume bool
}
