package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/client"
	"github.com/hutch-sh/hutch/internal/nettest"
	"github.com/hutch-sh/hutch/internal/testutil"
)

// reach reports what happens when sandbox name sends an HTTP GET to addr:
// "ok" when the server there answers (any status), or what happened
// instead, within a few seconds. A TCP connect alone proves nothing: the
// egress proxy accepts every connection before it decides, and answers a
// refused request itself.
func reach(t *testing.T, d *daemon, name, addr string) string {
	t.Helper()
	script := fmt.Sprintf(`import urllib.request, urllib.error
def show(h, status):
    print("blocked by egress" if h.get("X-Hutch-Egress") else "ok")
try:
    r = urllib.request.urlopen("http://%s/", timeout=3); show(r.headers, r.status)
except urllib.error.HTTPError as e:
    show(e.headers, e.code)
except Exception as e:
    print(type(e).__name__, e)`, addr)
	return strings.TrimSpace(d.run(name, "python3", "-c", script))
}

func sandboxAddr(t *testing.T, d *daemon, name string) netip.Addr {
	t.Helper()
	sb, err := d.Client.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	a, err := netip.ParseAddr(sb.Address)
	if err != nil {
		t.Fatalf("sandbox %s has address %q: %v", name, sb.Address, err)
	}
	return a
}

// hostAddrs lists this host's non-loopback IPv4 addresses.
func hostAddrs(t *testing.T) []string {
	t.Helper()
	as, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			out = append(out, n.IP.String())
		}
	}
	return out
}

