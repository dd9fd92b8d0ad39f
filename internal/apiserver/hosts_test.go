package apiserver_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agentconn"
	"github.com/hutch-sh/hutch/internal/apiserver"
	"github.com/hutch-sh/hutch/internal/egress"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

const listPath = "/hutch.v1.SandboxService/List"

// wsHeader is what a browser sends to open a WebSocket.
var wsHeader = http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}

// request is one request to the API as a browser or curl would send it.
type request struct {
	method, path, host, body string
	header                   http.Header
}

// list is `POST List` to host, with headers kv (name, value, ...).
func list(host string, kv ...string) request {
	h := http.Header{"Content-Type": {"application/json"}}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return request{method: http.MethodPost, path: listPath, host: host, body: "{}", header: h}
}

func serve(s *apiserver.Server, rq request) *httptest.ResponseRecorder {
	r := httptest.NewRequest(rq.method, rq.path, strings.NewReader(rq.body))
	r.Host = rq.host
	for k, v := range rq.header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// errorBody is the body errdefs.WriteHTTPStatus writes.
func errorBody(t *testing.T, w *httptest.ResponseRecorder) (code, msg string) {
	t.Helper()
	var b struct{ Code, Message string }
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		t.Fatalf("status %d, body %q is not an error body: %v", w.Code, w.Body, err)
	}
	return b.Code, b.Message
}

func newServer(cfg apiserver.Config) (*apiserver.Server, *fakeSandboxes, *fakeEgress) {
	sb, eg := &fakeSandboxes{}, &fakeEgress{}
	cfg.Egress = eg
	return apiserver.New(sb, cfg, slog.New(slog.DiscardHandler)), sb, eg
}

func TestHosts(t *testing.T) {
	const key = "k3y"
	keys := []string{key}
	tests := []struct {
		name string
		cfg  apiserver.Config
		host string
		want int
	}{
		{"rebinding name", apiserver.Config{}, "rebind.evil.example:7777", http.StatusForbidden},
		{"localhost", apiserver.Config{}, "localhost:7777", http.StatusOK},
		{"localhost, any case, trailing dot, no port", apiserver.Config{}, "LocalHost.", http.StatusOK},
		{"127.0.0.1", apiserver.Config{}, "127.0.0.1:7777", http.StatusOK},
		{"127/8", apiserver.Config{}, "127.1.2.3:7777", http.StatusOK},
		{"[::1]", apiserver.Config{}, "[::1]:7777", http.StatusOK},
		{"[::1] without port", apiserver.Config{}, "[::1]", http.StatusOK},
		{"no Host", apiserver.Config{}, "", http.StatusForbidden},
		{"0.0.0.0", apiserver.Config{}, "0.0.0.0:7777", http.StatusForbidden},
		{"a name ending in localhost", apiserver.Config{}, "evillocalhost:7777", http.StatusForbidden},
		{"allowed name", apiserver.Config{AllowedHosts: []string{"hutch.internal"}}, "Hutch.Internal.:7777", http.StatusOK},
		{"another name", apiserver.Config{AllowedHosts: []string{"hutch.internal"}}, "evil.internal:7777", http.StatusForbidden},
		{"allowed address", apiserver.Config{AllowedHosts: []string{"192.0.2.10"}}, "192.0.2.10:7777", http.StatusOK},
		{"own address", apiserver.Config{LocalAddrs: []netip.Addr{netip.MustParseAddr("198.51.100.7")}}, "198.51.100.7:7777", http.StatusOK},
		{"own IPv6 address", apiserver.Config{LocalAddrs: []netip.Addr{netip.MustParseAddr("2001:db8::7")}}, "[2001:db8:0::7]:7777", http.StatusOK},
		{"other address", apiserver.Config{LocalAddrs: []netip.Addr{netip.MustParseAddr("198.51.100.7")}}, "198.51.100.8:7777", http.StatusForbidden},
		{"keys: rebinding name", apiserver.Config{Keys: keys}, "rebind.evil.example:7777", http.StatusForbidden},
		{"keys: localhost", apiserver.Config{Keys: keys}, "localhost:7777", http.StatusOK},
		{"keys and *: any name", apiserver.Config{Keys: keys, AllowedHosts: []string{"*"}}, "rebind.evil.example:7777", http.StatusOK},
		{"* without keys: nothing more", apiserver.Config{AllowedHosts: []string{"*"}}, "rebind.evil.example:7777", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, sb, _ := newServer(tt.cfg)
			rq := list(tt.host, "Authorization", "Bearer "+key)
			w := serve(s, rq)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if tt.want == http.StatusOK {
				return
			}
			if n := sb.count("list"); n != 0 {
				t.Fatalf("a refused request reached the manager %d times", n)
			}
			code, msg := errorBody(t, w)
			if code != "permission_denied" {
				t.Fatalf("code %q, want permission_denied", code)
			}
			host := strings.ToLower(strings.Split(tt.host, ":")[0])
			if !strings.Contains(msg, fmt.Sprintf("%q", host)) || !strings.Contains(msg, "hutch serve --allowed-host "+host) {
				t.Fatalf("message does not name the host or say how to allow it: %s", msg)
			}
			if len(tt.cfg.Keys) > 0 && !strings.Contains(msg, "--allowed-host '*'") {
				t.Fatalf("with keys, the message does not mention '*': %s", msg)
			}
		})
	}
}

