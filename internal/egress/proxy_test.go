package egress

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/miekg/dns"

	"github.com/hutch-sh/hutch/internal/nettest"
	"github.com/hutch-sh/hutch/internal/network"
	"github.com/hutch-sh/hutch/internal/testutil"
)

// world is a daemon network with egress control, its proxy, sandbox
// namespaces that stand for sandboxes, and outside hosts with real HTTP and
// HTTPS servers in namespaces of their own.
type world struct {
	t       *testing.T
	proxy   *Proxy
	secrets *Secrets
	ca      *CA
	roots   *x509.CertPool // what a sandbox trusts: the system's, the daemon CA, the outside hosts' CA
	ids     *registry
	up      [2]netip.Addr // outside hosts A and B
	gateway netip.Addr
	names   map[string]netip.Addr
}

// registry is the proxy's view of sandboxes, as the manager keeps it.
type registry struct {
	mu sync.Mutex
	m  map[netip.Addr]Identity
}

func (r *registry) Identify(a netip.Addr) (Identity, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok := r.m[a]
	return id, ok
}

func (r *registry) set(a netip.Addr, id Identity) {
	r.mu.Lock()
	r.m[a] = id
	r.mu.Unlock()
}

var _ Sandboxes = (*registry)(nil)

func rnd(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// upstream answers with what it received, as JSON: which server, host,
// method, path, headers and body size. /ws is a WebSocket echo.
func upstream(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			for {
				typ, msg, err := c.Read(r.Context())
				if err != nil {
					return
				}
				if err := c.Write(r.Context(), typ, append([]byte("echo:"), msg...)); err != nil {
					return
				}
			}
		}
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"server": name, "host": r.Host, "method": r.Method, "path": r.URL.Path,
			"headers": r.Header, "bodyBytes": n, "proto": r.Proto,
		})
	})
}

// testCA issues the outside hosts' certificates.
func testCA(t *testing.T, hosts []string, ips []netip.Addr) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "outside test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, ca, ca, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(der)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "outside"}, DNSNames: hosts,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, ip := range ips {
		leaf.IPAddresses = append(leaf.IPAddresses, ip.AsSlice())
	}
	lder, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &leafKey.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return pool, tls.Certificate{Certificate: [][]byte{lder}, PrivateKey: leafKey}
}