func TestSandboxNetwork(t *testing.T) {
	d := launchDaemon(t, &daemon{token: "net-secret", public: true, extra: []string{"--api-key", "net-secret"}})
	ctx := context.Background()
	d.run("a", "true")
	d.run("b", "true")
	a, b := sandboxAddr(t, d, "a"), sandboxAddr(t, d, "b")
	if a == b {
		t.Fatalf("a and b share address %s", a)
	}

	// A real interface with the recorded address, a default route, and the
	// daemon's DNS forwarder as resolver.
	out := d.run("a", "sh", "-c", "ip -4 -o addr show eth0; ip route show default; cat /etc/resolv.conf")
	if !strings.Contains(out, "inet "+a.String()+"/") {
		t.Fatalf("eth0 lacks %s:\n%s", a, out)
	}
	gw := ""
	for _, f := range strings.Fields(out[strings.Index(out, "default via"):]) {
		if _, err := netip.ParseAddr(f); err == nil {
			gw = f
			break
		}
	}
	if gw == "" || !strings.Contains(out, "nameserver "+gw) {
		t.Fatalf("no default route, or resolver is not the gateway:\n%s", out)
	}

	// The daemon's API port is open on every host address, yet no sandbox
	// gets to it, nor to anything else on the host.
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(d.url, "http://"))
	for _, h := range append(hostAddrs(t), gw) {
		resp, err := http.Get("http://" + net.JoinHostPort(h, port) + "/healthz")
		if err != nil {
			t.Fatalf("the host itself cannot reach the API on %s: %v", h, err)
		}
		resp.Body.Close()
		// The daemon answers its own addresses as Host (with the key).
		if _, err := client.New("http://"+net.JoinHostPort(h, port), client.WithToken("net-secret")).List(ctx); err != nil {
			t.Errorf("the API by the host's address %s: %v", h, err)
		}
		if got := reach(t, d, "a", net.JoinHostPort(h, port)); got == "ok" {
			t.Errorf("sandbox reached the daemon's API on %s:%s", h, port)
		}
	}

	// Sandboxes cannot reach each other; the host reaches each directly.
	if _, err := d.Client.StartProcess(ctx, "b", []string{"python3", "-m", "http.server", "8080"}, client.ProcessOptions{ID: "web"}); err != nil {
		t.Fatal(err)
	}
	if err := d.Client.WaitForPort(ctx, "b", "web", 8080, client.PortOptions{}, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := reach(t, d, "a", net.JoinHostPort(b.String(), "8080")); got == "ok" {
		t.Errorf("sandbox a reached sandbox b")
	}
	resp, err := http.Get("http://" + net.JoinHostPort(b.String(), "8080") + "/")
	if err != nil {
		t.Fatalf("host to sandbox b directly: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("host to sandbox b: %s", resp.Status)
	}

	// A repository on a server outside, reached through the sandbox's
	// network (NAT through the host).
	remote := gitServerOutside(t)
	// git:// is not HTTP: the egress proxy lets it through only to an
	// address the policy names.
	remoteIP, _, _ := net.SplitHostPort(remote)
	if _, err := d.Client.SetPolicy(ctx, "a", fmt.Sprintf(`{"allow": [%q]}`, remoteIP), false); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Client.GitCheckout(ctx, "a", "git://"+remote+"/repo.git", client.GitOptions{Branch: "dev", TargetDir: "/workspace/repo"}); err != nil {
		t.Fatalf("checkout across the network: %v", err)
	}
	if got := d.run("a", "cat", "/workspace/repo/DEV"); got != "dev\n" {
		t.Fatalf("checked-out file: %q", got)
	}

	// Addresses survive a daemon crash, and new ones never collide.
	d.kill()
	d.start()
	if got := sandboxAddr(t, d, "a"); got != a {
		t.Fatalf("a's address after restart %s, want %s", got, a)
	}
	d.run("c", "true")
	if c := sandboxAddr(t, d, "c"); c == a || c == b {
		t.Fatalf("c got %s, already taken (a %s, b %s)", c, a, b)
	}
	// A sandbox whose container was lost starts again with its address.
	sb, _ := d.Client.Get(ctx, "b")
	d.kill()
	killSandbox(t, d, sb.Id)
	d.start()
	if out := d.run("b", "ip", "-4", "-o", "addr", "show", "eth0"); !strings.Contains(out, "inet "+b.String()+"/") {
		t.Fatalf("b after its container was lost: %s, want %s", out, b)
	}
}

// gitServerOutside serves a repository with git daemon in a network
// namespace of its own, standing for a remote host (nettest.Outside), and
// returns its host:port.
func gitServerOutside(t *testing.T) string {
	t.Helper()
	nsPath, _, peer := nettest.Outside(t)
	ns, peerIP := filepath.Base(nsPath), peer.String()

	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	work := filepath.Join(dir, "work")
	git("init", "-q", "-b", "main", work)
	if err := os.WriteFile(filepath.Join(work, "README"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("-C", work, "add", ".")
	git("-C", work, "commit", "-qm", "one")
	git("-C", work, "checkout", "-qb", "dev")
	if err := os.WriteFile(filepath.Join(work, "DEV"), []byte("dev\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("-C", work, "add", ".")
	git("-C", work, "commit", "-qm", "two")
	git("clone", "-q", "--bare", work, filepath.Join(dir, "repo.git"))

	var logs bytes.Buffer
	gd := exec.Command("ip", "netns", "exec", ns, "git", "daemon", "--base-path="+dir, "--export-all", "--reuseaddr",
		"--listen="+peerIP, "--port=9418", dir)
	gd.Stdout, gd.Stderr = &logs, &logs
	gd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // git daemon forks per client
	gd.WaitDelay = time.Second
	if err := gd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-gd.Process.Pid, syscall.SIGKILL)
		_ = gd.Wait()
	})
	addr := net.JoinHostPort(peerIP, "9418")
	if err := testutil.Poll(10*time.Second, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("git daemon on %s did not come up: %v\n%s", addr, err, logs.String())
	}
	return addr
}

// Moving a data dir to another subnet renumbers its sandboxes: running ones
// are stopped and start again, on next use, with a new address and their
// disks.
func TestSubnetChange(t *testing.T) {
	d := launchDaemon(t, &daemon{extra: []string{"--subnet", "10.231.4.0/24"}})
	d.run("renum", "sh", "-c", "echo kept > /workspace/f")
	if a := sandboxAddr(t, d, "renum"); !netip.MustParsePrefix("10.231.4.0/24").Contains(a) {
		t.Fatalf("address %s outside --subnet", a)
	}
	d.stop()
	d.extra = []string{"--subnet", "10.231.9.0/24"}
	d.start()
	d.run("renum", "true")
	a := sandboxAddr(t, d, "renum")
	if !netip.MustParsePrefix("10.231.9.0/24").Contains(a) {
		t.Fatalf("address after the subnet changed: %s", a)
	}
	if out := d.run("renum", "sh", "-c", "cat /workspace/f; ip -4 -o addr show eth0"); !strings.Contains(out, "kept") || !strings.Contains(out, "inet "+a.String()+"/") {
		t.Fatalf("after renumbering: %q, want the file and %s", out, a)
	}
}
