package egress

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

func TestScope(t *testing.T) {
	for _, tc := range []struct {
		name    string
		globs   []string
		allowed []string
		refused []string
		shown   []string
	}{
		{"none: every sandbox", nil, []string{"a", "agent-1", "ci-x"}, nil, []string{"*"}},
		{"star", []string{"*"}, []string{"a", "agent-1"}, nil, []string{"*"}},
		{"star wins", []string{"agent-*", "*"}, []string{"ci-1"}, nil, []string{"*"}},
		{"prefix", []string{"agent-*"}, []string{"agent-1", "agent-"}, []string{"agent", "ci-1", "xagent-1"}, []string{"agent-*"}},
		{"several, duplicates once", []string{"agent-*", "ci-?", "agent-*"}, []string{"agent-2", "ci-1"}, []string{"ci-12", "web"}, []string{"agent-*", "ci-?"}},
		{"exact", []string{"web"}, []string{"web"}, []string{"web-2", "we"}, []string{"web"}},
		{"class", []string{"box-[0-9]"}, []string{"box-7"}, []string{"box-a"}, []string{"box-[0-9]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := ParseScope(tc.globs)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range tc.allowed {
				if !sc.Allows(n) {
					t.Errorf("%v refuses %s", tc.globs, n)
				}
			}
			for _, n := range tc.refused {
				if sc.Allows(n) {
					t.Errorf("%v allows %s", tc.globs, n)
				}
			}
			if !slices.Equal(sc.Globs(), tc.shown) {
				t.Errorf("Globs() = %v, want %v", sc.Globs(), tc.shown)
			}
		})
	}
	for _, bad := range [][]string{{""}, {"agent-["}, {"a\\"}, {" agent-*"}, {"ok-*", "[z-a"}} {
		if _, err := ParseScope(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseScope(%q) = %v, want invalid_argument", bad, err)
		}
	}
}

func scopeOf(t *testing.T, s *Secrets, name string) []string {
	t.Helper()
	for _, i := range s.List() {
		if i.Name == name {
			return i.Scope.Globs()
		}
	}
	t.Fatalf("no secret %s", name)
	return nil
}

// A scope survives rotation and restart; only an explicit one changes it.
func TestSecretScopePersists(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	svc := &Service{Secrets: s}
	steps := []struct {
		name  string
		scope []string
		want  []string
	}{
		{"new, no scope: every sandbox", nil, []string{"*"}},
		{"scoped", []string{"agent-*", "ci-1"}, []string{"agent-*", "ci-1"}},
		{"rotated: the scope stays", nil, []string{"agent-*", "ci-1"}},
		{"narrowed", []string{"agent-1"}, []string{"agent-1"}},
		{"explicitly global", []string{"*"}, []string{"*"}},
		{"scoped again", []string{"agent-*"}, []string{"agent-*"}},
	}
	for i, st := range steps {
		if err := svc.SetSecret("TOKEN", "v"+string(rune('0'+i)), st.scope); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := scopeOf(t, s, "TOKEN"); !slices.Equal(got, st.want) {
			t.Fatalf("%s: scope %v, want %v", st.name, got, st.want)
		}
	}
	if err := svc.SetSecret("TOKEN", "v9", []string{"agent-["}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("bad glob: %v, want invalid_argument", err)
	}
	if got := scopeOf(t, s, "TOKEN"); !slices.Equal(got, []string{"agent-*"}) {
		t.Fatalf("a refused set changed the scope: %v", got)
	}
	if err := svc.SetSecret("OTHER", "o", nil); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "secrets.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), `"v5"`) || strings.Contains(string(raw), `"o"`) {
		t.Fatalf("a value is stored in clear: %s", raw)
	}
	s2, err := OpenSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := scopeOf(t, s2, "TOKEN"); !slices.Equal(got, []string{"agent-*"}) {
		t.Fatalf("after reopen: scope %v", got)
	}
	if got := scopeOf(t, s2, "OTHER"); !slices.Equal(got, []string{"*"}) {
		t.Fatalf("after reopen: OTHER's scope %v", got)
	}
	if v, err := s2.forSandbox("agent-3")("TOKEN"); err != nil || v != "v5" {
		t.Fatalf("after reopen, agent-3 reads %q, %v", v, err)
	}
	v, err := s2.forSandbox("web")("TOKEN")
	if !errors.Is(err, errdefs.ErrPermissionDenied) || v != "" || !strings.Contains(err.Error(), "TOKEN") || strings.Contains(err.Error(), "v5") {
		t.Fatalf("out of scope: %q, %v", v, err)
	}
	if _, err := s2.forSandbox("web")("NOPE"); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("missing secret: %v", err)
	}
}