// /healthz answers any Host: load balancers probe by address or by a
// name of their own, and it tells nothing.
func TestHealthzAnyHost(t *testing.T) {
	s, _, _ := newServer(apiserver.Config{})
	for _, host := range []string{"rebind.evil.example:7777", "10.1.2.3", ""} {
		if w := serve(s, request{method: http.MethodGet, path: "/healthz", host: host}); w.Code != http.StatusOK || w.Body.String() != "ok\n" {
			t.Errorf("host %q: status %d %q", host, w.Code, w.Body)
		}
	}
}

// Hosts under the preview domain reach the preview router and nothing else,
// whatever their path.
func TestPreviewHostsOnlyReachPreviews(t *testing.T) {
	tests := []struct {
		name, domain, host string
		want               int
		wantConn           bool // the router went on to dial the sandbox
	}{
		{"preview", "", "8000-web-tok.localhost:7777", http.StatusBadGateway, true},
		{"preview, trailing dot", "", "8000-web-tok.localhost.:7777", http.StatusBadGateway, true},
		{"wrong token", "", "8000-web-nope.localhost:7777", http.StatusNotFound, false},
		{"not a preview host", "", "api.localhost:7777", http.StatusNotFound, false},
		{"two labels", "", "a.b.localhost:7777", http.StatusNotFound, false},
		{"other domain", "preview.example", "8000-web-tok.preview.example", http.StatusBadGateway, true},
		{"other domain, not a preview host", "preview.example", "x.preview.example", http.StatusNotFound, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, sb, _ := newServer(apiserver.Config{PreviewDomain: tt.domain})
			w := serve(s, list(tt.host))
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if sb.count("list") != 0 {
				t.Fatal("a preview host reached the API")
			}
			if got := sb.count("conn web") > 0; got != tt.wantConn {
				t.Fatalf("dialled the sandbox: %v, want %v", got, tt.wantConn)
			}
		})
	}
}

// browserCalls are the state-changing calls a page could make: exec, a
// file write, a terminal WebSocket, a policy change.
func browserCalls(host, origin string) map[string]request {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		if origin != "" {
			out.Set("Origin", origin)
		}
		return out
	}
	ws := h()
	for k, v := range wsHeader {
		ws[k] = v
	}
	return map[string]request{
		"exec": {method: http.MethodPost, path: "/hutch.v1.ProcessService/Exec", host: host,
			body: envelope(`{"sandbox":"box","argv":["id"]}`), header: h("Content-Type", "application/connect+json", "Connect-Protocol-Version", "1")},
		"start process": {method: http.MethodPost, path: "/hutch.v1.ProcessService/StartProcess", host: host,
			body: `{"sandbox":"box","argv":["id"]}`, header: h("Content-Type", "application/json")},
		"file write":         {method: http.MethodPut, path: "/v1/sandboxes/box/files?path=/workspace/x", host: host, body: "pwned", header: h()},
		"terminal websocket": {method: http.MethodGet, path: "/v1/sandboxes/box/terminals/t1", host: host, header: ws},
		"set policy": {method: http.MethodPost, path: "/hutch.v1.EgressService/SetPolicy", host: host,
			body: `{"sandbox":"box","policy":"{}"}`, header: h("Content-Type", "application/json")},
		"set secret": {method: http.MethodPost, path: "/hutch.v1.EgressService/SetSecret", host: host,
			body: `{"name":"X","value":"y"}`, header: h("Content-Type", "application/json")},
	}
}

