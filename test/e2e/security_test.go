package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hutch-sh/hutch/client"
)

// rawCall sends one request to the daemon with this Host and headers, as a
// browser on a rebound name (or curl -H Host:) would, and returns the
// status, the error body's code and message (if any) and the raw body.
func rawCall(t *testing.T, d *daemon, method, path, host, body string, h http.Header) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, d.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp.StatusCode, "", "" // a live terminal: nothing to read to the end
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb struct{ Code, Message string }
	_ = json.Unmarshal(b, &eb)
	return resp.StatusCode, eb.Code, string(b)
}

// DNS rebinding, end to end: a web page whose name now resolves to this
// machine calls the daemon same-origin. It reaches nothing; the names the
// operator allows and previews still work.
func TestRebinding(t *testing.T) {
	t.Parallel()
	d := newDaemonArgs(t, "", "--allowed-host", "hutch.test")
	ctx := context.Background()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(d.url, "http://"))
	evil := "rebind.evil.example:" + port
	d.run("sec", "true")
	term, err := d.Client.CreateTerminal(ctx, "sec", client.TerminalOptions{Cols: 80, Rows: 24})
	if err != nil {
		t.Fatal(err)
	}
	jsonHdr := http.Header{"Content-Type": {"application/json"}}

	// The curl.
	status, code, body := rawCall(t, d, http.MethodPost, "/hutch.v1.SandboxService/List", evil, "{}", jsonHdr)
	if status != http.StatusForbidden || code != "permission_denied" || !strings.Contains(body, "hutch serve --allowed-host rebind.evil.example") {
		t.Fatalf("List for a foreign Host: %d %s", status, body)
	}
	if strings.Contains(body, `"sec"`) {
		t.Fatalf("the refusal lists sandboxes: %s", body)
	}

	ws := func(host, origin string) http.Header {
		return http.Header{"Origin": {origin}, "Connection": {"Upgrade"}, "Upgrade": {"websocket"},
			"Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}
	}
	withOrigin := func(h http.Header, origin string) http.Header {
		out := h.Clone()
		out.Set("Origin", origin)
		return out
	}
	termPath := "/v1/sandboxes/sec/terminals/" + term.Id
	filePath := "/v1/sandboxes/sec/files?path=" + url.QueryEscape("/workspace/pwned")
	calls := []struct {
		name, method, path, body string
		header                   func(host, origin string) http.Header
	}{
		{"exec", http.MethodPost, "/hutch.v1.ProcessService/StartProcess", `{"sandbox":"sec","argv":["touch","/workspace/pwned"]}`,
			func(_, o string) http.Header { return withOrigin(jsonHdr, o) }},
		{"create sandbox", http.MethodPost, "/hutch.v1.SandboxService/Create", `{"name":"pwned"}`,
			func(_, o string) http.Header { return withOrigin(jsonHdr, o) }},
		{"file write", http.MethodPut, filePath, "pwned", func(_, o string) http.Header { return http.Header{"Origin": {o}} }},
		{"terminal", http.MethodGet, termPath, "", ws},
		{"set policy", http.MethodPost, "/hutch.v1.EgressService/SetPolicy", `{"sandbox":"sec","policy":"{\"internet\": false}"}`,
			func(_, o string) http.Header { return withOrigin(jsonHdr, o) }},
	}
	for _, c := range calls {
		t.Run("rebound "+c.name, func(t *testing.T) {
			status, code, body := rawCall(t, d, c.method, c.path, evil, c.body, c.header(evil, "http://"+evil))
			if status != http.StatusForbidden || code != "permission_denied" {
				t.Fatalf("status %d: %s", status, body)
			}
		})
		t.Run("cross-origin "+c.name, func(t *testing.T) {
			local := "127.0.0.1:" + port
			status, code, body := rawCall(t, d, c.method, c.path, local, c.body, c.header(local, "http://evil.example"))
			if status != http.StatusForbidden || code != "permission_denied" || !strings.Contains(body, "origin") {
				t.Fatalf("status %d: %s", status, body)
			}
		})
	}
	// None of it happened.
	if out := d.run("sec", "sh", "-c", "ls /workspace/pwned 2>&1; true"); !strings.Contains(out, "No such file") {
		t.Fatalf("a refused call wrote a file: %s", out)
	}
	if _, err := d.Client.Get(ctx, "pwned"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("a refused call created a sandbox: %v", err)
	}
	if p, err := d.Client.Policy(ctx, "sec"); err != nil || !strings.Contains(p, `"internet": true`) {
		t.Fatalf("a refused call changed the policy: %s %v", p, err)
	}

	// An allowed name works, browsers from its pages included.
	allowed := "hutch.test:" + port
	if status, _, body := rawCall(t, d, http.MethodPost, "/hutch.v1.SandboxService/List", allowed, "{}", withOrigin(jsonHdr, "http://"+allowed)); status != http.StatusOK || !strings.Contains(body, `"sec"`) {
		t.Fatalf("List for an allowed host: %d %s", status, body)
	}
	if status, _, body := rawCall(t, d, http.MethodGet, termPath, allowed, "", ws(allowed, "http://"+allowed)); status != http.StatusSwitchingProtocols {
		t.Fatalf("terminal from an allowed host's page: %d %s", status, body)
	}
	// Health checks answer any name; a name under the preview domain that
	// is no preview reaches the preview router, never the API.
	if status, _, body := rawCall(t, d, http.MethodGet, "/healthz", evil, "", nil); status != http.StatusOK {
		t.Fatalf("healthz for a foreign Host: %d %s", status, body)
	}
	if status, _, body := rawCall(t, d, http.MethodPost, "/hutch.v1.SandboxService/List", "api.localhost:"+port, "{}", jsonHdr); status != http.StatusNotFound || !strings.Contains(body, "no such preview URL") {
		t.Fatalf("List for a non-preview *.localhost Host: %d %s", status, body)
	}
}

