package egress

import "context"

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

func (s *Service) Log(sandbox string, n int) []Entry { return s.Proxy.Log(sandbox, n) }

// CAPEM returns the CA certificate, after replacing the CA if rotate.
func (s *Service) CAPEM(rotate bool) ([]byte, error) {
	if rotate {
		if err := s.CA.Rotate(); err != nil {
			return nil, err
		}
	}
	return s.CA.PEM(), nil
}
