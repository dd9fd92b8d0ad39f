package manager

import (
	"context"
	"net/netip"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hutch-sh/hutch/internal/network"
	"github.com/hutch-sh/hutch/internal/runtime"
)

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