func newWorld(t *testing.T) (*world, string) {
	t.Helper()
	dir := t.TempDir()
	// The host's resolver is down: a forwarded query comes back SERVFAIL
	// at once (port unreachable), a refused one REFUSED.
	resolv := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.154\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	nw, err := network.Open(log, network.Config{Tag: "e" + rnd(3), StateFile: filepath.Join(dir, "network.json"), ResolvConf: resolv, Egress: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nw.Close() })

	w := &world{t: t, ids: &registry{m: make(map[netip.Addr]Identity)}}
	var nsPaths [2]string
	for i := range w.up {
		nsPaths[i], _, w.up[i] = nettest.Outside(t)
	}
	w.names = map[string]netip.Addr{
		"public.test": w.up[0], "api.test": w.up[0], "a.glob.test": w.up[0], "x.y.glob.test": w.up[0],
		"bad.test": w.up[0], "other.test": w.up[1], "rebind.test": w.up[1],
		"meta.test": netip.MustParseAddr("169.254.169.254"), "loop.test": netip.MustParseAddr("127.0.0.1"),
		"gw.test": nw.Gateway(),
	}
	var names []string
	for n := range w.names {
		names = append(names, n)
	}
	upRoots, upCert := testCA(t, names, w.up[:])
	for i, ns := range nsPaths {
		srv := &http.Server{Handler: upstream(fmt.Sprintf("up%d", i))}
		go func() { _ = srv.Serve(nettest.Listen(t, ns, ":80")) }()
		tsrv := &http.Server{Handler: upstream(fmt.Sprintf("up%d", i)), TLSConfig: &tls.Config{Certificates: []tls.Certificate{upCert}}}
		go func() { _ = tsrv.ServeTLS(nettest.Listen(t, ns, ":443"), "", "") }()
		raw := nettest.Listen(t, ns, ":7000")
		go func() {
			for {
				c, err := raw.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write([]byte("raw hello\n"))
				c.Close()
			}
		}()
		t.Cleanup(func() { srv.Close(); tsrv.Close() })
	}

	if w.ca, err = OpenCA(filepath.Join(dir, "egress")); err != nil {
		t.Fatal(err)
	}
	if w.secrets, err = OpenSecrets(filepath.Join(dir, "egress")); err != nil {
		t.Fatal(err)
	}
	w.proxy, err = Start(Config{
		Listen: nw.Gateway(), Sandboxes: w.ids, Secrets: w.secrets, CA: w.ca, Subnet: nw.Subnet(), Log: log,
		UpstreamRoots: upRoots, MaxConns: 8,
		Resolve: func(_ context.Context, host string) ([]netip.Addr, error) {
			if a, ok := w.names[host]; ok {
				return []netip.Addr{a}, nil
			}
			return nil, fmt.Errorf("no such host %s", host)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.proxy.Close() })
	if err := nw.SetEgressPort(w.proxy.Port()); err != nil {
		t.Fatal(err)
	}
	nw.SetDNSFilter(w.proxy.AllowLookup)
	w.gateway = nw.Gateway()
	w.roots = upRoots.Clone()
	w.roots.AppendCertsFromPEM(w.ca.PEM())

	id := "hb-" + rnd(6)
	addr, err := nw.Allocate(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	nsPath := filepath.Join(dir, "sandbox-ns")
	if err := nw.Setup(context.Background(), id, nsPath, addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nw.Teardown(context.Background(), id, nsPath) })
	w.ids.set(addr, Identity{Name: "sb", Policy: DefaultPolicy()})
	return w, nsPath
}

// client is a sandbox's HTTP client: its sockets live in the sandbox's
// namespace, and its /etc/hosts is hosts (name → address it dials).
func (w *world) client(nsPath string, hosts map[string]netip.Addr) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		h, port, _ := net.SplitHostPort(addr)
		if a, ok := hosts[h]; ok {
			addr = net.JoinHostPort(a.String(), port)
		} else if a, ok := w.names[h]; ok {
			addr = net.JoinHostPort(a.String(), port)
		}
		var c net.Conn
		err := nettest.In(nsPath, func() (err error) {
			c, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		DialContext: dial, TLSClientConfig: &tls.Config{RootCAs: w.roots}, ForceAttemptHTTP2: true, DisableKeepAlives: true,
	}}
}

func (w *world) policy(nsAddr netip.Addr, p Policy) {
	w.t.Helper()
	if err := p.Validate(); err != nil {
		w.t.Fatal(err)
	}
	w.ids.set(nsAddr, Identity{Name: "sb", Policy: p})
}

type reply struct {
	status   int
	body     string
	upstream map[string]any
}

func (r reply) header(k string) string {
	h, _ := r.upstream["headers"].(map[string]any)
	vs, _ := h[http.CanonicalHeaderKey(k)].([]any)
	if len(vs) == 0 {
		return ""
	}
	return fmt.Sprint(vs[0])
}

func do(c *http.Client, method, url string, hdr map[string]string, body io.Reader) (reply, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return reply{}, err
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, body: string(b)}
	_ = json.Unmarshal(b, &r.upstream)
	return r, nil
}

