package egress

import (
	"context"
	"time"
)

// Policies keeps sandboxes' policies (the manager).
type Policies interface {
	SetPolicy(ctx context.Context, sandbox string, p Policy, create bool) error
	Policy(sandbox string) (Policy, error)
}

// Service is egress control as the API offers it: secrets, policies, logs
// and the CA.
type Service struct {
	Secrets  *Secrets
	CA       *CA
	Proxy    *Proxy
	Policies Policies
}

// SetSecret stores or rotates a secret; scope, globs over sandbox names,
// replaces its scope unless empty.
func (s *Service) SetSecret(name, value string, scope []string) error {
	var sc *Scope
	if len(scope) > 0 {
		parsed, err := ParseScope(scope)
		if err != nil {
			return err
		}
		sc = &parsed
	}
	return s.Secrets.Set(name, value, sc)
}

func (s *Service) DeleteSecret(name string) error { return s.Secrets.Delete(name) }
func (s *Service) ListSecrets() []SecretInfo      { return s.Secrets.List() }

// SetPolicy refuses a policy whose rules use a secret outside its scope for
// sandbox, then hands it to the manager.
func (s *Service) SetPolicy(ctx context.Context, sandbox string, p Policy, create bool) error {
	if err := s.Secrets.CheckPolicy(sandbox, p); err != nil {
		return err
	}
	return s.Policies.SetPolicy(ctx, sandbox, p, create)
}

func (s *Service) Policy(sandbox string) (Policy, error) { return s.Policies.Policy(sandbox) }

// Log returns up to n (all when n <= 0) of the latest entries of the
// sandbox created at since, oldest first. A log is kept by name, so it may
// still hold an earlier sandbox's of the same name: those are not its.
func (s *Service) Log(sandbox string, since time.Time, n int) []Entry {
	all := s.Proxy.Log(sandbox, 0)
	out := all[:0]
	for _, e := range all {
		if !e.Time.Before(since) {
			out = append(out, e)
		}
	}
	if n > 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// CAPEM returns the CA certificate, after replacing the CA if rotate.
func (s *Service) CAPEM(rotate bool) ([]byte, error) {
	if rotate {
		if err := s.CA.Rotate(); err != nil {
			return nil, err
		}
	}
	return s.CA.PEM(), nil
}
