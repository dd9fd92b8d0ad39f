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
// 0600), never logged, never returned by the API, which lists names only.
type Secrets struct {
	path string
	aead cipher.AEAD

	mu   sync.RWMutex
	vals map[string]string
}

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
	s := &Secrets{path: filepath.Join(dir, "secrets.json"), aead: aead, vals: make(map[string]string)}
	data, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	var sealed map[string][]byte
	if err := json.Unmarshal(data, &sealed); err != nil {
		return nil, fmt.Errorf("secrets file %s: %w", s.path, err)
	}
	ns := aead.NonceSize()
	for name, box := range sealed {
		if len(box) < ns {
			return nil, fmt.Errorf("secret %s in %s is truncated: %w", name, s.path, errdefs.ErrInternal)
		}
		plain, err := aead.Open(nil, box[:ns], box[ns:], []byte(name))
		if err != nil {
			return nil, fmt.Errorf("secret %s in %s does not open with %s: %w", name, s.path, keyPath, errdefs.ErrInternal)
		}
		s.vals[name] = string(plain)
	}
	return s, nil
}

// Set stores or rotates a secret.
func (s *Secrets) Set(name, value string) error {
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
	s.vals[name] = value
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

// Names lists the secrets, sorted.
func (s *Secrets) Names() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.vals))
	for n := range s.vals {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// get is for the proxy only.
func (s *Secrets) get(name string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.vals[name]
	return v, ok
}

func (s *Secrets) save() error {
	sealed := make(map[string][]byte, len(s.vals))
	for name, v := range s.vals {
		nonce := make([]byte, s.aead.NonceSize())
		_, _ = rand.Read(nonce)
		sealed[name] = s.aead.Seal(nonce, nonce, []byte(v), []byte(name))
	}
	data, err := json.Marshal(sealed)
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := writeFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.path)
}
