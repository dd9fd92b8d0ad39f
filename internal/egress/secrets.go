package egress

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// Secrets holds the values rules inject. They live only in the daemon:
// sealed with AES-GCM in secrets.json under a key in secrets.key (both
// 0600), never logged, never returned by the API, which lists names and
// scopes only.
type Secrets struct {
	path string
	aead cipher.AEAD

	mu   sync.RWMutex
	vals map[string]secret
}

type secret struct {
	value string
	scope Scope
}

// SecretInfo is what the API tells of a secret.
type SecretInfo struct {
	Name  string
	Scope Scope
}

// secretsFile is secrets.json. The first format, a map of name to sealed
// value, still loads; it has no "version", which is a number here.
type secretsFile struct {
	Version int                     `json:"version"`
	Secrets map[string]sealedSecret `json:"secrets"`
}

type sealedSecret struct {
	Sealed []byte `json:"sealed"`
	Scope  Scope  `json:"scope"`
}

const secretsVersion = 2

// MaxSecretBytes bounds one secret's value.
const MaxSecretBytes = 16 << 10

// OpenSecrets loads the secrets kept in dir.
func OpenSecrets(dir string) (*Secrets, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	keyPath := filepath.Join(dir, "secrets.key")
	key, err := os.ReadFile(keyPath)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
		err = writeFile(keyPath, key, 0o600)
	}
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secrets key %s: %w", keyPath, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	s := &Secrets{path: filepath.Join(dir, "secrets.json"), aead: aead, vals: make(map[string]secret)}
	data, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	sealed, err := parseSecretsFile(data)
	if err != nil {
		return nil, fmt.Errorf("secrets file %s: %w", s.path, err)
	}
	ns := aead.NonceSize()
	for name, sec := range sealed {
		box := sec.Sealed
		if len(box) < ns {
			return nil, fmt.Errorf("secret %s in %s is truncated: %w", name, s.path, errdefs.ErrInternal)
		}
		plain, err := aead.Open(nil, box[:ns], box[ns:], []byte(name))
		if err != nil {
			return nil, fmt.Errorf("secret %s in %s does not open with %s: %w", name, s.path, keyPath, errdefs.ErrInternal)
		}
		s.vals[name] = secret{value: string(plain), scope: sec.Scope}
	}
	return s, nil
}

// parseSecretsFile reads either format of secrets.json; the first one's
// secrets have no scope, so every sandbox keeps using them until scoped.
func parseSecretsFile(data []byte) (map[string]sealedSecret, error) {
	var v1 map[string][]byte
	if json.Unmarshal(data, &v1) == nil {
		out := make(map[string]sealedSecret, len(v1))
		for name, box := range v1 {
			out[name] = sealedSecret{Sealed: box}
		}
		return out, nil
	}
	var f secretsFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	if f.Version != secretsVersion {
		return nil, fmt.Errorf("version %d, want %d (written by a newer hutch?): %w", f.Version, secretsVersion, errdefs.ErrFailedPrecondition)
	}
	return f.Secrets, nil
}

// Set stores or rotates a secret. A nil scope keeps the one the secret
// has, so a rotation never widens it; a new secret set without one is for
// every sandbox.
func (s *Secrets) Set(name, value string, scope *Scope) error {
	if !secretName.MatchString(name) {
		return fmt.Errorf("secret name %q: want 1 to 64 letters, digits and _, not starting with a digit: %w", name, errdefs.ErrInvalidArgument)
	}
	if value == "" || len(value) > MaxSecretBytes {
		return fmt.Errorf("secret %s: want 1 to %d bytes, got %d: %w", name, MaxSecretBytes, len(value), errdefs.ErrInvalidArgument)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("secret %s: the value holds a line break or NUL, which cannot go into a header: %w", name, errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.vals[name]
	sec := secret{value: value, scope: old.scope}
	if scope != nil {
		sec.scope = *scope
	}
	s.vals[name] = sec
	if err := s.save(); err != nil {
		if had {
			s.vals[name] = old
		} else {
			delete(s.vals, name)
		}
		return err
	}
	return nil
}

// Delete removes a secret; not_found if there is none.
func (s *Secrets) Delete(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.vals[name]
	if !ok {
		return fmt.Errorf("secret %q: %w", name, errdefs.ErrNotFound)
	}
	delete(s.vals, name)
	if err := s.save(); err != nil {
		s.vals[name] = old
		return err
	}
	return nil
}

// List lists the secrets by name.
func (s *Secrets) List() []SecretInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]SecretInfo, 0, len(s.vals))
	for n, sec := range s.vals {
		out = append(out, SecretInfo{Name: n, Scope: sec.scope})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CheckPolicy refuses a policy for sandbox whose rules use a secret the
// sandbox may not use. A secret that does not exist yet passes: the proxy
// checks the scope again on every request.
func (s *Secrets) CheckPolicy(sandbox string, p Policy) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i, r := range p.Rules {
		for _, name := range r.SecretRefs() {
			if sec, ok := s.vals[name]; ok && !sec.scope.Allows(sandbox) {
				return fmt.Errorf("egress policy rule %d for host %q uses secret %s, which sandbox %s may not use (its scope: %s; widen it with hutch secret set %s --for GLOB): %w",
					i, r.Host, name, sandbox, sec.scope, name, errdefs.ErrPermissionDenied)
			}
		}
	}
	return nil
}

// forSandbox is how the proxy reads secrets for a request of sandbox: one
// outside the sandbox's scope is refused like a missing one, so a fork, a
// rename or a scope set after the policy cannot leak it. Errors name the
// secret, never a value.
func (s *Secrets) forSandbox(sandbox string) func(name string) (string, error) {
	return func(name string) (string, error) {
		s.mu.RLock()
		defer s.mu.RUnlock()
		sec, ok := s.vals[name]
		if !ok {
			return "", fmt.Errorf("secret %s is not set in the daemon (hutch secret set %s): %w", name, name, errdefs.ErrFailedPrecondition)
		}
		if !sec.scope.Allows(sandbox) {
			return "", fmt.Errorf("secret %s is not for sandbox %s (its scope: %s): %w", name, sandbox, sec.scope, errdefs.ErrPermissionDenied)
		}
		return sec.value, nil
	}
}

func (s *Secrets) save() error {
	f := secretsFile{Version: secretsVersion, Secrets: make(map[string]sealedSecret, len(s.vals))}
	for name, sec := range s.vals {
		nonce := make([]byte, s.aead.NonceSize())
		_, _ = rand.Read(nonce)
		f.Secrets[name] = sealedSecret{Sealed: s.aead.Seal(nonce, nonce, []byte(sec.value), []byte(name)), Scope: sec.scope}
	}
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := writeFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.path)
}