// envelope frames one message of a Connect stream.
func envelope(msg string) string {
	var b strings.Builder
	b.WriteByte(0)
	_ = binary.Write(&b, binary.BigEndian, uint32(len(msg)))
	b.WriteString(msg)
	return b.String()
}

// A page that rebinds its own name to this machine sends its name as Host
// and, being same-origin with it, its own origin: it reaches nothing.
func TestRebindingCannotChangeState(t *testing.T) {
	const host = "rebind.evil.example:7777"
	for name, rq := range browserCalls(host, "http://"+host) {
		t.Run(name, func(t *testing.T) {
			s, sb, eg := newServer(apiserver.Config{})
			w := serve(s, rq)
			if w.Code != http.StatusForbidden {
				t.Fatalf("status %d, want 403: %s", w.Code, w.Body)
			}
			if code, _ := errorBody(t, w); code != "permission_denied" {
				t.Fatalf("code %q, want permission_denied", code)
			}
			if calls := append(sb.all(), eg.all()...); len(calls) != 0 {
				t.Fatalf("a refused request reached %v", calls)
			}
		})
	}
}

// A page of another site sends its own Origin to a loopback Host: refused
// wherever it would change something. Without Origin (curl, the SDKs) or
// from the daemon's own pages it goes through.
func TestOrigin(t *testing.T) {
	const host = "127.0.0.1:7777"
	tests := []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://127.0.0.1:7777", true},
		{"HTTP://127.0.0.1:7777", true},
		{"http://evil.example", false},
		{"http://rebind.evil.example:7777", false},
		{"http://127.0.0.1:8888", false},
		{"http://localhost:7777", false}, // another origin, even if the same machine
		{"null", false},
		{"file://", false},
		{"not a url", false},
	}
	for _, tt := range tests {
		for name, rq := range browserCalls(host, tt.origin) {
			t.Run(fmt.Sprintf("%s/%s", tt.origin, name), func(t *testing.T) {
				s, sb, eg := newServer(apiserver.Config{})
				w := serve(s, rq)
				reached := len(sb.all())+len(eg.all()) > 0
				if tt.ok {
					if w.Code == http.StatusForbidden || !reached {
						t.Fatalf("status %d, reached %v: want the call through: %s", w.Code, reached, w.Body)
					}
					return
				}
				if w.Code != http.StatusForbidden || reached {
					t.Fatalf("status %d, reached %v: want 403 and nothing reached: %s", w.Code, reached, w.Body)
				}
				code, msg := errorBody(t, w)
				if code != "permission_denied" || !strings.Contains(msg, "origin") {
					t.Fatalf("%s: %s", code, msg)
				}
			})
		}
	}
	// Reading is not changing: another site's page cannot read the answer
	// (no CORS), and the terminal page loads its assets cross-origin-free.
	s, sb, _ := newServer(apiserver.Config{})
	rq := request{method: http.MethodGet, path: "/v1/sandboxes/box/files?path=/x", host: host, header: http.Header{"Origin": {"http://evil.example"}}}
	if w := serve(s, rq); w.Code == http.StatusForbidden || sb.count("conn box") == 0 {
		t.Fatalf("GET with a foreign Origin: status %d: %s", w.Code, w.Body)
	}
}

// Connect clients see the refusal as permission_denied with the message.
func TestRefusalOverConnect(t *testing.T) {
	s, _, _ := newServer(apiserver.Config{})
	srv := httptest.NewServer(s)
	defer srv.Close()
	hc := &http.Client{Transport: hostTransport{"rebind.evil.example:7777"}}
	c := hutchv1connect.NewSandboxServiceClient(hc, srv.URL)
	_, err := c.List(context.Background(), connect.NewRequest(&hutchv1.ListRequest{}))
	if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "hutch serve --allowed-host rebind.evil.example") {
		t.Fatalf("List: %v, want permission_denied saying how to allow the host", err)
	}
	if _, err := hutchv1connect.NewSandboxServiceClient(srv.Client(), srv.URL).List(context.Background(), connect.NewRequest(&hutchv1.ListRequest{})); err != nil {
		t.Fatalf("List by address: %v", err)
	}
}

