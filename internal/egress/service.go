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

func (s *Service) SetSecret(name, value string) error { return s.Secrets.Set(name, value) }
func (s *Service) DeleteSecret(name string) error     { return s.Secrets.Delete(name) }
func (s *Service) SecretNames() []string              { return s.Secrets.Names() }

func (s *Service) SetPolicy(ctx context.Context, sandbox string, p Policy, create bool) error {
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
