package sandbox

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"maps"
	"slices"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// A sandbox's ports are exposed as preview URLs, each with a token of its
// own: {port}-{name}-{token}.DOMAIN.

// tokenAlphabet has no '-', so a preview host splits unambiguously.
const tokenAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// TokenLen is the length of a preview URL token.
const TokenLen = 16

// NewToken returns a fresh preview token.
func NewToken() string {
	b := make([]byte, TokenLen)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = tokenAlphabet[int(b[i])%len(tokenAlphabet)]
	}
	return string(b)
}

// ValidatePort checks that port is a TCP port.
func ValidatePort(port int) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("port %d: must be 1-65535: %w", port, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Expose returns r with port exposed under a new token, and the token; a
// port already exposed keeps its token (and r is returned as it is). r's
// Ports map is never written: records are shared by copy.
func (r Record) Expose(port int) (Record, string) {
	if tok, ok := r.Ports[port]; ok {
		return r, tok
	}
	tok := NewToken()
	ports := make(map[int]string, len(r.Ports)+1)
	maps.Copy(ports, r.Ports)
	ports[port] = tok
	r.Ports = ports
	return r, tok
}

// Unexpose returns r without port's preview URL; not_found if it was not
// exposed.
func (r Record) Unexpose(port int) (Record, error) {
	if _, ok := r.Ports[port]; !ok {
		return r, fmt.Errorf("port %d of sandbox %q is not exposed: %w", port, r.Name, errdefs.ErrNotFound)
	}
	ports := maps.Clone(r.Ports)
	delete(ports, port)
	r.Ports = ports
	return r, nil
}

// ExposedPorts lists r's exposed ports in order.
func (r Record) ExposedPorts() []int {
	return slices.Sorted(maps.Keys(r.Ports))
}

// Opens reports, in constant time, whether token opens port of r.
func (r Record) Opens(port int, token string) bool {
	want, ok := r.Ports[port]
	return ok && subtle.ConstantTimeCompare([]byte(want), []byte(token)) == 1
}