// secrets.json as daemons before scopes wrote it: name → sealed value.
func TestSecretsOldFormat(t *testing.T) {
	dir := t.TempDir()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if err := os.WriteFile(filepath.Join(dir, "secrets.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	old := make(map[string][]byte)
	for name, v := range map[string]string{"GITHUB_TOKEN": "ghp-old", "version": "named like a field", "secrets": "this one too"} {
		nonce := make([]byte, aead.NonceSize())
		_, _ = rand.Read(nonce)
		old[name] = aead.Seal(nonce, nonce, []byte(v), []byte(name))
	}
	data, _ := json.Marshal(old)
	if err := os.WriteFile(filepath.Join(dir, "secrets.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenSecrets(dir)
	if err != nil {
		t.Fatalf("old format: %v", err)
	}
	if v, err := s.forSandbox("any-sandbox")("GITHUB_TOKEN"); err != nil || v != "ghp-old" {
		t.Fatalf("an old secret is not for every sandbox: %q %v", v, err)
	}
	if got := scopeOf(t, s, "GITHUB_TOKEN"); !slices.Equal(got, []string{"*"}) {
		t.Fatalf("old secret's scope %v", got)
	}
	if v, _ := s.forSandbox("x")("version"); v != "named like a field" {
		t.Fatalf("secret named version: %q", v)
	}
	// Rotating keeps it for everyone; the file is rewritten in the new
	// format, which loads again.
	if err := s.Set("GITHUB_TOKEN", "ghp-new", nil); err != nil {
		t.Fatal(err)
	}
	if got := scopeOf(t, s, "GITHUB_TOKEN"); !slices.Equal(got, []string{"*"}) {
		t.Fatalf("rotation changed the scope: %v", got)
	}
	s2, err := OpenSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s2.forSandbox("x")("GITHUB_TOKEN"); err != nil || v != "ghp-new" {
		t.Fatalf("after rewrite: %q %v", v, err)
	}
	if len(s2.List()) != 3 {
		t.Fatalf("after rewrite: %v", s2.List())
	}
}

func TestSecretsFileFromTheFuture(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenSecrets(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets.json"), []byte(`{"version": 3, "secrets": {}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSecrets(dir); err == nil || !strings.Contains(err.Error(), "version 3") {
		t.Fatalf("a newer format loaded: %v", err)
	}
}

// policies records the policies it was given.
type policies struct{ set map[string]Policy }

var _ Policies = (*policies)(nil)

func (p *policies) SetPolicy(_ context.Context, sandbox string, pol Policy, _ bool) error {
	p.set[sandbox] = pol
	return nil
}

func (p *policies) Policy(sandbox string) (Policy, error) { return p.set[sandbox], nil }

func TestSetPolicyChecksScopes(t *testing.T) {
	s, err := OpenSecrets(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	svc := &Service{Secrets: s, Policies: &policies{set: make(map[string]Policy)}}
	for name, scope := range map[string][]string{"AGENT_TOKEN": {"agent-*"}, "EVERYONE": nil, "GLOBAL": {"*"}} {
		if err := svc.SetSecret(name, "value-of-"+name, scope); err != nil {
			t.Fatal(err)
		}
	}
	rule := func(host, header string) Rule {
		return Rule{Host: host, Headers: map[string]string{"Authorization": header}}
	}
	for _, tc := range []struct {
		name    string
		sandbox string
		rules   []Rule
		refused string // the secret the refusal names; "" when allowed
		host    string
	}{
		{"in scope", "agent-1", []Rule{rule("api.test", "Bearer {{secret:AGENT_TOKEN}}")}, "", ""},
		{"out of scope", "web", []Rule{rule("api.test", "Bearer {{secret:AGENT_TOKEN}}")}, "AGENT_TOKEN", "api.test"},
		{"out of scope in a replacement", "web", []Rule{{Host: "evil.test", Replace: map[string]string{"X": "{{ secret:AGENT_TOKEN }}"}}}, "AGENT_TOKEN", "evil.test"},
		{"second rule", "web", []Rule{rule("a.test", "{{secret:EVERYONE}}"), rule("evil.test", "{{secret:AGENT_TOKEN}}")}, "AGENT_TOKEN", "evil.test"},
		{"a rule for other sandboxes is still checked", "web", []Rule{{Host: "evil.test", Sandboxes: []string{"agent-*"}, Headers: map[string]string{"A": "{{secret:AGENT_TOKEN}}"}}}, "AGENT_TOKEN", "evil.test"},
		{"unscoped secret", "web", []Rule{rule("a.test", "{{secret:EVERYONE}}")}, "", ""},
		{"global secret", "web", []Rule{rule("a.test", "{{secret:GLOBAL}}")}, "", ""},
		{"secret not set yet", "web", []Rule{rule("a.test", "{{secret:LATER}}")}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Policy{Internet: true, Rules: tc.rules}
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			delete(svc.Policies.(*policies).set, tc.sandbox)
			err := svc.SetPolicy(context.Background(), tc.sandbox, p, true)
			_, stored := svc.Policies.(*policies).set[tc.sandbox]
			if tc.refused == "" {
				if err != nil || !stored {
					t.Fatalf("SetPolicy: %v, stored %v", err, stored)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrPermissionDenied) {
				t.Fatalf("SetPolicy: %v, want permission_denied", err)
			}
			for _, want := range []string{tc.refused, `"` + tc.host + `"`, "sandbox " + tc.sandbox} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("refusal %q does not name %s", err, want)
				}
			}
			if strings.Contains(err.Error(), "value-of-") {
				t.Errorf("refusal holds a value: %v", err)
			}
			if stored {
				t.Errorf("a refused policy was stored")
			}
		})
	}
}
