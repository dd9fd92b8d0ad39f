package e2e

import (
	"context"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/hutch-sh/hutch/client"
)

const gitSetup = `set -e
git config --global user.email t@example.com; git config --global user.name t; git config --global init.defaultBranch main
git init -q --bare /srv/git/repo.git
git init -q /tmp/w && cd /tmp/w && echo hello > README && git add . && git commit -qm one
git checkout -qb dev && echo dev > DEV && git add . && git commit -qm two
git push -q /srv/git/repo.git main dev`

// An HTTP remote that wants credentials.
const authServer = `
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(401); self.send_header("WWW-Authenticate", 'Basic realm="git"'); self.end_headers()
    def log_message(self, *a): pass
HTTPServer(("127.0.0.1", 8900), H).serve_forever()
`

// A remote that accepts and never answers.
const silentServer = `
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 9419)); s.listen(8)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
`

func TestGitCheckout(t *testing.T) {
	d := newDaemon(t)
	ctx := context.Background()
	c := d.Client
	d.run("git", "sh", "-c", "mkdir -p /srv/git && "+"("+gitSetup+")")
	servers := []struct {
		id   string
		argv []string
		port int
	}{
		{"gitd", []string{"git", "daemon", "--base-path=/srv/git", "--export-all", "--reuseaddr", "--listen=127.0.0.1", "--port=9418", "/srv/git"}, 9418},
		{"auth", []string{"python3", "-c", authServer}, 8900},
		{"silent", []string{"python3", "-c", silentServer}, 9419},
	}
	for _, s := range servers {
		if _, err := c.StartProcess(ctx, "git", s.argv, client.ProcessOptions{ID: s.id}); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitForPort(ctx, "git", s.id, s.port, client.PortOptions{}, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	r, err := c.GitCheckout(ctx, "git", "git://127.0.0.1/repo.git", client.GitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.TargetDir != "/workspace/repo" || r.Branch != "main" || !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(r.Commit) {
		t.Fatalf("checkout: %+v", r)
	}
	if got := d.run("git", "cat", "/workspace/repo/README"); got != "hello\n" {
		t.Fatalf("README %q", got)
	}
	out, stderr, code := d.hutch("", "clone", "git", "git://127.0.0.1/repo.git", "--branch", "dev", "--depth", "1", "--dir", "/src/dev")
	if code != 0 || !regexp.MustCompile(`^/src/dev dev [0-9a-f]{40}\n$`).MatchString(out) {
		t.Fatalf("clone --branch dev: exit %d %q %q", code, out, stderr)
	}
	if got := d.run("git", "git", "-C", "/src/dev", "rev-list", "--count", "HEAD"); got != "1\n" {
		t.Fatalf("depth 1 clone has %q commits", got)
	}

	tests := []struct {
		name string
		url  string
		o    client.GitOptions
		want error
	}{
		{"branch not found", "git://127.0.0.1/repo.git", client.GitOptions{Branch: "nope", TargetDir: "/tmp/a"}, client.ErrNotFound},
		{"repository not found", "git://127.0.0.1/missing.git", client.GitOptions{TargetDir: "/tmp/b"}, client.ErrNotFound},
		{"auth required", "http://127.0.0.1:8900/repo.git", client.GitOptions{TargetDir: "/tmp/c"}, client.ErrUnauthenticated},
		{"target not empty", "git://127.0.0.1/repo.git", client.GitOptions{TargetDir: "/workspace/repo"}, client.ErrAlreadyExists},
		{"timeout", "git://127.0.0.1:9419/repo.git", client.GitOptions{TargetDir: "/tmp/d", Timeout: time.Second}, client.ErrDeadlineExceeded},
		{"not a URL", "--upload-pack=evil", client.GitOptions{}, client.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.GitCheckout(ctx, "git", tt.url, tt.o)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
}