func TestConfigCheck(t *testing.T) {
	tests := []struct {
		name string
		cfg  apiserver.Config
		ok   bool
	}{
		{"none", apiserver.Config{}, true},
		{"names and addresses", apiserver.Config{AllowedHosts: []string{"hutch.example.com", "Box.", "192.0.2.1", "[2001:db8::1]", "::1"}}, true},
		{"* with keys", apiserver.Config{Keys: []string{"k"}, AllowedHosts: []string{"*"}}, true},
		{"* without keys", apiserver.Config{AllowedHosts: []string{"*"}}, false},
		{"port", apiserver.Config{AllowedHosts: []string{"hutch.example.com:7777"}}, false},
		{"URL", apiserver.Config{AllowedHosts: []string{"http://hutch.example.com"}}, false},
		{"glob", apiserver.Config{AllowedHosts: []string{"*.example.com"}}, false},
		{"empty", apiserver.Config{AllowedHosts: []string{""}}, false},
		{"under the default preview domain", apiserver.Config{AllowedHosts: []string{"api.localhost"}}, false},
		{"under the preview domain", apiserver.Config{PreviewDomain: "preview.example", AllowedHosts: []string{"x.preview.example"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Check()
			if (err == nil) != tt.ok {
				t.Fatalf("Check: %v, want ok %v", err, tt.ok)
			}
			if err != nil && errdefs.Code(err) != connect.CodeInvalidArgument {
				t.Fatalf("Check: %v is not invalid_argument", err)
			}
		})
	}
}

type hostTransport struct{ host string }

func (h hostTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Host = h.host
	return http.DefaultTransport.RoundTrip(r)
}

// recorder lists the calls a fake got.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) record(call string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func (r *recorder) count(call string) int {
	n := 0
	for _, c := range r.all() {
		if c == call {
			n++
		}
	}
	return n
}

// fakeSandboxes has no sandboxes: it records what the API asks and
// fails everything but List; preview 8000-web-tok is exposed.
type fakeSandboxes struct{ recorder }

var _ apiserver.Sandboxes = (*fakeSandboxes)(nil)

var errNoSandbox = fmt.Errorf("fake: no sandboxes: %w", errdefs.ErrNotFound)

func (f *fakeSandboxes) Ensure(_ context.Context, name string, _ sandbox.CreateOptions) (sandbox.Record, *agentconn.Conn, bool, error) {
	f.record("ensure " + name)
	return sandbox.Record{}, nil, false, errNoSandbox
}

func (f *fakeSandboxes) Agent(_ context.Context, name string, _ sandbox.Access) (*agentconn.Conn, error) {
	f.record("conn " + name)
	return nil, errNoSandbox
}

func (f *fakeSandboxes) MarkBroken(name string) { f.record("broken " + name) }

func (f *fakeSandboxes) Get(name string) (sandbox.Record, error) {
	f.record("get " + name)
	return sandbox.Record{}, errNoSandbox
}

func (f *fakeSandboxes) List() []sandbox.Record { f.record("list"); return nil }

func (f *fakeSandboxes) Delete(_ context.Context, name string) error {
	f.record("delete " + name)
	return errNoSandbox
}

func (f *fakeSandboxes) Expose(_ context.Context, name string, _ int) (string, error) {
	f.record("expose " + name)
	return "", errNoSandbox
}

func (f *fakeSandboxes) Unexpose(_ context.Context, name string, _ int) error {
	f.record("unexpose " + name)
	return errNoSandbox
}

func (f *fakeSandboxes) Exposed(name string) ([]int, map[int]string, error) {
	f.record("exposed " + name)
	return nil, nil, errNoSandbox
}

func (f *fakeSandboxes) Preview(name string, port int, token string) bool {
	return name == "web" && port == 8000 && token == "tok"
}

// fakeEgress records what the API asks and keeps nothing.
type fakeEgress struct{ recorder }

var _ apiserver.Egress = (*fakeEgress)(nil)

func (f *fakeEgress) SetSecret(name, _ string, _ []string) error {
	f.record("set secret " + name)
	return nil
}

func (f *fakeEgress) DeleteSecret(name string) error   { f.record("delete secret " + name); return nil }
func (f *fakeEgress) ListSecrets() []egress.SecretInfo { f.record("secrets"); return nil }

func (f *fakeEgress) SetPolicy(_ context.Context, sandbox string, _ egress.Policy, _ bool) error {
	f.record("set policy " + sandbox)
	return nil
}

func (f *fakeEgress) Policy(sandbox string) (egress.Policy, error) {
	f.record("policy " + sandbox)
	return egress.DefaultPolicy(), nil
}

func (f *fakeEgress) Log(sandbox string, _ time.Time, _ int) []egress.Entry {
	f.record("log " + sandbox)
	return nil
}

func (f *fakeEgress) CAPEM(bool) ([]byte, error) { f.record("ca"); return nil, nil }
