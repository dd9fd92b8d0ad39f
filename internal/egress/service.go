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
