package egress

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hutch-sh/hutch/internal/errdefs"
)

func TestParsePolicy(t *testing.T) {
	for _, tc := range []struct {
		name, json, err string
	}{
		{"design example", `{"internet": true, "allow": ["registry.npmjs.org", "*.example.com", "198.18.0.7"], "deny": ["*.evil.test"],
			"rules": [{"host": "api.example.com", "headers": {"Authorization": "Bearer {{secret:EXAMPLE_TOKEN}}"}}]}`, ""},
		{"empty is the default", `{}`, ""},
		{"prefix", `{"allow": ["10.0.0.0/8"]}`, ""},
		{"unknown field", `{"alow": []}`, "alow"},
		{"not json", `internet`, "egress policy"},
		{"bad glob", `{"allow": ["[a"]}`, "allow entry"},
		{"url not host", `{"deny": ["https://x.test/"]}`, "want a host name"},
		{"empty pattern", `{"deny": [""]}`, "empty"},
		{"rule without host", `{"rules": [{"headers": {"A": "b"}}]}`, "rule 0 host"},
		{"rule does nothing", `{"rules": [{"host": "a.test"}]}`, "sets no headers"},
		{"bad header name", `{"rules": [{"host": "a.test", "headers": {"Bad Header": "x"}}]}`, "header name"},
		{"header injection", `{"rules": [{"host": "a.test", "headers": {"A": "x\r\nB: y"}}]}`, "line break"},
		{"bad secret name", `{"rules": [{"host": "a.test", "headers": {"A": "{{secret:a-b}}"}}]}`, "secret name"},
		{"bad sandbox glob", `{"rules": [{"host": "a.test", "sandboxes": ["[x"], "headers": {"A": "b"}}]}`, "sandbox pattern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tc.json))
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("got %v (%+v), want invalid_argument mentioning %q", err, p, tc.err)
			}
		})
	}
	if p, _ := ParsePolicy([]byte(`{}`)); !p.Internet {
		t.Errorf("internet defaults to off")
	}
}

func TestDecideOrder(t *testing.T) {
	pub := netip.MustParseAddr("93.184.215.14")
	for _, tc := range []struct {
		name  string
		p     Policy
		host  string
		allow bool
		rule  string
	}{
		{"internet on", Policy{Internet: true}, "a.test", true, "internet on"},
		{"internet off", Policy{}, "a.test", false, "internet off"},
		{"deny before allow", Policy{Internet: true, Allow: []string{"*.test"}, Deny: []string{"a.test"}}, "a.test", false, "deny"},
		{"gate", Policy{Internet: true, Allow: []string{"b.test"}}, "a.test", false, "not in allow"},
		{"allowed by address", Policy{Allow: []string{"93.184.215.0/24"}}, "a.test", true, "allow"},
		{"glob is not the apex", Policy{Allow: []string{"*.a.test"}}, "a.test", false, "not in allow"},
		{"case and trailing dot", Policy{Allow: []string{"A.Test"}}, "a.test.", true, "allow"},
		{"rule applies", Policy{Internet: true, Rules: []Rule{{Host: "a.test", Headers: map[string]string{"X": "y"}}}}, "a.test", true, `rule "a.test"`},
		{"rule for other sandboxes", Policy{Internet: true, Rules: []Rule{{Host: "a.test", Sandboxes: []string{"ci-*"}, Headers: map[string]string{"X": "y"}}}}, "a.test", true, "internet on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.p.decide("sb", tc.host, pub)
			if v.allow != tc.allow || !strings.Contains(v.rule, tc.rule) {
				t.Fatalf("got allow=%v %q, want allow=%v %q", v.allow, v.rule, tc.allow, tc.rule)
			}
		})
	}
}

func TestRewrite(t *testing.T) {
	secrets := map[string]string{"T": "s3cr3t"}
	get := func(n string) (string, error) {
		if v, ok := secrets[n]; ok {
			return v, nil
		}
		return "", fmt.Errorf("secret %s is not set: %w", n, errdefs.ErrFailedPrecondition)
	}
	r := Rule{Host: "a.test", Headers: map[string]string{"Authorization": "Bearer {{ secret:T }}"}, Replace: map[string]string{"DUMMY": "{{secret:T}}"}}
	h := http.Header{"Authorization": {"Bearer mine"}, "X-Key": {"k=DUMMY"}}
	if err := r.rewrite(h, get); err != nil {
		t.Fatal(err)
	}
	if h.Get("Authorization") != "Bearer s3cr3t" || h.Get("X-Key") != "k=s3cr3t" {
		t.Fatalf("rewritten: %v", h)
	}
	r = Rule{Host: "a.test", Headers: map[string]string{"A": "{{secret:MISSING}}"}}
	err := r.rewrite(http.Header{}, get)
	if err == nil || !strings.Contains(err.Error(), "MISSING") || !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("missing secret: %v", err)
	}
}

func TestSecretsPersistSealed(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ name, value string }{{"1x", "v"}, {"a-b", "v"}, {"OK", ""}, {"OK", "a\nb"}, {"OK", strings.Repeat("x", MaxSecretBytes+1)}} {
		if err := s.Set(bad.name, bad.value, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Set(%q, %d bytes) = %v, want invalid_argument", bad.name, len(bad.value), err)
		}
	}
	if err := s.Set("TOKEN", "plain-value-123", nil); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "secrets.json"))
	if strings.Contains(string(raw), "plain-value-123") {
		t.Fatalf("secret stored in clear")
	}
	s2, err := OpenSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s2.forSandbox("any")("TOKEN"); err != nil || v != "plain-value-123" {
		t.Fatalf("after reopen: %q %v", v, err)
	}
	if err := s2.Delete("TOKEN"); err != nil {
		t.Fatal(err)
	}
	if err := s2.Delete("TOKEN"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if list := s2.List(); len(list) != 0 {
		t.Fatalf("secrets after delete: %v", list)
	}
}

func TestCARotation(t *testing.T) {
	dir := t.TempDir()
	ca, err := OpenCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	first := ca.PEM()
	again, err := OpenCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(again.PEM()) != string(first) {
		t.Fatalf("CA not kept across restarts")
	}
	bundle, _ := os.Open(ca.BundlePath()) // as a bind mount holds it
	defer bundle.Close()
	leaf, err := ca.certFor("api.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Rotate(); err != nil {
		t.Fatal(err)
	}
	if string(ca.PEM()) == string(first) {
		t.Fatalf("rotation kept the CA")
	}
	data, _ := os.ReadFile(ca.BundlePath())
	if !strings.Contains(string(data), string(ca.PEM())) || strings.Contains(string(data), string(first)) {
		t.Fatalf("bundle not rewritten with the new CA only")
	}
	st1, _ := bundle.Stat()
	st2, _ := os.Stat(ca.BundlePath())
	if !os.SameFile(st1, st2) {
		t.Fatalf("bundle replaced by another file: a bind mount would keep the old one")
	}
	// Certificates issued after rotation chain to the new CA.
	newLeaf, _ := ca.certFor("api.test")
	pool := x509.NewCertPool()
	blk, _ := pem.Decode(ca.PEM())
	caCert, _ := x509.ParseCertificate(blk.Bytes)
	pool.AddCert(caCert)
	for i, l := range []*[][]byte{&leaf.Certificate, &newLeaf.Certificate} {
		c, _ := x509.ParseCertificate((*l)[0])
		_, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: "api.test"})
		if (err == nil) != (i == 1) {
			t.Errorf("leaf %d verifies against the new CA: %v", i, err)
		}
	}
}