func TestEgressMatrix(t *testing.T) {
	testutil.RequiresRoot(t)
	w, nsPath := newWorld(t)
	var sbAddr netip.Addr
	for a := range w.ids.m {
		sbAddr = a
	}
	A, B := w.up[0].String(), w.up[1].String()
	if err := w.secrets.Set("API_TOKEN", "tok-"+rnd(8), nil); err != nil {
		t.Fatal(err)
	}
	token, _ := w.secrets.forSandbox("sb")("API_TOKEN")
	allowAB := Policy{Internet: true, Allow: []string{"*.test", A, B}}
	withRule := Policy{Internet: false, Allow: []string{"api.test", "public.test", A}, Rules: []Rule{
		{Host: "api.test", Headers: map[string]string{"Authorization": "Bearer {{secret:API_TOKEN}}"}, Replace: map[string]string{"PLACEHOLDER_TOKEN": "{{secret:API_TOKEN}}"}},
	}}

	cases := []struct {
		name   string
		pol    Policy
		method string
		url    string
		hdr    map[string]string
		hosts  map[string]netip.Addr // the sandbox's /etc/hosts
		status int                   // 0: the connection must fail
		server string                // which upstream must have answered
		body   string                // in the 403 body
		check  func(t *testing.T, r reply)
	}{
		{name: "http allowed by name and address", pol: allowAB, url: "http://public.test/x", status: 200, server: "up0"},
		{name: "https tunnelled untouched", pol: allowAB, url: "https://public.test/x", status: 200, server: "up0",
			check: func(t *testing.T, r reply) {
				if r.header("Authorization") != "" {
					t.Errorf("tunnelled request got an Authorization header")
				}
			}},
		{name: "http by address", pol: allowAB, url: "http://" + A + "/", status: 200, server: "up0"},
		{name: "https by address", pol: allowAB, url: "https://" + A + "/", status: 200, server: "up0"},
		{name: "default policy refuses a private address", pol: DefaultPolicy(), url: "http://public.test/", status: 403, body: "private address"},
		{name: "default policy refuses private https", pol: DefaultPolicy(), url: "https://public.test/", status: 0},
		{name: "deny wins over allow", pol: Policy{Internet: true, Allow: []string{"*.test", A}, Deny: []string{"bad.test"}}, url: "http://bad.test/", status: 403, body: `deny "bad.test"`},
		{name: "deny by address", pol: Policy{Internet: true, Allow: []string{"*.test", A, B}, Deny: []string{B}}, url: "http://other.test/", status: 403, body: "deny"},
		{name: "deny https is refused", pol: Policy{Internet: true, Allow: []string{A}, Deny: []string{"bad.test"}}, url: "https://bad.test/", status: 0},
		{name: "glob matches subdomains", pol: Policy{Internet: false, Allow: []string{"*.glob.test", A}}, url: "http://x.y.glob.test/", status: 200, server: "up0"},
		{name: "glob does not match others", pol: Policy{Internet: false, Allow: []string{"*.glob.test"}}, url: "http://other.test/", status: 403, body: "not in allow"},
		{name: "internet off, allowed address", pol: Policy{Internet: false, Allow: []string{A}}, url: "http://public.test/", status: 200, server: "up0"},
		{name: "internet off, other host", pol: Policy{Internet: false, Allow: []string{A}}, url: "http://other.test/", status: 403, body: "not in allow"},
		{name: "internet off, no allow", pol: Policy{Internet: false}, url: "http://public.test/", status: 403, body: "internet off"},
		{name: "prefix unlocks a private range", pol: Policy{Internet: true, Allow: []string{"198.18.0.0/15"}}, url: "http://other.test/", status: 200, server: "up1"},
		{name: "name allowed but not its private address", pol: Policy{Internet: true, Allow: []string{"*.test"}}, url: "http://rebind.test/", status: 403, body: "private address"},
		{name: "cloud metadata by address", pol: Policy{Internet: true, Allow: []string{"169.254.169.254"}}, url: "http://169.254.169.254/latest/meta-data/", status: 403, body: "always blocked"},
		{name: "cloud metadata by name", pol: Policy{Internet: true, Allow: []string{"*.test", "169.254.0.0/16"}}, url: "http://meta.test/", status: 403, body: "always blocked"},
		{name: "loopback by name", pol: Policy{Internet: true, Allow: []string{"*.test", "127.0.0.0/8"}}, url: "http://" + A + "/", hdr: map[string]string{"Host": "loop.test"}, status: 403, body: "always blocked"},
		{name: "the host itself, directly", pol: Policy{Internet: true, Allow: []string{"0.0.0.0/0"}}, url: "http://gw.test/", status: 0},
		{name: "the host itself, by name", pol: Policy{Internet: true, Allow: []string{"0.0.0.0/0"}}, url: "http://" + A + "/", hdr: map[string]string{"Host": "gw.test"}, status: 403, body: "always blocked"},
		{name: "other sandboxes, directly", pol: Policy{Internet: true, Allow: []string{"0.0.0.0/0"}}, url: "http://" + sbAddr.Next().String() + "/", status: 0},
		{name: "other sandboxes, through the proxy", pol: Policy{Internet: true, Allow: []string{"0.0.0.0/0"}}, url: "http://" + A + "/", hdr: map[string]string{"Host": sbAddr.Next().String()}, status: 403, body: "sandbox address"},
		{name: "etc/hosts spoofing an allowed name", pol: Policy{Internet: false, Allow: []string{"public.test", A}},
			url: "http://public.test/", hosts: map[string]netip.Addr{"public.test": w.up[1]}, status: 200, server: "up0"},
		{name: "etc/hosts spoofing over https", pol: Policy{Internet: false, Allow: []string{"public.test", A}},
			url: "https://public.test/", hosts: map[string]netip.Addr{"public.test": w.up[1]}, status: 200, server: "up0"},
		{name: "Host header of an allowed name sent to another address", pol: Policy{Internet: false, Allow: []string{"public.test", A}},
			url: "http://" + B + "/", hdr: map[string]string{"Host": "public.test"}, status: 200, server: "up0"},
		{name: "SNI/Host mismatch when intercepted", pol: withRule, url: "https://api.test/", hdr: map[string]string{"Host": "public.test"}, status: 403, body: "does not match the TLS server name"},
		{name: "header injected over https", pol: withRule, url: "https://api.test/v1", status: 200, server: "up0",
			check: func(t *testing.T, r reply) {
				if r.header("Authorization") != "Bearer "+token {
					t.Errorf("upstream saw Authorization %q", r.header("Authorization"))
				}
			}},
		{name: "header injected over http, replacing the sandbox's", pol: withRule, url: "http://api.test/v1", hdr: map[string]string{"Authorization": "Bearer fake"}, status: 200, server: "up0",
			check: func(t *testing.T, r reply) {
				if r.header("Authorization") != "Bearer "+token {
					t.Errorf("upstream saw Authorization %q", r.header("Authorization"))
				}
			}},
		{name: "placeholder replaced", pol: withRule, url: "https://api.test/", hdr: map[string]string{"X-Api-Key": "key=PLACEHOLDER_TOKEN"}, status: 200, server: "up0",
			check: func(t *testing.T, r reply) {
				if r.header("X-Api-Key") != "key="+token {
					t.Errorf("upstream saw X-Api-Key %q", r.header("X-Api-Key"))
				}
			}},
		{name: "no injection for hosts without rules", pol: withRule, url: "http://public.test/", status: 200, server: "up0",
			check: func(t *testing.T, r reply) {
				if r.header("Authorization") != "" {
					t.Errorf("public.test got Authorization %q", r.header("Authorization"))
				}
			}},
		{name: "rule for other sandboxes only", pol: Policy{Internet: false, Allow: []string{A}, Rules: []Rule{{Host: "api.test", Sandboxes: []string{"ci-*"}, Headers: map[string]string{"Authorization": "x"}}}},
			url: "http://api.test/", status: 200, server: "up0",
			check: func(t *testing.T, r reply) {
				if r.header("Authorization") != "" {
					t.Errorf("rule for ci-* applied to sb")
				}
			}},
		{name: "missing secret is a clear 502", pol: Policy{Internet: false, Allow: []string{A}, Rules: []Rule{{Host: "api.test", Headers: map[string]string{"Authorization": "{{secret:NOPE}}"}}}},
			url: "http://api.test/", status: 502, body: "secret NOPE is not set"},
		{name: "https over http/2 intercepted", pol: withRule, url: "https://api.test/h2", status: 200, server: "up0",
			check: func(t *testing.T, r reply) {
				if r.upstream["proto"] != "HTTP/2.0" {
					t.Errorf("upstream saw %v, want HTTP/2.0", r.upstream["proto"])
				}
			}},
		{name: "unresolvable name", pol: Policy{Internet: true}, url: "http://" + A + "/", hdr: map[string]string{"Host": "nowhere.test"}, status: 403, body: "does not resolve"},
		{name: "post body passes", pol: allowAB, method: "POST", url: "https://api.test/", status: 200, server: "up0",
			check: func(t *testing.T, r reply) {
				if r.upstream["bodyBytes"] != float64(5) {
					t.Errorf("upstream got %v bytes", r.upstream["bodyBytes"])
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w.policy(sbAddr, tc.pol)
			method := tc.method
			if method == "" {
				method = "GET"
			}
			var body io.Reader
			if method == "POST" {
				body = strings.NewReader("hello")
			}
			r, err := do(w.client(nsPath, tc.hosts), method, tc.url, tc.hdr, body)
			if tc.status == 0 {
				if err == nil {
					t.Fatalf("got %d %q, want the connection refused", r.status, r.body)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.server != "" && r.upstream["server"] != tc.server {
				t.Errorf("answered by %v, want %s", r.upstream["server"], tc.server)
			}
			if tc.body != "" && !strings.Contains(r.body, tc.body) {
				t.Errorf("body %q lacks %q", r.body, tc.body)
			}
			if r.status == 403 && !strings.Contains(r.body, "hutch egress") {
				t.Errorf("403 body does not say who blocked it: %q", r.body)
			}
			if strings.Contains(r.body, token) && tc.status != 200 {
				t.Errorf("error body holds the secret")
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}

	t.Run("raw tcp needs an allowed address", func(t *testing.T) {
		for _, pol := range []Policy{{Internet: true}, {Internet: true, Allow: []string{A}}} {
			w.policy(sbAddr, pol)
			var got string
			err := nettest.In(nsPath, func() error {
				c, err := net.DialTimeout("tcp", net.JoinHostPort(A, "7000"), 3*time.Second)
				if err != nil {
					return err
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				b, _ := io.ReadAll(c)
				got = string(b)
				return nil
			})
			want := ""
			if len(pol.Allow) > 0 {
				want = "raw hello\n"
			}
			if err != nil || got != want {
				t.Errorf("policy %+v: raw tcp got %q (%v), want %q", pol, got, err, want)
			}
		}
	})

	t.Run("dns under policy", func(t *testing.T) {
		for _, tc := range []struct {
			pol  Policy
			name string
			ok   bool
		}{
			{DefaultPolicy(), "anything.example", true},
			{Policy{Internet: true, Deny: []string{"*.evil.test"}}, "c2VjcmV0.evil.test", false},
			{Policy{Internet: false, Allow: []string{"*.pypi.test"}}, "files.pypi.test", true},
			{Policy{Internet: false, Allow: []string{"*.pypi.test"}}, "c2VjcmV0.exfil.example", false},
			{Policy{Internet: true, Allow: []string{"api.test"}}, "c2VjcmV0.exfil.example", false},
			{Policy{Internet: false}, "anything.example", false},
			{Policy{Internet: false, Allow: []string{A}}, "public.test", true},
		} {
			w.policy(sbAddr, tc.pol)
			var rcode int
			err := nettest.In(nsPath, func() error {
				q := new(dns.Msg)
				q.SetQuestion(tc.name+".", dns.TypeA)
				r, err := dns.Exchange(q, net.JoinHostPort(w.gateway.String(), "53"))
				if err == nil {
					rcode = r.Rcode
				}
				return err
			})
			want := dns.RcodeServerFailure // forwarded to the resolver, which is down
			if !tc.ok {
				want = dns.RcodeRefused
			}
			if err != nil || rcode != want {
				t.Errorf("policy %+v: lookup %s: rcode %s (%v), want %s", tc.pol, tc.name, dns.RcodeToString[rcode], err, dns.RcodeToString[want])
			}
		}
	})

	t.Run("udp is dropped", func(t *testing.T) {
		w.policy(sbAddr, allowAB)
		err := nettest.In(nsPath, func() error {
			c, err := net.Dial("udp4", net.JoinHostPort(A, "7001"))
			if err != nil {
				return err
			}
			defer c.Close()
			_, _ = c.Write([]byte("x"))
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			_, err = c.Read(make([]byte, 1))
			if err == nil {
				return fmt.Errorf("udp answered")
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	})

	t.Run("secret rotation applies to the next request", func(t *testing.T) {
		w.policy(sbAddr, withRule)
		if err := w.secrets.Set("API_TOKEN", "rotated-"+rnd(4), nil); err != nil {
			t.Fatal(err)
		}
		now, _ := w.secrets.forSandbox("sb")("API_TOKEN")
		r, err := do(w.client(nsPath, nil), "GET", "https://api.test/", nil, nil)
		if err != nil || r.header("Authorization") != "Bearer "+now {
			t.Fatalf("after rotation upstream saw %q (%v)", r.header("Authorization"), err)
		}
	})

	t.Run("secret outside its scope is never injected", func(t *testing.T) {
		value := "scoped-" + rnd(8)
		if err := w.secrets.Set("SCOPED_TOKEN", value, nil); err != nil {
			t.Fatal(err)
		}
		pol := Policy{Internet: false, Allow: []string{"api.test", A}, Rules: []Rule{
			{Host: "api.test", Headers: map[string]string{"Authorization": "Bearer {{secret:SCOPED_TOKEN}}"}},
		}}
		w.policy(sbAddr, pol)
		for _, u := range []string{"http://api.test/", "https://api.test/"} {
			if r, err := do(w.client(nsPath, nil), "GET", u, nil, nil); err != nil || r.header("Authorization") != "Bearer "+value {
				t.Fatalf("unscoped: %s: upstream saw %q (%v)", u, r.header("Authorization"), err)
			}
		}
		// Scoped after the policy was set: the next request is refused.
		sc, _ := ParseScope([]string{"ci-*"})
		if err := w.secrets.Set("SCOPED_TOKEN", value, &sc); err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{"http://api.test/v1", "https://api.test/v1"} {
			r, err := do(w.client(nsPath, nil), "GET", u, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.status != http.StatusBadGateway || r.upstream["server"] != nil || !strings.Contains(r.body, "secret SCOPED_TOKEN is not for sandbox sb") {
				t.Fatalf("%s out of scope: %d %q, want 502 from the proxy naming the secret", u, r.status, r.body)
			}
			if strings.Contains(r.body, value) {
				t.Fatalf("the refusal holds the value")
			}
			ents := w.proxy.Log("sb", 1)
			if len(ents) != 1 || ents[0].Allowed || ents[0].Status != http.StatusBadGateway || !strings.Contains(ents[0].Rule, "SCOPED_TOKEN") || strings.Contains(ents[0].Rule, value) {
				t.Fatalf("%s: egress log %+v, want the refusal naming the secret", u, ents)
			}
		}
		// The same sandbox under a name in scope (a rename, a fork) gets it.
		w.ids.set(sbAddr, Identity{Name: "ci-1", Policy: pol})
		defer w.ids.set(sbAddr, Identity{Name: "sb", Policy: pol})
		if r, err := do(w.client(nsPath, nil), "GET", "https://api.test/", nil, nil); err != nil || r.header("Authorization") != "Bearer "+value {
			t.Fatalf("in scope: upstream saw %q (%v)", r.header("Authorization"), err)
		}
	})

	t.Run("runtime policy change takes effect on an open connection", func(t *testing.T) {
		w.policy(sbAddr, allowAB)
		c := w.client(nsPath, nil)
		c.Transport.(*http.Transport).DisableKeepAlives = false
		if r, err := do(c, "GET", "http://public.test/", nil, nil); err != nil || r.status != 200 {
			t.Fatalf("before: %v %v", r.status, err)
		}
		w.policy(sbAddr, Policy{Internet: true, Allow: []string{A}, Deny: []string{"public.test"}})
		if r, err := do(c, "GET", "http://public.test/", nil, nil); err != nil || r.status != 403 {
			t.Fatalf("after: %v %v", r.status, err)
		}
	})

	t.Run("websocket through the proxy", func(t *testing.T) {
		for _, pol := range []Policy{allowAB, withRule} {
			w.policy(sbAddr, pol)
			for _, u := range []string{"ws://api.test/ws", "wss://api.test/ws"} {
				hc := w.client(nsPath, nil)
				hc.Transport.(*http.Transport).ForceAttemptHTTP2 = false
				hc.Transport.(*http.Transport).TLSClientConfig.NextProtos = []string{"http/1.1"}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: hc})
				if err != nil {
					cancel()
					t.Fatalf("%s: %v", u, err)
				}
				for i := range 3 {
					msg := fmt.Sprintf("m%d", i)
					if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
						t.Fatal(err)
					}
					_, got, err := c.Read(ctx)
					if err != nil || string(got) != "echo:"+msg {
						t.Fatalf("%s: read %q %v", u, got, err)
					}
				}
				c.Close(websocket.StatusNormalClosure, "")
				cancel()
			}
		}
	})

	t.Run("large streaming upload", func(t *testing.T) {
		const size = 64 << 20
		for _, u := range []string{"https://api.test/up", "https://public.test/up", "http://api.test/up"} {
			w.policy(sbAddr, withRule)
			pr, pw := io.Pipe()
			go func() {
				chunk := bytes.Repeat([]byte("x"), 1<<20)
				for range size / len(chunk) {
					if _, err := pw.Write(chunk); err != nil {
						return
					}
				}
				pw.Close()
			}()
			r, err := do(w.client(nsPath, nil), "PUT", u, nil, pr)
			if err != nil || r.upstream["bodyBytes"] != float64(size) {
				t.Fatalf("%s: upstream got %v bytes (%v): %s", u, r.upstream["bodyBytes"], err, r.body)
			}
		}
	})

	t.Run("an open tunnel is in the log while it lasts", func(t *testing.T) {
		w.policy(sbAddr, Policy{Internet: true, Allow: []string{"public.test", A}})
		var c *tls.Conn
		err := nettest.In(nsPath, func() (err error) {
			c, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", net.JoinHostPort(A, "443"), &tls.Config{ServerName: "public.test", RootCAs: w.roots})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ents := w.proxy.Log("sb", 1)
		if len(ents) != 1 || ents[0].Proto != "tls" || ents[0].Host != "public.test" || !ents[0].Allowed {
			t.Fatalf("latest entry while the tunnel is open: %+v", ents)
		}
	})

	t.Run("connections per sandbox are bounded", func(t *testing.T) {
		w.policy(sbAddr, Policy{Internet: true, Allow: []string{A}})
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		// 8 raw connections held open (the upstream's raw port answers and
		// closes, so use its HTTP port and send nothing): the 9th is cut.
		err := nettest.In(nsPath, func() error {
			for range 9 {
				c, err := net.DialTimeout("tcp", net.JoinHostPort(A, "443"), 3*time.Second)
				if err != nil {
					return err
				}
				conns = append(conns, c)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		_ = conns[8].SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := conns[8].Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("the connection over the bound was not closed: %v", err)
		}
		ents := w.proxy.Log("sb", 1)
		if len(ents) != 1 || !strings.Contains(ents[0].Rule, "more than 8 connections") {
			t.Fatalf("log: %+v", ents)
		}
		for _, c := range conns {
			c.Close()
		}
		conns = nil
		// Once they are gone, new ones are admitted again.
		testutil.Eventually(t, 5*time.Second, func() error {
			r, err := do(w.client(nsPath, nil), "GET", "http://public.test/", nil, nil)
			if err == nil && r.status != 200 {
				err = fmt.Errorf("status %d", r.status)
			}
			if err != nil {
				return fmt.Errorf("after closing: %w", err)
			}
			return nil
		})
	})

	t.Run("the log records decisions", func(t *testing.T) {
		ents := w.proxy.Log("sb", 0)
		var allowed, denied, tunnelled bool
		for _, e := range ents {
			allowed = allowed || (e.Allowed && e.Proto == "https" && e.Method == "GET" && e.Host == "api.test" && e.BytesIn > 0)
			denied = denied || (!e.Allowed && strings.Contains(e.Rule, `deny "bad.test"`))
			tunnelled = tunnelled || (e.Allowed && e.Proto == "tls" && e.Host == "public.test" && e.BytesIn > 0)
			if strings.Contains(fmt.Sprint(e), token) {
				t.Errorf("log entry holds a secret: %+v", e)
			}
		}
		if !allowed || !denied || !tunnelled {
			t.Errorf("log lacks entries (allowed %v, denied %v, tunnelled %v) in %d entries", allowed, denied, tunnelled, len(ents))
		}
	})
}
