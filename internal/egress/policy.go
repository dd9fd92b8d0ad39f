package egress

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"path"
	"regexp"
	"strings"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

// Policy is one sandbox's egress policy, the JSON of `hutch policy set`.
//
// A connection or request to host H (a name, or an address when the
// sandbox used one) from sandbox S is decided in this order; the first
// step that decides wins:
//
//  1. deny: H matches a deny pattern;
//  2. always blocked: the daemon resolves H itself (a sandbox's
//     /etc/hosts or DNS answers change nothing) and refuses the host's own
//     addresses, loopback, the sandboxes' subnet, link-local (cloud
//     metadata) and multicast;
//  3. deny again, against the resolved address;
//  4. allow gate: allow is not empty and neither H nor its address
//     matches an entry;
//  5. default: internet off lets through only what allow matched;
//  6. private ranges: an address in a private or special-purpose range
//     (RFC 1918, CGNAT, benchmarking, ...) or on one of the host's own
//     networks (its LAN, whatever the range) needs an allow
//     entry that names that address or a prefix holding it, so an allowed
//     name never leads to a private address by DNS rebinding;
//  7. per-host rules: the first rule whose host pattern matches (and whose
//     sandboxes, if any, match S) rewrites the requests' headers, which
//     for HTTPS means the daemon intercepts it with its CA.
//
// Patterns are globs where * spans any characters ("*.example.com" matches
// "a.b.example.com", not "example.com"), addresses or prefixes.
// Non-HTTP TCP goes through only to addresses that an allow entry names.
type Policy struct {
	Internet bool     `json:"internet"`
	Allow    []string `json:"allow,omitempty"`
	Deny     []string `json:"deny,omitempty"`
	Rules    []Rule   `json:"rules,omitempty"`
}

// Rule rewrites the requests to matching hosts. Values may hold
// {{secret:NAME}}, expanded by the daemon on the way out.
type Rule struct {
	Host string `json:"host"`
	// Sandboxes restricts the rule to sandboxes whose name matches one of
	// these patterns; empty means every sandbox.
	Sandboxes []string `json:"sandboxes,omitempty"`
	// Headers are set on each request, replacing what the sandbox sent.
	Headers map[string]string `json:"headers,omitempty"`
	// Replace swaps placeholders the sandbox sends in header values (say,
	// a dummy token in its config) for the real values.
	Replace map[string]string `json:"replace,omitempty"`
}

// DefaultPolicy is the policy of a sandbox that was given none.
func DefaultPolicy() Policy { return Policy{Internet: true} }

// ParsePolicy reads and validates a policy's JSON; "internet" defaults to
// true. Unknown fields are an error, so a typo never opens anything.
func ParsePolicy(data []byte) (Policy, error) {
	p := DefaultPolicy()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Policy{}, fmt.Errorf("egress policy: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

var (
	secretRef  = regexp.MustCompile(`\{\{\s*secret:([^}]*)\}\}`)
	secretName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	hostChars  = regexp.MustCompile(`^[a-z0-9*._\-]+$`)
)

// Validate checks every pattern, header and secret reference.
func (p Policy) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("egress policy: "+format+": %w", append(a, errdefs.ErrInvalidArgument)...)
	}
	for _, list := range []struct {
		name string
		pats []string
	}{{"allow", p.Allow}, {"deny", p.Deny}} {
		for _, pat := range list.pats {
			if err := validPattern(pat); err != nil {
				return bad("%s entry %q: %v", list.name, pat, err)
			}
		}
	}
	for i, r := range p.Rules {
		if err := validPattern(r.Host); err != nil {
			return bad("rule %d host %q: %v", i, r.Host, err)
		}
		for _, s := range r.Sandboxes {
			if _, err := path.Match(s, ""); err != nil || s == "" {
				return bad("rule %d sandbox pattern %q is not a valid glob", i, s)
			}
		}
		if len(r.Headers) == 0 && len(r.Replace) == 0 {
			return bad("rule %d for %q sets no headers and replaces nothing", i, r.Host)
		}
		for k, v := range r.Headers {
			if !validHeaderName(k) {
				return bad("rule %d header name %q is not a valid HTTP header name", i, k)
			}
			if err := validTemplate(v); err != nil {
				return bad("rule %d header %s: %v", i, k, err)
			}
		}
		for k, v := range r.Replace {
			if k == "" {
				return bad("rule %d replaces an empty placeholder", i)
			}
			if err := validTemplate(v); err != nil {
				return bad("rule %d replacement for %q: %v", i, k, err)
			}
		}
	}
	return nil
}

func validPattern(pat string) error {
	if pat == "" {
		return fmt.Errorf("empty")
	}
	if _, err := netip.ParsePrefix(pat); err == nil {
		return nil
	}
	if _, err := netip.ParseAddr(pat); err == nil {
		return nil
	}
	if !hostChars.MatchString(strings.ToLower(pat)) {
		return fmt.Errorf("want a host name, a * glob, an address or a prefix")
	}
	_, err := path.Match(pat, "")
	return err
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, c) {
			return false
		}
	}
	return true
}

func validTemplate(v string) error {
	if strings.ContainsAny(v, "\r\n") {
		return fmt.Errorf("value holds a line break")
	}
	for _, m := range secretRef.FindAllStringSubmatch(v, -1) {
		if !secretName.MatchString(strings.TrimSpace(m[1])) {
			return fmt.Errorf("secret name %q: want letters, digits and _", m[1])
		}
	}
	return nil
}

