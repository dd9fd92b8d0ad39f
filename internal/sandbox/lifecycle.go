package sandbox

import (
	"context"
	"net/netip"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The interfaces below are what the lifecycle consumes. Each
// implementation carries a compile-time guard next to it, optional
// capabilities included: a capability found by type assertion with no
// guard would switch a feature off silently when a signature drifts.

// Rootfs is a resolved image: what a sandbox's root is stacked from.
type Rootfs struct {
	Image  string
	Lowers []string // unpacked layer dirs, top first
	Env    []string
}

// Images resolves image names; "" is the default image.
type Images interface {
	Resolve(ctx context.Context, name string) (Rootfs, error)
}

// Status is what a runtime knows of a container.
type Status string

const (
	StatusMissing Status = "missing" // the runtime has no such container
	StatusCreated Status = "created"
	StatusRunning Status = "running"
	StatusPaused  Status = "paused"
	StatusStopped Status = "stopped"
)

// Runtime runs containers from OCI bundles (internal/runtime).
type Runtime interface {
	Name() string
	// Start runs the container detached; extra files become its fds 3, 4, ...
	Start(ctx context.Context, id, bundle string, spec *specs.Spec, logPath string, extra ...*os.File) error
	// State reports the container's status and its init's pid.
	State(ctx context.Context, id string) (Status, int, error)
	// Delete kills the container and removes everything the runtime made
	// for it on the host (its cgroups included); a missing one is no error.
	Delete(ctx context.Context, id string) error
}

// Preparer is a runtime that can make a container without starting its
// process, and start it later: a sleeping sandbox waits prepared so that a
// wake is only a start. Its two halves only make sense together.
type Preparer interface {
	Create(ctx context.Context, id, bundle string, spec *specs.Spec, logPath string, extra ...*os.File) error
	StartCreated(ctx context.Context, id string) error
}

// Hostnamer is a runtime that can rename a running sandbox, given a pidfd
// of its init: the warm pool needs it to hand out pooled sandboxes.
type Hostnamer interface {
	SetHostname(pidfd int, name string) error
}

// Freezer is a runtime that can stop every task of a sandbox in place (a
// snapshot's consistent view of the disk); thaw undoes it.
type Freezer interface {
	Freeze(ctx context.Context, id string) (thaw func(), err error)
}

// Sweeper is a runtime that leaves things on the host beyond its own state
// (cgroups): Sweep removes what belongs to no sandbox known reports.
type Sweeper interface {
	Sweep(ctx context.Context, known func(id string) bool)
}

// Network connects sandboxes (internal/network). Addresses are a
// sandbox's for its whole life; Setup and Teardown attach and detach it.
type Network interface {
	Allocate(ctx context.Context, id string) (netip.Addr, error)
	Reserve(ctx context.Context, id string, addr netip.Addr) error
	Release(ctx context.Context, id string, addr netip.Addr)
	// Setup creates id's network namespace at nsPath, addressed addr.
	Setup(ctx context.Context, id, nsPath string, addr netip.Addr) error
	// Teardown removes what Setup made; the address stays id's.
	Teardown(ctx context.Context, id, nsPath string) error
	// ResolvConf is the resolv.conf sandboxes get.
	ResolvConf() []byte
	// Sweep removes what sandboxes that known does not recognise left.
	Sweep(ctx context.Context, known func(id string) bool)
}

// Store is the metadata store: records by sandbox name (internal/store).
type Store interface {
	Put(ctx context.Context, key string, v any) error
	Delete(ctx context.Context, key string) error
	Each(ctx context.Context, fn func(key string, raw []byte) error) error
}
