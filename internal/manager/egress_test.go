package manager

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/hutch-sh/hutch/internal/egress"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

func TestPolicyLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := egress.Policy{Internet: false, Allow: []string{"api.test"}}
	if err := e.m.SetPolicy(ctx, "pol", p, false); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("SetPolicy of a missing sandbox without create: %v", err)
	}
	if _, err := e.m.Policy("pol"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Policy of a missing sandbox: %v", err)
	}
	if err := e.m.SetPolicy(ctx, "pol", egress.Policy{Deny: []string{"[bad"}}, true); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("invalid policy: %v", err)
	}
	if err := e.m.SetPolicy(ctx, "pol", p, true); err != nil {
		t.Fatal(err)
	}
	rec, err := e.m.Get("pol")
	if err != nil || rec.State != sandbox.StateRunning {
		t.Fatalf("SetPolicy with create did not start the sandbox: %+v %v", rec, err)
	}
	// Identities are indexed by address, which this manager (no network)
	// does not hand out.
	if _, ok := e.m.Identify(netip.MustParseAddr("10.0.0.2")); ok {
		t.Fatalf("an address no sandbox has was identified")
	}
	// The policy is in the record: it survives a daemon restart.
	e.restart()
	got, err := e.m.Policy("pol")
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("policy after restart: %+v %v, want %+v", got, err, p)
	}
	if _, _, _, err := e.m.Ensure(ctx, "plain", sandbox.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.m.Policy("plain"); !reflect.DeepEqual(got, egress.DefaultPolicy()) {
		t.Fatalf("a sandbox made without a policy has %+v", got)
	}
}

// A fork keeps its original's egress policy unless it is given one.
func TestForkKeepsPolicy(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := egress.Policy{Internet: false, Allow: []string{"registry.test"}}
	if err := e.m.SetPolicy(ctx, "src", p, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.m.Fork(ctx, "src", []string{"kid"}, "", sandbox.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.m.Policy("kid"); err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("fork's policy %+v %v, want the original's %+v", got, err, p)
	}
	other := egress.Policy{Internet: true, Deny: []string{"*.evil.test"}}
	if _, _, err := e.m.Fork(ctx, "src", []string{"kid2"}, "", sandbox.CreateOptions{Policy: &other}); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.m.Policy("kid2"); !reflect.DeepEqual(got, other) {
		t.Fatalf("fork given a policy has %+v, want %+v", got, other)
	}
}