// SecretRefs lists the secret names the policy's rules use.
func (p Policy) SecretRefs() []string {
	var out []string
	for _, r := range p.Rules {
		out = append(out, r.SecretRefs()...)
	}
	return out
}

// SecretRefs lists the secret names the rule uses.
func (r Rule) SecretRefs() []string {
	var out []string
	for _, m := range [2]map[string]string{r.Headers, r.Replace} {
		for _, v := range m {
			for _, m := range secretRef.FindAllStringSubmatch(v, -1) {
				out = append(out, strings.TrimSpace(m[1]))
			}
		}
	}
	return out
}

// match reports whether host (lower case, no port) matches pattern: a glob
// where * spans any characters, or an address or prefix when host is an
// address.
func match(pattern, host string) bool {
	if pr, err := netip.ParsePrefix(pattern); err == nil {
		a, err := netip.ParseAddr(host)
		return err == nil && pr.Contains(a.Unmap())
	}
	ok, _ := path.Match(strings.ToLower(pattern), host)
	return ok
}

func matchAny(patterns []string, host string) (string, bool) {
	for _, p := range patterns {
		if match(p, host) {
			return p, true
		}
	}
	return "", false
}

// allowsAddr reports whether an allow entry names addr itself (an address
// or a prefix): what it takes to reach a private address.
func (p Policy) allowsAddr(addr netip.Addr) (string, bool) {
	for _, pat := range p.Allow {
		if a, err := netip.ParseAddr(pat); err == nil && a.Unmap() == addr {
			return pat, true
		}
		if pr, err := netip.ParsePrefix(pat); err == nil && pr.Contains(addr) {
			return pat, true
		}
	}
	return "", false
}

// verdict is the outcome of the name steps (2 to 5) of a policy.
type verdict struct {
	allow bool
	rule  string // the step that decided, for people
	apply *Rule  // the per-host rule to apply, if any
}

// decide runs steps 2 to 5 for host, which the daemon resolved to addr
// (invalid when not resolved yet), as asked by sandbox. Patterns match the
// name or the address.
func (p Policy) decide(sandbox, host string, addr netip.Addr) verdict {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	names := []string{host}
	if addr.IsValid() && addr.String() != host {
		names = append(names, addr.String())
	}
	matchOne := func(pats []string) (string, bool) {
		for _, n := range names {
			if pat, ok := matchAny(pats, n); ok {
				return pat, true
			}
		}
		return "", false
	}
	if pat, ok := matchOne(p.Deny); ok {
		return verdict{rule: fmt.Sprintf("deny %q", pat)}
	}
	pat, allowed := matchOne(p.Allow)
	if len(p.Allow) > 0 && !allowed {
		return verdict{rule: fmt.Sprintf("not in allow %q", p.Allow)}
	}
	if !p.Internet && !allowed {
		return verdict{rule: "internet off and no allow entry"}
	}
	v := verdict{allow: true, rule: "internet on"}
	if allowed {
		v.rule = fmt.Sprintf("allow %q", pat)
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		if _, ok := matchOne([]string{r.Host}); ok && nameMatches(r.Sandboxes, sandbox) {
			v.apply = r
			v.rule += fmt.Sprintf(", rule %q", r.Host)
			break
		}
	}
	return v
}

// lookupAllowed says whether a DNS lookup of name may leave the host: not
// for denied names, nor, when the allow list names hosts only, for names
// it does not match (internet on or off), so a sandbox limited to a few
// hosts cannot leak data in DNS queries. An allow list with addresses
// cannot judge names before they resolve, so it lets lookups through; the
// proxy still checks every connection.
func (p Policy) lookupAllowed(name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if _, ok := matchAny(p.Deny, name); ok {
		return false
	}
	if len(p.Allow) == 0 {
		return p.Internet
	}
	for _, pat := range p.Allow {
		if _, err := netip.ParsePrefix(pat); err == nil {
			return true
		}
		if _, err := netip.ParseAddr(pat); err == nil {
			return true
		}
	}
	_, ok := matchAny(p.Allow, name)
	return ok
}

func nameMatches(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// expand replaces {{secret:NAME}} in v; the first secret that does not
// resolve fails it, with secret's error.
func expand(v string, secret func(string) (string, error)) (string, error) {
	var failed error
	out := secretRef.ReplaceAllStringFunc(v, func(m string) string {
		if failed != nil {
			return ""
		}
		s, err := secret(strings.TrimSpace(secretRef.FindStringSubmatch(m)[1]))
		failed = err
		return s
	})
	if failed != nil {
		return "", failed
	}
	return out, nil
}

// rewrite applies r to the request headers h.
func (r *Rule) rewrite(h http.Header, secret func(string) (string, error)) error {
	for ph, tmpl := range r.Replace {
		val, err := expand(tmpl, secret)
		if err != nil {
			return err
		}
		for k, vs := range h {
			for i, v := range vs {
				if strings.Contains(v, ph) {
					h[k][i] = strings.ReplaceAll(v, ph, val)
				}
			}
		}
	}
	for k, tmpl := range r.Headers {
		val, err := expand(tmpl, secret)
		if err != nil {
			return err
		}
		h.Set(k, val)
	}
	return nil
}