// A daemon refuses to answer every name without API keys.
func TestAllowedHostStarNeedsKeys(t *testing.T) {
	t.Parallel()
	cmd := serveCmd(t, "--allowed-host", "*")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "hutch: ") || !strings.Contains(string(out), "API keys") {
		t.Fatalf("serve --allowed-host '*' without keys: %v\n%s", err, out)
	}
}

// serveCmd is `hutch serve` on a fresh data dir with extra flags, not started.
func serveCmd(t *testing.T, extra ...string) *exec.Cmd {
	t.Helper()
	args := append([]string{"serve", "--listen", freePort(t), "--data", t.TempDir(), "--cache", cacheDir}, extra...)
	return exec.Command(filepath.Join(binDir, "hutch"), args...)
}

// Secrets are limited to the sandboxes their scope names: a policy that
// reaches past it is refused, and the proxy refuses one that got there
// anyway.
func TestSecretScope(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	ctx := context.Background()
	if _, errOut, code := d.hutch("agent-value\n", "secret", "set", "AGENT_TOKEN", "--for", "agent-*"); code != 0 {
		t.Fatalf("secret set --for: %d %s", code, errOut)
	}
	if _, errOut, code := d.hutch("v\n", "secret", "set", "BAD", "--for", "agent-["); code != 1 || !strings.HasPrefix(errOut, "hutch: ") || !strings.Contains(errOut, "agent-[") {
		t.Fatalf("secret set with a bad glob: %d %s", code, errOut)
	}
	if err := d.Client.SetSecret(ctx, "BAD", "v", "agent-["); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("SDK: bad glob: %v, want invalid_argument", err)
	}
	if _, errOut, code := d.hutch("open-value\n", "secret", "set", "OPEN_TOKEN"); code != 0 {
		t.Fatalf("secret set: %d %s", code, errOut)
	}
	out, _, _ := d.hutch("", "secret", "ls")
	if !lineHas(out, "AGENT_TOKEN", "agent-*") || !lineHas(out, "OPEN_TOKEN", "*") {
		t.Fatalf("secret ls:\n%s", out)
	}
	out, _, _ = d.hutch("", "secret", "ls", "--json")
	var ls []struct {
		Name  string
		Scope []string
	}
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 2 || ls[0].Name != "AGENT_TOKEN" || fmt.Sprint(ls[0].Scope) != "[agent-*]" {
		t.Fatalf("secret ls --json: %v\n%s", err, out)
	}
	// Rotating without --for keeps the scope.
	if _, errOut, code := d.hutch("agent-value-2\n", "secret", "set", "AGENT_TOKEN"); code != 0 {
		t.Fatalf("rotate: %d %s", code, errOut)
	}
	if out, _, _ := d.hutch("", "secret", "ls"); !lineHas(out, "AGENT_TOKEN", "agent-*") {
		t.Fatalf("rotation changed the scope:\n%s", out)
	}

	const target = "198.51.100.7" // TEST-NET-2: never reached
	pol := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(pol, fmt.Appendf(nil, `{"internet": false, "allow": [%q],
		"rules": [{"host": %q, "headers": {"Authorization": "Bearer {{secret:AGENT_TOKEN}}"}}]}`, target, target), 0o644); err != nil {
		t.Fatal(err)
	}
	d.run("web", "true")
	_, errOut, code := d.hutch("", "policy", "set", "web", pol)
	if code != 1 || !strings.HasPrefix(errOut, "hutch: ") {
		t.Fatalf("policy set with an out-of-scope secret: exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"AGENT_TOKEN", `"` + target + `"`, "sandbox web", "permission denied"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("refusal %q does not say %s", errOut, want)
		}
	}
	if _, err := d.Client.SetPolicy(ctx, "web", mustRead(t, pol), false); !errors.Is(err, client.ErrPermissionDenied) {
		t.Fatalf("SDK SetPolicy: %v, want permission_denied", err)
	}
	if p, _ := d.Client.Policy(ctx, "web"); strings.Contains(p, "AGENT_TOKEN") {
		t.Fatalf("the refused policy was stored: %s", p)
	}
	// Creating a sandbox with it is refused too, and creates nothing.
	if _, errOut, code := d.hutch("", "exec", "--policy", pol, "web-2", "--", "true"); code != 1 || !strings.Contains(errOut, "AGENT_TOKEN") {
		t.Fatalf("exec --policy with an out-of-scope secret: %d %s", code, errOut)
	}
	if _, err := d.Client.Get(ctx, "web-2"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("a refused --policy created the sandbox: %v", err)
	}

	// In scope, it is accepted. Narrowed afterwards, the proxy refuses to
	// inject it: 502 naming the secret, in the body and the egress log.
	if _, errOut, code := d.hutch("", "exec", "--policy", pol, "agent-1", "--", "true"); code != 0 {
		t.Fatalf("exec --policy in scope: %d %s", code, errOut)
	}
	if _, errOut, code := d.hutch("agent-value-3\n", "secret", "set", "AGENT_TOKEN", "--for", "ci-*"); code != 0 {
		t.Fatalf("narrow: %d %s", code, errOut)
	}
	got := d.run("agent-1", "sh", "-c", "curl -s -m 10 http://"+target+"/x -o /tmp/body -w '%{http_code} '; cat /tmp/body")
	if !strings.HasPrefix(got, "502 ") || !strings.Contains(got, "secret AGENT_TOKEN is not for sandbox agent-1") || strings.Contains(got, "agent-value") {
		t.Fatalf("out-of-scope injection: %q", got)
	}
	ents, err := d.Client.EgressLog(ctx, "agent-1", 1)
	if err != nil || len(ents) != 1 || ents[0].Allowed || !strings.Contains(ents[0].Rule, "AGENT_TOKEN") {
		t.Fatalf("egress log: %v %v", ents, err)
	}
	if strings.Contains(d.out.String(), "agent-value") {
		t.Fatalf("the daemon logged a secret")
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
