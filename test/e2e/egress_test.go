package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/client"
	"github.com/hutch-sh/hutch/internal/nettest"
)

// httpsOutside serves h over HTTPS on port 8443 of a namespace standing for
// a remote host, with a certificate for its address from a CA of its own,
// written to caFile. It returns the host's address.
func httpsOutside(t *testing.T, h http.Handler, caFile string) string {
	t.Helper()
	nsPath, _, peer := nettest.Outside(t)
	peerIP := peer.String()

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e outside CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caT, caT, &key.PublicKey, key)
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafT := &x509.Certificate{SerialNumber: big.NewInt(2), IPAddresses: []net.IP{net.ParseIP(peerIP)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, _ := x509.CreateCertificate(rand.Reader, leafT, caCert, &leafKey.PublicKey, key)
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}

	// A socket made in the namespace stays in it.
	ln := nettest.Listen(t, nsPath, peerIP+":8443")
	srv := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}}}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { srv.Close() })
	return peerIP
}

// privateGit is a git smart-HTTP server (git http-backend) that wants
// "Authorization: Bearer token", and echoes request headers on /echo.
func privateGit(t *testing.T, token string) http.Handler {
	t.Helper()
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	for _, args := range [][]string{
		{"init", "-q", "-b", "main", work},
		{"-C", work, "commit", "-q", "--allow-empty", "-m", "one"},
		{"clone", "-q", "--bare", work, filepath.Join(dir, "repo.git")},
		{"-C", filepath.Join(dir, "repo.git"), "config", "http.receivepack", "false"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@e")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "repo.git", "PRIVATE"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	backend := &cgi.Handler{Path: "/usr/lib/git-core/git-http-backend", Env: []string{"GIT_PROJECT_ROOT=" + dir, "GIT_HTTP_EXPORT_ALL=1"}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/echo" {
			_ = json.NewEncoder(w).Encode(r.Header)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("WWW-Authenticate", `Basic realm="private"`)
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	})
}

func TestEgress(t *testing.T) {
	requireHost(t)
	var r [8]byte
	_, _ = rand.Read(r[:])
	token := "ghp_" + hex.EncodeToString(r[:])
	caFile := filepath.Join(t.TempDir(), "outside-ca.pem")
	up := httpsOutside(t, privateGit(t, token), caFile)
	d := launchDaemon(t, &daemon{extra: []string{"--upstream-ca", caFile}})
	ctx := context.Background()

	if _, errOut, code := d.hutch(token+"\n", "secret", "set", "GIT_TOKEN"); code != 0 {
		t.Fatalf("secret set: %d %s", code, errOut)
	}
	if out, _, _ := d.hutch("", "secret", "ls"); !lineHas(out, "GIT_TOKEN", "*") {
		t.Fatalf("secret ls: %q", out)
	}
	pol := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(pol, fmt.Appendf(nil, `{"internet": false, "allow": [%q],
		"rules": [{"host": %q, "headers": {"Authorization": "Bearer {{secret:GIT_TOKEN}}"}}]}`, up, up), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := d.hutch("", "exec", "--policy", pol, "eg", "--", "true"); code != 0 {
		t.Fatalf("exec --policy: %d %s", code, errOut)
	}
	if out, _, _ := d.hutch("", "policy", "get", "eg"); !strings.Contains(out, "{{secret:GIT_TOKEN}}") || !strings.Contains(out, `"internet": false`) {
		t.Fatalf("policy get: %s", out)
	}

	// curl, Python and git trust the daemon's CA with no flags, and the
	// server gets the token the sandbox never had.
	got := d.run("eg", "curl", "-sS", "-m", "10", "https://"+up+":8443/echo")
	if !strings.Contains(got, "Bearer "+token) {
		t.Fatalf("upstream did not get the injected token: %s", got)
	}
	got = d.run("eg", "python3", "-c", "import urllib.request; print(urllib.request.urlopen('https://"+up+":8443/echo', timeout=10).read().decode())")
	if !strings.Contains(got, "Bearer "+token) {
		t.Fatalf("python: %s", got)
	}
	if _, err := d.Client.GitCheckout(ctx, "eg", "https://"+up+":8443/repo.git", client.GitOptions{TargetDir: "/workspace/private"}); err != nil {
		t.Fatalf("git checkout with an injected token: %v", err)
	}
	if out := d.run("eg", "git", "-C", "/workspace/private", "log", "--oneline"); !strings.Contains(out, "one") {
		t.Fatalf("checked-out repo: %q", out)
	}

	// Nowhere in the sandbox: env, every process's environ and cmdline,
	// files it can read.
	// The token goes in as two halves, so that this command's own cmdline
	// does not hold it.
	search := `t="$0$1"; env; cat /proc/*/environ /proc/*/cmdline 2>/dev/null; grep -rsI -- "$t" /etc /workspace /root /tmp /home /var /run /usr/local 2>/dev/null; true`
	if out := d.run("eg", "sh", "-c", search, token[:8], token[8:]); strings.Contains(out, token) {
		t.Fatalf("the secret is visible inside the sandbox")
	}
	// Nor in the daemon's files or log.
	if out, _ := exec.Command("grep", "-rls", token, filepath.Join(d.data, "egress"), filepath.Join(d.data, "hutch.db")).Output(); len(out) > 0 {
		t.Fatalf("the secret is stored in clear: %s", out)
	}
	if strings.Contains(d.out.String(), token) {
		t.Fatalf("the daemon logged the secret")
	}

	// Refused requests say why; the log has both.
	code := d.run("eg", "sh", "-c", "curl -s -m 10 http://198.51.100.7/x -o /tmp/body -w '%{http_code}'; cat /tmp/body")
	if !strings.HasPrefix(code, "403") || !strings.Contains(code, "not in allow") {
		t.Fatalf("blocked request: %q", code)
	}
	logOut, _, _ := d.hutch("", "egress", "eg")
	if !strings.Contains(logOut, up+":8443") || !strings.Contains(logOut, "198.51.100.7:80") || !strings.Contains(logOut, "blocked") {
		t.Fatalf("egress log:\n%s", logOut)
	}

	// Without the rule, git gets no token and fails; at once, not after a
	// timeout.
	if err := os.WriteFile(pol, fmt.Appendf(nil, `{"internet": false, "allow": [%q]}`, up), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := d.hutch("", "policy", "set", "eg", pol); code != 0 {
		t.Fatalf("policy set: %s", errOut)
	}
	if _, err := d.Client.GitCheckout(ctx, "eg", "https://"+up+":8443/repo.git", client.GitOptions{TargetDir: "/workspace/again"}); err == nil {
		t.Fatalf("checkout without the rule succeeded")
	}

	// Bad input is refused with the reason.
	if err := os.WriteFile(pol, []byte(`{"internet": false, "alow": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := d.hutch("", "policy", "set", "eg", pol); code == 0 || !strings.Contains(errOut, "alow") {
		t.Fatalf("typo in policy: %d %s", code, errOut)
	}
	if _, errOut, code := d.hutch("a\nb", "secret", "set", "bad-name"); code == 0 || !strings.Contains(errOut, "secret name") {
		t.Fatalf("bad secret name: %d %s", code, errOut)
	}
	if _, errOut, code := d.hutch("", "policy", "get", "nope"); code == 0 || !strings.Contains(errOut, "not found") {
		t.Fatalf("policy of a missing sandbox: %d %s", code, errOut)
	}
}

// lineHas reports whether one line of out has these fields, in order.
func lineHas(out string, fields ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == len(fields) && strings.Join(f, " ") == strings.Join(fields, " ") {
			return true
		}
	}
	return false
}
